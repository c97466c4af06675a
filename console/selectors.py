import datetime as dt
from urllib.parse import urlencode

from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone

from payments.mirror import KINDS
from payments.models import WebhookEvent
from payments.selectors import looks_like_id
from payments.views import LISTS, list_for_id, view_perm

OPEN_DISPUTE_STATUSES = ("needs_response", "warning_needs_response")


def search_target(user, q: str) -> str:
    """Where the top bar sends a query: a Stripe id to its object, anything else to customers.

    An id the mirror does not hold (or one of a type the user may not see) lands on the
    matching list filtered by it, which says "nothing here" instead of a bare 404.
    """
    q = q.strip()
    customers = reverse("mirror_list", args=["customers"])
    if not q:
        return customers
    if looks_like_id(q):
        if q.startswith("evt_") and user.has_perm("payments.view_webhookevent"):
            found = WebhookEvent.objects.filter(pk=q).exists()
            return reverse("event_detail", args=[q]) if found else f"{reverse('event_log')}?{urlencode({'q': q})}"
        slug = list_for_id(q)
        if slug:
            spec = LISTS[slug]
            if user.has_perm(view_perm(spec.kind)):
                if KINDS[spec.kind].model.objects.filter(pk=q).exists():
                    return reverse("mirror_object", args=[slug, q])
                return f"{reverse('mirror_list', args=[slug])}?{urlencode({'q': q})}"
    return f"{customers}?{urlencode({'q': q})}"


def overview(user) -> dict:
    """The home page: a few counts, money taken lately, what needs a person now."""
    stats = []
    for kind, slug, label in (
        ("customer", "customers", "Customers"),
        ("charge", "payments", "Payments"),
        ("subscription", "subscriptions", "Subscriptions"),
    ):
        model = KINDS[kind].model
        if user.has_perm(f"payments.view_{model._meta.model_name}"):
            qs = model.objects.all()
            if kind == "subscription":
                qs = qs.filter(status__in=["active", "trialing", "past_due"])
                label = "Active subscriptions"
            stats.append({"label": label, "value": qs.count(), "url": reverse("mirror_list", args=[slug])})

    can_see = {name: user.has_perm(f"payments.view_{KINDS[name].model._meta.model_name}") for name in ("charge", "dispute")}
    volume, recent = [], []
    if can_see["charge"]:
        since = timezone.now() - dt.timedelta(days=30)
        Charge = KINDS["charge"].model
        volume = list(
            Charge.objects.filter(status="succeeded", created__gte=since)
            .order_by()
            .values("currency")
            .annotate(total=Sum("amount"), refunded=Sum("amount_refunded"), n=Count("id"))
            .order_by("-n")[:4]
        )
        recent = list(Charge.objects.defer("data").order_by("-created", "-id")[:8])
    open_disputes, open_count = [], None
    if can_see["dispute"]:
        Dispute = KINDS["dispute"].model
        open_qs = Dispute.objects.filter(status__in=OPEN_DISPUTE_STATUSES)
        open_count = open_qs.count()
        open_disputes = list(open_qs.defer("data").order_by("due_by", "id")[:5])
    failed_events = (
        WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).count()
        if user.has_perm("payments.view_sync_health")
        else None
    )
    return {
        "stats": stats,
        "volume": volume,
        "recent_payments": recent,
        "open_disputes": open_disputes,
        "open_dispute_count": open_count,
        "failed_events": failed_events,
    }
