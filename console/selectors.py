import datetime as dt

from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _, gettext_lazy

from common import parsing
from payments.mirror import KINDS
from payments.models import WebhookEvent
from payments.stripe_objects import plan_label, price_label, ref, ts
from payments.stripe_words import label as stripe_label

OPEN_DISPUTE_STATUSES = ("needs_response", "warning_needs_response")


def overview(user) -> dict:
    """The home page: a few counts, money taken lately, what needs a person now."""
    stats = []
    for kind, slug, label in (
        ("customer", "customers", gettext_lazy("Customers")),
        ("charge", "payments", gettext_lazy("Payments")),
        ("subscription", "subscriptions", gettext_lazy("Subscriptions")),
    ):
        model = KINDS[kind].model
        if user.has_perm(f"payments.view_{model._meta.model_name}"):
            qs = model.objects.all()
            if kind == "subscription":
                qs = qs.filter(status__in=["active", "trialing", "past_due"])
                label = gettext_lazy("Active subscriptions")
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


# --- the customer page ---------------------------------------------------------------------------

PAGE_SIZE = 50


def customer_header(contact) -> dict:
    """The customer page's header: who, how to reach them, what they paid, what is at risk.
    Four aggregate queries whatever the history's size."""
    from payments.models import Charge, Customer, Dispute, EarlyFraudWarning, Subscription
    from tickets.models import Identity

    identities = list(Identity.objects.filter(contact=contact).order_by("kind", "value").values("kind", "value", "reachable"))
    customer_ids = [i["value"] for i in identities if i["kind"] == Identity.Kind.STRIPE_CUSTOMER]
    customers = list(Customer.objects.filter(pk__in=customer_ids).values("id", "email", "name", "data"))
    tier, vip = "", False
    for c in customers:
        metadata = {k.lower(): v for k, v in ((c["data"] or {}).get("metadata") or {}).items()}
        tier = tier or str(metadata.get("tier") or "")
        vip = vip or str(metadata.get("vip", "")).lower() in ("true", "1", "yes") or tier.lower() == "vip"
    money, disputes, subs, warnings = [], 0, [], []
    if customer_ids:
        charges = Charge.objects.filter(customer__in=customer_ids)
        money = list(
            charges.filter(status="succeeded").order_by().values("currency")
            .annotate(paid=Sum("amount_captured"), refunded=Sum("amount_refunded"), n=Count("id")).order_by("-n")
        )
        disputes = Dispute.objects.filter(
            charge__in=charges.values("id"),
            status__in=("warning_needs_response", "warning_under_review", "needs_response", "under_review"),
        ).count()
        subs = list(
            Subscription.objects.filter(customer__in=customer_ids, status__in=("active", "trialing", "past_due"))
            .values("id", "status", "current_period_end", "cancel_at_period_end")
        )
        warnings = list(
            EarlyFraudWarning.objects.filter(charge__in=charges.values("id"))
            .order_by("-created").values("id", "fraud_type", "actionable", "charge", "created")
        )
    return {
        "identities": [i for i in identities if i["kind"] != Identity.Kind.STRIPE_CUSTOMER],
        "customer_ids": customer_ids, "customers": customers, "money": money, "open_disputes": disputes,
        "subscriptions": subs, "tier": tier, "vip": vip, "fraud_warnings": warnings,
    }


def encode_cursor(entry) -> str:
    """Keyset position: the last entry shown (its time and id)."""
    return parsing.encode_cursor(entry.occurred_at, entry.pk)


def decode_cursor(raw: str) -> tuple[dt.datetime, int] | None:
    """The position a cursor names; None for anything else (the first page is shown)."""
    return parsing.decode_cursor(raw)


def timeline_page(contact_id: int, *, filter_key: str = "", cursor: str = "", size: int = PAGE_SIZE):
    """One page of a contact's timeline, newest first, after `cursor` (no OFFSET: the
    (contact, occurred_at, id) index is walked from the cursor). Returns (entries, next_cursor)."""
    from .models import TimelineEntry
    from .timeline import FILTERS

    qs = TimelineEntry.objects.filter(contact_id=contact_id)
    if filter_key in FILTERS:
        kinds = FILTERS[filter_key][1]
        qs = qs.filter(agent_purchase=True) if kinds is None else (
            qs.filter(kind=kinds[0]) if len(kinds) == 1 else qs.filter(kind__in=kinds)
        )
    position = decode_cursor(cursor) if cursor else None
    if position is not None:
        stamp, pk = position
        qs = qs.filter(Q(occurred_at__lt=stamp) | Q(occurred_at=stamp, id__lt=pk))
    entries = list(qs.order_by("-occurred_at", "-id")[: size + 1])
    more = len(entries) > size
    entries = entries[:size]
    return entries, (encode_cursor(entries[-1]) if more and entries else "")


def recent_activity(contact_id: int, *, besides_ticket: str = "", size: int = 6) -> list:
    """The newest entries of a contact's timeline for the panel beside a ticket, leaving out
    that ticket's own entries (the conversation is already on the page)."""
    from .models import TimelineEntry

    qs = TimelineEntry.objects.filter(contact_id=contact_id)
    ticket_id = parsing.parse_int(besides_ticket)
    if ticket_id is not None:
        qs = qs.exclude(ticket_id=ticket_id)
    return list(qs.order_by("-occurred_at", "-id")[:size])


