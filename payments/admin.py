"""Django admin for data fixes: mirrored fields are read-only; changes go through actions.

The mirror is Stripe's truth, so nothing is edited by hand here. A wrong row is fixed by
"Re-sync from Stripe" (objects) or "Replay" (events), both audited by the actions.
"""

import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext as _, gettext_lazy, ngettext

from common import admin as admin_base

from .actions import events as actions
from .mirror import KINDS
from .models import SyncCursor, WebhookEvent
from .money import format_money

MAX_RESYNC = 200  # one API read per object, inside the request: keep a click bounded
MAX_REPLAY = 1000


def _pretty(data) -> str:
    return format_html(
        '<pre style="white-space:pre-wrap;max-height:640px;overflow:auto;font-size:12px;line-height:1.5;'
        'background:var(--darkened-bg);padding:12px;border-radius:4px;margin:0">{}</pre>',
        json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False),
    )


class ReadOnlyAdmin(admin_base.ReadOnlyAdmin):
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) over a million rows on every page is not free


class MirrorAdmin(ReadOnlyAdmin):
    """Shared by every mirrored type."""

    kind_name = ""
    exclude = ("data",)
    actions = ["resync"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "data"] + ["raw_object"]

    @admin.display(description=gettext_lazy("Raw Stripe object"))
    def raw_object(self, obj):
        return _pretty(obj.data)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        match = request.resolver_match
        # The list never shows the JSON; don't read it.
        return qs.defer("data") if match and match.url_name and match.url_name.endswith("changelist") else qs

    def has_resync_permission(self, request):
        return request.user.has_perm("payments.resync_object")

    @admin.action(description=gettext_lazy("Re-sync selected from Stripe"), permissions=["resync"])
    def resync(self, request, queryset):
        ids = list(queryset.order_by("pk").values_list("id", flat=True)[: MAX_RESYNC + 1])
        if len(ids) > MAX_RESYNC:
            self.message_user(request, _("Select at most %(limit)s objects to re-sync at once.") % {"limit": MAX_RESYNC},
                              messages.WARNING)
            return
        try:
            n = actions.resync_objects(self.kind_name, ids, actor=request.user)
        except Exception as exc:
            # Stripe's messages name the object, never the key; nothing was written.
            self.message_user(request, _("Re-sync failed, nothing changed: %(error)s")
                              % {"error": f"{exc.__class__.__name__}: {exc}"}, messages.ERROR)
            return
        self.message_user(request, ngettext("Re-synced %(count)s object from Stripe.",
                                            "Re-synced %(count)s objects from Stripe.", n) % {"count": n}, messages.SUCCESS)


# The money columns' headers (Django's own would be the field's name).
_MONEY_HEADERS = {
    "amount": gettext_lazy("amount"),
    "amount_refunded": gettext_lazy("amount refunded"),
    "amount_due": gettext_lazy("amount due"),
    "unit_amount": gettext_lazy("unit amount"),
}


def _money_column(field):
    @admin.display(description=_MONEY_HEADERS.get(field, field.replace("_", " ")), ordering=field)
    def column(obj):
        return format_money(getattr(obj, field), obj.currency)

    column.__name__ = f"{field}_display"
    return column


def register(kind_name, list_display, list_filter=(), search_fields=("=id",)):
    kind = KINDS[kind_name]
    display = [(_money_column(f[1:]) if f.startswith("$") else f) for f in list_display]
    attrs = {
        "kind_name": kind_name,
        "list_display": display,
        "list_filter": list_filter,
        "search_fields": search_fields,
        "search_help_text": (gettext_lazy("Search by Stripe id or email") if any("email" in s for s in search_fields)
                             else gettext_lazy("Search by Stripe id")),
        "date_hierarchy": "created",
    }
    admin.site.register(kind.model, type(f"{kind.model.__name__}Admin", (MirrorAdmin,), attrs))


# Search: "=field" is an exact match (Stripe ids, indexed); plain fields are icontains.
register("customer", ["id", "email", "name", "created", "deleted"], ["deleted", "delinquent", "livemode"],
         ["=id", "email", "name"])
register("product", ["id", "name", "active", "created"], ["active", "deleted"], ["=id", "name"])
register("price", ["id", "product", "nickname", "$unit_amount", "recurring_interval", "active"],
         ["active", "currency", "recurring_interval"], ["=id", "=product", "nickname"])
register("payment_intent", ["id", "customer", "$amount", "status", "created"], ["status", "currency"],
         ["=id", "=customer", "=latest_charge"])
register("charge", ["id", "customer", "billing_email", "$amount", "$amount_refunded", "status", "disputed", "created"],
         ["status", "refunded", "disputed", "currency"], ["=id", "=customer", "=payment_intent", "billing_email"])
register("refund", ["id", "charge", "$amount", "status", "reason", "created"], ["status", "reason", "currency"],
         ["=id", "=charge", "=payment_intent"])
register("dispute", ["id", "charge", "$amount", "status", "reason", "due_by"], ["status", "reason", "currency"],
         ["=id", "=charge", "=payment_intent"])
register("subscription", ["id", "customer", "status", "current_period_end", "cancel_at_period_end", "created"],
         ["status", "cancel_at_period_end"], ["=id", "=customer"])
register("invoice", ["id", "number", "customer", "$amount_due", "status", "created"], ["status", "currency"],
         ["=id", "=customer", "number", "=subscription", "=charge"])
register("radar.early_fraud_warning", ["id", "charge", "fraud_type", "actionable", "created"],
         ["fraud_type", "actionable"], ["=id", "=charge", "=payment_intent"])


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "object_id", "status", "attempts", "short_error", "source", "created", "received_at")
    list_filter = ("status", "source", "type")
    search_fields = ("=id", "=object_id", "type")
    search_help_text = gettext_lazy("Search by event id, object id or event type")
    date_hierarchy = "received_at"
    exclude = ("payload",)
    actions = ["replay"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in WebhookEvent._meta.fields if f.name != "payload"] + ["raw_event"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        match = request.resolver_match
        return qs.defer("payload") if match and match.url_name and match.url_name.endswith("changelist") else qs

    @admin.display(description=gettext_lazy("Error"))
    def short_error(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.display(description=gettext_lazy("Raw event"))
    def raw_event(self, obj):
        return _pretty(obj.payload)

    def has_replay_permission(self, request):
        return request.user.has_perm("payments.replay_event")

    @admin.action(description=gettext_lazy("Replay selected events (apply again)"), permissions=["replay"])
    def replay(self, request, queryset):
        ids = list(queryset.order_by("received_at").values_list("id", flat=True)[: MAX_REPLAY + 1])
        if len(ids) > MAX_REPLAY:
            self.message_user(request, _("Select at most %(limit)s events to replay at once.") % {"limit": MAX_REPLAY},
                              messages.WARNING)
            return
        n = actions.replay_events(ids, actor=request.user)
        self.message_user(request, ngettext("Queued %(count)s event for replay.", "Queued %(count)s events for replay.", n)
                          % {"count": n}, messages.SUCCESS)


@admin.register(SyncCursor)
class SyncCursorAdmin(ReadOnlyAdmin):
    list_display = ("name", "count", "cursor", "started_at", "finished_at", "last_error")
    readonly_fields = ("name", "cursor", "since", "count", "started_at", "finished_at", "last_error", "updated_at")

    def has_view_permission(self, request, obj=None):
        # Checkpoints are what the sync-health page shows; the same permission reads them here.
        return request.user.has_perm("payments.view_sync_health")
