from django.urls import reverse

from .roles import ADMIN_ROLE, ROLES

# The left navigation: (key, label, url name, args, permission). A later app adds its
# pages here; a user sees only what their permissions open.
MAIN_NAV = [
    ("inbox", "Inbox", "inbox", ["mine"], "tickets.view_ticket"),
    ("customers", "Customers", "mirror_list", ["customers"], "payments.view_customer"),
    ("payments", "Payments", "mirror_list", ["payments"], "payments.view_charge"),
    ("refunds", "Refunds", "mirror_list", ["refunds"], "payments.view_refund"),
    ("subscriptions", "Subscriptions", "mirror_list", ["subscriptions"], "payments.view_subscription"),
    ("invoices", "Invoices", "mirror_list", ["invoices"], "payments.view_invoice"),
    ("disputes", "Disputes", "mirror_list", ["disputes"], "payments.view_dispute"),
    ("fraud-warnings", "Fraud warnings", "mirror_list", ["fraud-warnings"], "payments.view_earlyfraudwarning"),
]
DEV_NAV = [
    ("events", "Events", "event_log", [], "payments.view_webhookevent"),
    ("sync", "Sync health", "sync_health", [], "payments.view_sync_health"),
]


def _visible(user, perms, items):
    return [
        (key, label, reverse(url_name, args=args))
        for key, label, url_name, args, perm in items
        if user.is_superuser or perm in perms
    ]


def shell(request):
    """What the layout needs on every page: the navigation the user may see, and who they are."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    perms = user.get_all_permissions()
    groups = set(user.groups.values_list("name", flat=True))
    role = next((r for r in ROLES if r in groups), "")
    dev = _visible(user, perms, DEV_NAV)
    if user.is_superuser or ADMIN_ROLE in groups:
        dev.append(("admin", "Django admin", reverse("admin:index")))
    return {
        "shell_nav": [("home", "Home", reverse("home"))] + _visible(user, perms, MAIN_NAV),
        "shell_dev_nav": dev,
        "shell_role": "superuser" if user.is_superuser and not role else role,
    }
