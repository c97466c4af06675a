from django.urls import reverse

from payments.mirror import KINDS
from payments.models import WebhookEvent
from payments.views import ID_PREFIX_TO_LIST


def search_target(q: str) -> str:
    for prefix, slug in ID_PREFIX_TO_LIST.items():
        if q.startswith(prefix):
            return reverse("mirror_object", args=[slug, q])
    if q.startswith("evt_"):
        return f"{reverse('event_log')}?q={q}"
    return ""


def overview(user) -> dict:
    counts = {}
    for name in ("customer", "charge", "subscription", "dispute"):
        model = KINDS[name].model
        if user.has_perm(f"payments.view_{model._meta.model_name}"):
            counts[name] = model.objects.count()
    open_disputes = (
        KINDS["dispute"].model.objects.filter(status__in=["needs_response", "warning_needs_response"]).order_by("due_by")[:5]
        if user.has_perm("payments.view_dispute")
        else []
    )
    failed_events = (
        WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).count()
        if user.has_perm("payments.view_sync_health")
        else None
    )
    return {"counts": counts, "open_disputes": open_disputes, "failed_events": failed_events}
