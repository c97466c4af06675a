from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy as _

from .roles import ADMIN_ROLE, ROLES, role_label

# The left navigation: (key, label, url name, args, permission). A later app adds its
# pages here; a user sees only what their permissions open.
MAIN_NAV = [
    ("inbox", _("Inbox"), "inbox", ["mine"], "tickets.view_ticket"),
    ("customers", _("Customers"), "mirror_list", ["customers"], "payments.view_customer"),
    ("contacts", _("Contacts"), "contact_list", [], "tickets.view_contact"),
    ("payments", _("Payments"), "mirror_list", ["payments"], "payments.view_charge"),
    ("refunds", _("Refunds"), "mirror_list", ["refunds"], "payments.view_refund"),
    ("subscriptions", _("Subscriptions"), "mirror_list", ["subscriptions"], "payments.view_subscription"),
    ("invoices", _("Invoices"), "mirror_list", ["invoices"], "payments.view_invoice"),
    ("disputes", _("Disputes"), "dispute_queue", [], "disputes.view_disputecase"),
    ("fraud-warnings", _("Fraud warnings"), "dispute_fraud_warnings", [], "payments.view_earlyfraudwarning"),
    ("workflows", _("Workflows"), "workflow_list", [], "workflows.view_workflow"),
    ("macros", _("Macros"), "macros", [], "tickets.view_macro"),
    ("people", _("People"), "people", [], "auth.view_user"),
]
DEV_NAV = [
    ("events", _("Events"), "event_log", [], "payments.view_webhookevent"),
    ("sync", _("Sync health"), "sync_health", [], "payments.view_sync_health"),
]


def _visible(user, perms, items):
    return [
        (key, label, reverse(url_name, args=args))
        for key, label, url_name, args, perm in items
        if user.is_superuser or perm in perms
    ]


def _approvals_link():
    """Finance's refund approvals, with how many wait (one count on the partial index)."""
    from .approval_selectors import open_count

    count = open_count()
    label = gettext("Approvals (%(count)s)") % {"count": count} if count else gettext("Approvals")
    return ("approvals", label, reverse("approvals"))


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
        dev.append(("admin", _("Django admin"), reverse("admin:index")))
    nav = [("home", _("Home"), reverse("home"))] + _visible(user, perms, MAIN_NAV)
    if "payments.refund_charge" in perms and (user.is_superuser or groups & {"finance", ADMIN_ROLE}):
        nav.append(_approvals_link())
    return {
        "shell_nav": nav,
        "shell_dev_nav": dev,
        "shell_role": role_label("superuser" if user.is_superuser and not role else role),
    }