def activity_around(contact_id: int, moment, *, days: int = 14, size: int = 12) -> list:
    """A contact's timeline around a moment (a disputed charge): what happened in the `days`
    before and after it, oldest first — the orders, messages and refunds a reviewer weighs."""
    import datetime as dt

    from .models import TimelineEntry

    span = dt.timedelta(days=days)
    return list(TimelineEntry.objects.filter(contact_id=contact_id, occurred_at__gte=moment - span,
                                             occurred_at__lte=moment + span)
                .order_by("occurred_at", "id")[:size])


def why_charged(charge_id: str) -> dict | None:
    """The chain that explains a charge: invoice → subscription → price/product and period,
    and whether the subscription was cancelled before or after the charge."""
    from payments.models import Charge, Invoice, Subscription

    from .timeline import _invoice_subscription

    charge = Charge.objects.filter(pk=charge_id).values("id", "data", "invoice", "created", "description",
                                                       "amount", "currency").first()
    if charge is None:
        return None
    data = charge["data"] or {}
    out = {"charge": charge, "invoice": None, "subscription": None, "plan": "", "period": None, "cancelled": None}
    invoice_id = charge["invoice"] or ref(data.get("invoice"))
    invoice = Invoice.objects.filter(pk=invoice_id).values_list("data", flat=True).first() if invoice_id else None
    if invoice is None and invoice_id:
        invoice = {"id": invoice_id}
    if invoice is None:
        # Charges paid through an invoice before the mirror had the charge's invoice field.
        invoice = Invoice.objects.filter(charge=charge_id).values_list("data", flat=True).first()
    out["invoice"] = invoice
    if not invoice:
        out["one_off"] = data.get("description") or charge["description"] or _("a one-off payment (no invoice)")
        return out
    lines = ((invoice.get("lines") or {}).get("data")) or []
    period = (lines[0].get("period") if lines else None) or {}
    start, end = ts(period.get("start") or invoice.get("period_start")), ts(period.get("end") or invoice.get("period_end"))
    out["period"] = (start, end) if start or end else None
    out["billing_reason"] = stripe_label("invoice.billing_reason", invoice.get("billing_reason"))
    sub_id = _invoice_subscription(invoice)
    sub = Subscription.objects.filter(pk=sub_id).values_list("data", flat=True).first() if sub_id else None
    out["subscription"] = sub or ({"id": sub_id} if sub_id else None)
    if sub:
        out["plan"] = plan_label(sub)
        canceled_at = ts(sub.get("canceled_at"))
        charged_at = charge["created"] or ts(data.get("created"))
        if canceled_at:
            # Stripe stamps whole seconds: a cancellation and a charge in the same second happened
            # together, and the timeline (which then orders them by arrival) is not contradicted.
            together = bool(charged_at and canceled_at.replace(microsecond=0) == charged_at.replace(microsecond=0))
            out["cancelled"] = {"at": canceled_at, "together": together,
                                "before_charge": bool(charged_at and canceled_at < charged_at and not together),
                                "at_period_end": bool(sub.get("cancel_at_period_end"))}
        elif sub.get("cancel_at_period_end"):
            out["cancelled"] = {"at": ts(sub.get("cancel_at") or sub.get("current_period_end")), "scheduled": True}
    if not out["plan"] and lines:
        line_price = lines[0].get("price") or (lines[0].get("pricing") or {}).get("price_details", {}).get("price")
        out["plan"] = price_label(line_price) if line_price else (lines[0].get("description") or "")
    return out


# --- the home page: the person's own work first ----------------------------------------------

HOME_QUEUE_SIZE = 5


def home_queue(user) -> dict:
    """What waits for this person, above the shop's Stripe figures: their open and pending
    tickets (latest activity first), tickets in their views due within the hour or late, and
    for finance and admins the open tickets asking for a refund approval. A few rows each."""
    from django.urls import NoReverseMatch

    from tickets.models import Ticket

    from .actions import APPROVAL_TAG

    if not user.has_perm("tickets.view_ticket"):
        return {}
    active = (Ticket.objects.filter(status__in=Ticket.ACTIVE_STATUSES).select_related("requester")
              .prefetch_related("requester__identities"))
    mine = list(active.filter(assignee=user).order_by("-updated", "-id")[:HOME_QUEUE_SIZE])
    # "In their views": theirs, unassigned, or their teams' (the inbox's views).
    views = Q(assignee=user) | Q(assignee__isnull=True) | Q(team__in=user.ticket_teams.all())
    soon = timezone.now() + dt.timedelta(hours=1)
    sla = list(active.filter(views, sla_due__lte=soon).order_by("sla_due", "id").distinct()[:HOME_QUEUE_SIZE])
    approvals, approvals_url = None, ""
    groups = set(user.groups.values_list("name", flat=True))
    if user.has_perm("payments.refund_charge") and (user.is_superuser or groups & {"finance", "admin"}):
        waiting = active.filter(tags__name=APPROVAL_TAG)
        approvals = {"count": waiting.count(), "rows": list(waiting.order_by("created", "id")[:HOME_QUEUE_SIZE])}
        try:
            approvals_url = reverse("approvals")
        except NoReverseMatch:  # the approvals page is not installed: the tagged tickets
            approvals_url = f"{reverse('inbox', args=['all'])}?tag={APPROVAL_TAG}"
    return {"mine": mine, "sla": sla, "approvals": approvals, "approvals_url": approvals_url,
            "mine_url": reverse("inbox", args=["mine"]), "now": timezone.now()}
