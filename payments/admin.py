"""Django admin for data fixes: mirrored fields are read-only; changes go through actions."""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from . import actions
from .mirror import KINDS
from .models import SyncCursor, WebhookEvent
from .money import format_money


def _pretty(data) -> str:
    return format_html("<pre style='white-space:pre-wrap;max-height:600px;overflow:auto'>{}</pre>", json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


class MirrorAdmin(admin.ModelAdmin):
    """Shared by every mirrored type: the mirror is Stripe's truth, so nothing is edited here."""

    kind_name = ""
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) over a million rows on every page is not free
    exclude = ("data",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "data"] + ["raw_object"]

    @admin.display(description="Raw Stripe object")
    def raw_object(self, obj):
        return _pretty(obj.data)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.defer("data") if request.resolver_match and request.resolver_match.url_name.endswith("changelist") else qs

    @admin.action(description="Re-sync from Stripe")
    def resync(self, request, queryset):
        try:
            n = actions.resync_objects(self.kind_name, list(queryset.values_list("id", flat=True)[:200]), actor=request.user)
        except Exception as exc:
            self.message_user(request, f"Re-sync failed: {exc.__class__.__name__}: {exc}", messages.ERROR)
            return
        self.message_user(request, f"Re-synced {n} object(s) from Stripe.", messages.SUCCESS)

    actions = ["resync"]


def _money_column(field):
    @admin.display(description=field.replace("_", " "), ordering=field)
    def column(obj):
        return format_money(getattr(obj, field), obj.currency)

    return column


def register(kind_name, list_display, list_filter=(), search_fields=("id",)):
    kind = KINDS[kind_name]
    display = [(_money_column(f[1:]) if f.startswith("$") else f) for f in list_display]
    attrs = {
        "kind_name": kind_name,
        "list_display": display,
        "list_filter": list_filter,
        "search_fields": search_fields,
        "date_hierarchy": "created",
    }
    admin.site.register(kind.model, type(f"{kind.model.__name__}Admin", (MirrorAdmin,), attrs))


register("customer", ["id", "email", "name", "created", "deleted"], ["deleted", "delinquent", "livemode"], ["=id", "email", "name"])
register("product", ["id", "name", "active", "created"], ["active"], ["=id", "name"])
register("price", ["id", "product", "nickname", "$unit_amount", "recurring_interval", "active"], ["active", "currency"], ["=id", "=product"])
register("payment_intent", ["id", "customer", "$amount", "status", "created"], ["status", "currency"], ["=id", "=customer"])
register("charge", ["id", "customer", "billing_email", "$amount", "$amount_refunded", "status", "disputed", "created"], ["status", "refunded", "disputed", "currency"], ["=id", "=customer", "=payment_intent", "billing_email"])
register("refund", ["id", "charge", "$amount", "status", "reason", "created"], ["status", "reason"], ["=id", "=charge"])
register("dispute", ["id", "charge", "$amount", "status", "reason", "due_by"], ["status", "reason"], ["=id", "=charge"])
register("subscription", ["id", "customer", "status", "current_period_end", "cancel_at_period_end"], ["status", "cancel_at_period_end"], ["=id", "=customer"])
register("invoice", ["id", "number", "customer", "$amount_due", "status", "created"], ["status"], ["=id", "=customer", "number", "=subscription"])
register("radar.early_fraud_warning", ["id", "charge", "fraud_type", "actionable", "created"], ["fraud_type", "actionable"], ["=id", "=charge"])


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "object_id", "status", "attempts", "source", "created", "received_at")
    list_filter = ("status", "source", "type")
    search_fields = ("=id", "=object_id", "type")
    date_hierarchy = "received_at"
    list_per_page = 50
    show_full_result_count = False
    exclude = ("payload",)
    actions = ["replay"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in WebhookEvent._meta.fields if f.name != "payload"] + ["raw_event"]

    @admin.display(description="Raw event")
    def raw_event(self, obj):
        return _pretty(obj.payload)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Replay (apply again)")
    def replay(self, request, queryset):
        n = actions.replay_events(list(queryset.values_list("id", flat=True)[:1000]), actor=request.user)
        self.message_user(request, f"Queued {n} event(s) for replay.", messages.SUCCESS)


@admin.register(SyncCursor)
class SyncCursorAdmin(admin.ModelAdmin):
    list_display = ("name", "count", "cursor", "started_at", "finished_at")
    readonly_fields = ("name", "cursor", "since", "count", "started_at", "finished_at", "last_error", "updated_at")

    def has_add_permission(self, request):
        return False
