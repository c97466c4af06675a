"""The customer timeline, materialised: what payments and tickets announce becomes rows of
console.TimelineEntry, one per thing a person would tell apart.

Idempotency: each entry has a `source` key — the Stripe object for once-only kinds (a
charge succeeds once, a refund is one refund), the event for repeatable ones (a dispute is
updated many times) — and (source, kind) is unique, so a replay or a rebuild upserts
instead of duplicating. The same mapping serves the receivers and `timeline_rebuild`.
"""

from __future__ import annotations

import functools

from typing import Callable, Iterable

from django.db.models import OuterRef, Q, Subquery
from django.utils import translation
from django.utils.translation import gettext as _, gettext_lazy, pgettext, pgettext_lazy

from common.l10n import format_date

from audit.models import AuditAction, AuditEntry
from payments.models import Charge, Dispute, EarlyFraudWarning, Invoice, PaymentIntent, Refund, Subscription
from payments.stripe_objects import plan_facts, plan_facts_text, ref, ts
from payments.stripe_words import label as stripe_label
from tickets.models import Identity, Message, Ticket, TicketMerge

from .models import SharedPaymentToken, TimelineEntry
from .workflows import describe as workflow_describe

K = TimelineEntry.Kind
UPDATE_FIELDS = ["contact", "customer", "ticket_id", "object_id", "title", "summary", "amount", "currency",
                 "agent_purchase", "data"]

# Chips on the customer page: label → kinds (None: the agent-purchase flag).
FILTERS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "payments": (gettext_lazy("Payments"), (K.PAYMENT_SUCCEEDED, K.PAYMENT_FAILED)),
    "refunds": (gettext_lazy("Refunds"), (K.REFUND,)),
    "disputes": (gettext_lazy("Disputes"), (K.DISPUTE_OPENED, K.DISPUTE_UPDATED, K.DISPUTE_CLOSED)),
    "fraud": (gettext_lazy("Fraud warnings"), (K.FRAUD_WARNING,)),
    "subscriptions": (gettext_lazy("Subscriptions"),
                      (K.SUBSCRIPTION_STARTED, K.SUBSCRIPTION_CHANGED, K.SUBSCRIPTION_CANCELLED)),
    "invoices": (gettext_lazy("Invoices"), (K.INVOICE_PAID, K.INVOICE_FAILED)),
    "tickets": (gettext_lazy("Tickets & messages"), (K.TICKET, K.MESSAGE)),
    "actions": (gettext_lazy("Agent actions"), (K.ACTION, K.WORKFLOW_RUN)),
    # An AI agent paid with a shared payment token (not an agent of the console).
    "agent": (pgettext_lazy("AI agent", "Agent purchases"), None),
}

A = AuditAction
# Audit actions already on the timeline as tickets or messages.
AUDIT_COVERED = {A.TICKET_CREATE, A.MESSAGE_RECEIVE, A.TICKET_REPLY, A.TICKET_NOTE, A.IDENTITY_LINK_SKIPPED}
# A ticket's own housekeeping (who has it, its tags, priority, subject, a macro): the ticket
# page's business, noise on the customer's timeline. They stay in the audit log.
AUDIT_TICKET_INTERNAL = {A.TICKET_ASSIGN, A.TICKET_TAGS, A.TICKET_PRIORITY, A.TICKET_SUBJECT, A.TICKET_MACRO,
                         # assist's reading and drafts: shown on the ticket, not the customer's story
                         A.MESSAGE_TRIAGE, A.REPLY_DRAFT, A.REPLY_DRAFT_DISCARD}
# A ticket merge and its undo: audited on both tickets; their messages' entries follow them.
AUDIT_TICKET_MERGES = {A.TICKET_MERGE, A.TICKET_MERGE_UNDO}
# Audit actions that move a contact's entries to another contact.
AUDIT_REPOINTS = {A.CONTACT_MERGE, A.CONTACT_MERGE_UNDO, A.IDENTITY_LINK, A.IDENTITY_UNLINK}
# What Paydesk itself does to contacts and tickets (links made from Stripe emails, LINE
# follows, deliveries): bookkeeping, not an agent's action, when no person did it.
AUDIT_SYSTEM_BOOKKEEPING = {
    A.CONTACT_CREATE, A.CONTACT_UPDATE, A.CONTACT_MERGE, A.CONTACT_MERGE_UNDO, A.IDENTITY_LINK, A.IDENTITY_UNLINK,
    A.IDENTITY_LINK_SKIPPED, A.IDENTITY_LINE_FOLLOW, A.IDENTITY_LINE_UNFOLLOW, A.TICKET_CREATE, A.TICKET_REPLY,
    A.TICKET_NOTE, A.TICKET_STATUS, A.TICKET_PRIORITY, A.TICKET_SUBJECT, A.TICKET_ASSIGN, A.TICKET_TAGS,
    A.TICKET_MACRO, A.MESSAGE_RECEIVE, A.MESSAGE_DELIVERED, A.MESSAGE_DELIVERY_FAILED, A.MESSAGE_RETRY,
}


class Resolver:
    """Mirror and identity look-ups, cached for one receiver call or one rebuild."""

    def __init__(self):
        self.contacts: dict[str, int | None] = {}
        self.charges: dict[str, dict | None] = {}

    def contact(self, customer_id: str) -> int | None:
        if not customer_id:
            return None
        if customer_id not in self.contacts:
            self.contacts[customer_id] = (
                Identity.objects.filter(kind=Identity.Kind.STRIPE_CUSTOMER, value=customer_id)
                .values_list("contact_id", flat=True).first()
            )
        return self.contacts[customer_id]

    def charge(self, charge_id: str) -> dict | None:
        if not charge_id:
            return None
        if charge_id not in self.charges:
            row = Charge.objects.filter(pk=charge_id).values("customer", "amount", "currency", "payment_intent").first()
            self.charges[charge_id] = row
        return self.charges[charge_id]

    def charge_customer(self, charge) -> str:
        if isinstance(charge, dict):
            return ref(charge.get("customer"))
        row = self.charge(charge)
        return (row or {}).get("customer") or ""


# --- agent purchases (shared payment tokens) -----------------------------------------------


def _in_english(project):
    """Rows are written in English whoever's request wrote them (an agent's action projects in
    their request, after commit): a plan label or a Stripe word kept as a parameter must not
    be stored in one reader's language. Display translates (entry_title, entry_summary)."""

    @functools.wraps(project)
    def in_english(*args, **kwargs):
        with translation.override("en"):
            return project(*args, **kwargs)

    return in_english


def _spt_ref(obj: dict):
    """Where a PaymentIntent or charge names the shared payment token that funded it."""
    pmd = obj.get("payment_method_details") or {}
    pm_data = obj.get("payment_method_data") or {}
    for holder in (obj, pmd, pm_data, pmd.get(pmd.get("type") or "") or {}):
        if isinstance(holder, dict) and holder.get("shared_payment_granted_token"):
            return holder["shared_payment_granted_token"]
    return None


def record_granted_token(token: dict) -> SharedPaymentToken:
    """Keep a granted token as recorded JSON (the mirror and localstripe have none)."""
    row, _created = SharedPaymentToken.objects.update_or_create(pk=token["id"], defaults={"data": token})
    return row


def agent_purchase(obj: dict, resolver: Resolver | None = None) -> dict | None:
    """The token's limits if `obj` (a charge or PaymentIntent) was paid with one, else None.
    A charge without the reference is looked up through its PaymentIntent in the mirror."""
    found = _spt_ref(obj)
    if found is None and obj.get("object") == "charge" and obj.get("payment_intent"):
        pi = PaymentIntent.objects.filter(pk=ref(obj["payment_intent"])).values_list("data", flat=True).first()
        found = _spt_ref(pi or {})
    if not found:
        return None
    token = found if isinstance(found, dict) else None
    if token is not None and token.get("object") == "shared_payment.granted_token" and token.get("id"):
        record_granted_token(token)
    elif token is None:
        token = SharedPaymentToken.objects.filter(pk=found).values_list("data", flat=True).first() or {"id": found}
    limits = token.get("usage_limits") or {}
    agent = (token.get("agent_details") or {}).get("network_business_profile") or ""
    return {
        "token": token.get("id") or "",
        "max_amount": limits.get("max_amount"),
        "currency": limits.get("currency") or "",
        "expires_at": limits.get("expires_at"),
        "agent": agent if isinstance(agent, str) else "",
        "deactivated_at": token.get("deactivated_at"),
    }


# --- what an entry says: a message key and its parameters, worded when read ---------------------
#
# An entry is written where nobody reads it (a Celery worker), and read by agents in their
# own language. So each entry keeps, in data["say"], what it says as keys and parameters:
#
#     {"title": [key, {params}], "summary": [[key, {params}], ...] or None}
#
# entry_title()/entry_summary() word them in the active language; `title`/`summary` keep the
# English wording (search, the admin, and rows written before "say" existed). A summary of
# None is free text (a charge's description, a message's body) shown as stored.


def _words(value: str) -> str:
    return (value or "").replace("_", " ")


def _number(p: dict) -> str:
    return str(p.get("number") or "")


def _refund_title(p: dict) -> str:
    status = p.get("status")
    if status in ("succeeded", "pending", None, ""):
        return pgettext("timeline", "Refund")
    return _("Refund %(status)s") % {"status": stripe_label("refund.status", status)}


def _message_title(p: dict) -> str:
    kind, number = p.get("kind"), _number(p)
    if kind == "inbound":
        return _("Customer wrote on #%(number)s") % {"number": number}
    if kind == "outbound":
        return _("Agent replied on #%(number)s") % {"number": number}
    if kind == "note":
        return _("Internal note on #%(number)s") % {"number": number}
    return _("Message on #%(number)s") % {"number": number}


TITLES: dict[str, Callable[[dict], str]] = {
    "payment": lambda p: pgettext("timeline", "Payment"),
    "payment_failed": lambda p: _("Payment failed"),
    "refund": _refund_title,
    "dispute_opened": lambda p: _("Dispute opened"),
    "dispute_updated": lambda p: _("Dispute updated"),
    "dispute_closed": lambda p: _("Dispute closed — %(status)s") % {
        "status": stripe_label("dispute.status", p.get("status"))},
    "fraud_warning": lambda p: _("Early fraud warning"),
    "subscription_started": lambda p: _("Subscription started"),
    "subscription_changed": lambda p: _("Subscription changed"),
    "subscription_cancelled": lambda p: _("Subscription cancelled"),
    "invoice_paid": lambda p: _("Invoice %(number)s paid") % {"number": _number(p)},
    "invoice_failed": lambda p: _("Invoice %(number)s payment failed") % {"number": _number(p)},
    "ticket": lambda p: _("Ticket #%(number)s: %(subject)s") % {"number": _number(p), "subject": p.get("subject") or ""},
    "message": _message_title,
    "action": lambda p: action_title(p.get("action") or "", {
        **({"status": {"to": p["to"]}} if p.get("to") else {}), "at_period_end": p.get("at_period_end")},
        f"ticket:{_number(p)}"),
    "workflow_run": lambda p: _workflow_run_title(p),
}


def _workflow_run_title(p: dict) -> str:
    name = p.get("name") or ""
    if p.get("status") == "failed":
        return _("Workflow “%(name)s” failed") % {"name": name}
    if p.get("status") == "stopped":
        return _("Workflow “%(name)s” stopped") % {"name": name}
    return _("Workflow “%(name)s” ran") % {"name": name}


def _failure(p: dict) -> str:
    """Stripe's failure message is English: English readers get it, others the decline code's word."""
    code, message = p.get("code") or "", p.get("message") or ""
    if message and (not code or (translation.get_language() or "en").startswith("en")):
        return message
    return stripe_label("charge.failure_code", code)


def _dispute_event(p: dict) -> str:
    event = p.get("event") or ""
    if event == "updated":
        return pgettext("dispute event", "Updated")
    if event == "funds_withdrawn":
        return _("Funds withdrawn")
    if event == "funds_reinstated":
        return _("Funds reinstated")
    return _words(event)


def _cancel_at_period_end(p: dict) -> str:
    end = ts(p.get("at"))
    if end:
        return _("Set to cancel at period end (%(date)s)") % {"date": format_date(end)}
    return _("Set to cancel at period end")


def _invoice_attempt(p: dict) -> str:
    attempt, nxt = p.get("attempt") or 1, ts(p.get("next"))
    if nxt:
        return _("Attempt %(attempt)s, next try %(date)s") % {"attempt": attempt, "date": format_date(nxt)}
    return _("Attempt %(attempt)s, no retry scheduled") % {"attempt": attempt}


def _plans(value) -> str:
    """Plans kept as facts (said in the reader's language), or as text by an older version."""
    return plan_facts_text(value) if isinstance(value, list) else str(value or "")


def _plan_parts(subscription: dict) -> list:
    facts = plan_facts(subscription)
    return [_part("plan", items=facts)] if facts else []


def _priority(p: dict) -> str:
    try:
        return str(Ticket.Priority(p.get("value")).label)
    except ValueError:
        return _words(p.get("value") or "")


PARTS: dict[str, Callable[[dict], str]] = {
    "text": lambda p: str(p.get("text") or ""),
    "word": lambda p: stripe_label(p.get("field") or "", p.get("value")),
    "failure": _failure,
    "dispute_event": _dispute_event,
    "plan_change": lambda p: _("Plan %(old)s → %(new)s") % {"old": _plans(p.get("old")) or "—",
                                                             "new": _plans(p.get("new")) or "—"},
    "plan": lambda p: _plans(p.get("items")),
    "cancel_at_period_end": _cancel_at_period_end,
    "cancel_withdrawn": lambda p: _("Cancellation withdrawn"),
    "status_change": lambda p: _("Status %(old)s → %(new)s") % {
        "old": stripe_label("subscription.status", p.get("old")) or "—",
        "new": stripe_label("subscription.status", p.get("new")) or "—"},
    "collection_paused": lambda p: _("Collection paused"),
    "collection_resumed": lambda p: _("Collection resumed"),
    "invoice_attempt": _invoice_attempt,
    "priority": _priority,
    "workflow_step": lambda p: workflow_describe.step_sentence(p),
    "workflow_why": lambda p: _("because of %(event)s on %(object)s") % {
        "event": p.get("event") or "", "object": p.get("object") or "—"},
}
SEPARATOR = " · "


def _title_text(say: dict) -> str:
    key, params = say["title"]
    return TITLES[key](params or {})


def _summary_text(say: dict) -> str | None:
    parts = say.get("summary")
    if parts is None:
        return None
    return SEPARATOR.join(t for t in (PARTS[key](params or {}) for key, params in parts) if t)


def entry_title(e) -> str:
    """The entry's title in the reader's language (the stored English for rows without "say")."""
    say = (e.data or {}).get("say") if isinstance(e.data, dict) else None
    if not say:
        return e.title
    try:
        return _title_text(say)
    except (KeyError, TypeError, ValueError, AttributeError):  # a key this version does not know
        return e.title


def entry_summary(e) -> str:
    """The entry's summary in the reader's language; free text as stored."""
    say = (e.data or {}).get("say") if isinstance(e.data, dict) else None
    if not say:
        return e.summary
    try:
        text = _summary_text(say)
    except (KeyError, TypeError, ValueError, AttributeError):
        return e.summary
    return e.summary if text is None else text


def _say(title: tuple[str, dict], summary: list | None) -> tuple[dict, str, str | None]:
    """data["say"] and its English wording, the stored title and summary."""
    say = {"title": [title[0], title[1]], "summary": [[k, p] for k, p in summary] if summary is not None else None}
    with translation.override("en"):
        return say, _title_text(say), _summary_text(say)


def _part(key: str, **params) -> tuple[str, dict]:
    return key, params


def _word(field: str, value) -> list:
    return [_part("word", field=field, value=value)] if value else []


def _text(value) -> list:
    return [_part("text", text=value)] if value else []


# --- Stripe objects → entries -----------------------------------------------------------------


def _entry(kind, source, occurred, *, obj_id="", customer="", title: tuple[str, dict], summary: list | None = None,
           amount=None, currency="", data=None, agent=None, resolver: Resolver) -> dict:
    """One entry; `title` is (key, params) of TITLES, `summary` a list of (key, params) of
    PARTS, or None with `data["text"]` free text."""
    free = (data or {}).pop("text", "") if summary is None else ""
    say, title_en, summary_en = _say(title, summary)
    return {
        "kind": kind, "source": source, "occurred_at": occurred, "object_id": obj_id, "customer": customer,
        "contact_id": resolver.contact(customer), "ticket_id": None, "title": title_en[:255],
        "summary": (free if summary_en is None else summary_en or "")[:500], "amount": amount,
        "currency": (currency or "").lower(), "agent_purchase": agent is not None,
        "data": {**(data or {}), **({"agent": agent} if agent else {}), "say": say},
    }


def _subscription_change(sub: dict, prev: dict) -> list | None:
    parts = []
    if "items" in prev or "plan" in prev:
        old = plan_facts({"items": prev.get("items") or {}, "plan": prev.get("plan")})
        parts.append(_part("plan_change", old=old, new=plan_facts(sub)))
    if "cancel_at_period_end" in prev:
        if sub.get("cancel_at_period_end"):
            parts.append(_part("cancel_at_period_end", at=sub.get("cancel_at") or sub.get("current_period_end")))
        else:
            parts.append(_part("cancel_withdrawn"))
    if "status" in prev:
        parts.append(_part("status_change", old=prev.get("status") or "", new=sub.get("status") or ""))
    if "pause_collection" in prev:
        parts.append(_part("collection_paused" if sub.get("pause_collection") else "collection_resumed"))
    return parts or None


def cancellation_parts(sub: dict) -> list:
    details = sub.get("cancellation_details") or {}
    return (_word("subscription.cancellation_reason", details.get("reason"))
            + _word("subscription.cancellation_feedback", details.get("feedback")) + _text(details.get("comment")))


@_in_english
def stripe_entries(event: dict | None, obj: dict, kind: str, resolver: Resolver | None = None) -> list[dict]:
    """Entries for one Stripe object as an event left it (event None: from the mirror alone)."""
    r = resolver or Resolver()
    etype = (event or {}).get("type") or ""
    ev_id = (event or {}).get("id") or ""
    when = ts((event or {}).get("created")) or ts(obj.get("created"))
    oid = obj.get("id") or ""
    out: list[dict] = []

    if kind == "charge":
        customer = ref(obj.get("customer"))
        status = obj.get("status")
        if status == "succeeded" or etype in ("charge.succeeded", "charge.captured"):
            agent = agent_purchase(obj, r)
            out.append(_entry(
                K.PAYMENT_SUCCEEDED, oid, ts(obj.get("created")) or when, obj_id=oid, customer=customer,
                title=("payment", {}), amount=obj.get("amount"), currency=obj.get("currency"), agent=agent, resolver=r,
                data={"invoice": ref(obj.get("invoice")), "payment_intent": ref(obj.get("payment_intent")),
                      "text": obj.get("description") or obj.get("statement_descriptor") or ""},
            ))
        elif status == "failed" or etype == "charge.failed":
            failure = ([_part("failure", code=obj.get("failure_code") or "", message=obj.get("failure_message") or "")]
                       if obj.get("failure_code") or obj.get("failure_message") else [])
            out.append(_entry(
                K.PAYMENT_FAILED, oid, ts(obj.get("created")) or when, obj_id=oid, customer=customer,
                title=("payment_failed", {}), summary=failure,
                amount=obj.get("amount"), currency=obj.get("currency"), agent=agent_purchase(obj, r), resolver=r,
            ))
        for refund in ((obj.get("refunds") or {}).get("data") or []):
            out += stripe_entries(None, {**refund, "charge": {"id": oid, "customer": customer}}, "refund", r)
    elif kind == "refund":
        charge = obj.get("charge")
        out.append(_entry(
            K.REFUND, oid, ts(obj.get("created")) or when, obj_id=oid, customer=r.charge_customer(charge),
            title=("refund", {"status": obj.get("status") or ""}), summary=_word("refund.reason", obj.get("reason")),
            amount=obj.get("amount"), currency=obj.get("currency"),
            data={"charge": ref(charge), "status": obj.get("status") or ""}, resolver=r,
        ))
    elif kind == "dispute":
        charge = obj.get("charge")
        status, reason = obj.get("status") or "", obj.get("reason") or ""
        common = dict(obj_id=oid, customer=r.charge_customer(charge), amount=obj.get("amount"),
                      currency=obj.get("currency"), resolver=r)
        data = {"charge": ref(charge), "status": status, "reason": reason}
        if etype in ("", "charge.dispute.created"):
            out.append(_entry(K.DISPUTE_OPENED, oid, ts(obj.get("created")) or when, title=("dispute_opened", {}),
                              summary=_word("dispute.reason", reason), data=dict(data), **common))
        if etype in ("charge.dispute.updated", "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"):
            out.append(_entry(K.DISPUTE_UPDATED, ev_id, when, title=("dispute_updated", {}),
                              summary=[_part("dispute_event", event=etype.rsplit(".", 1)[-1])]
                              + _word("dispute.status", status), data=dict(data), **common))
        if etype == "charge.dispute.closed" or (not etype and status in ("won", "lost", "warning_closed")):
            out.append(_entry(K.DISPUTE_CLOSED, oid, when if etype else ts(obj.get("created")),
                              title=("dispute_closed", {"status": status}),
                              summary=_word("dispute.reason", reason), data=dict(data), **common))
    elif kind in ("radar.early_fraud_warning", "early_fraud_warning"):
        charge = obj.get("charge")
        row = r.charge(ref(charge)) or {}
        out.append(_entry(
            K.FRAUD_WARNING, oid, ts(obj.get("created")) or when, obj_id=oid, customer=r.charge_customer(charge),
            title=("fraud_warning", {}), summary=_word("early_fraud_warning.fraud_type", obj.get("fraud_type")),
            amount=row.get("amount"), currency=row.get("currency") or "", resolver=r,
            data={"charge": ref(charge), "actionable": bool(obj.get("actionable"))},
        ))
    elif kind == "subscription":
        customer = ref(obj.get("customer"))
        status = obj.get("status") or ""
        plan = _plan_parts(obj)
        if etype in ("", "customer.subscription.created"):
            out.append(_entry(K.SUBSCRIPTION_STARTED, oid, ts(obj.get("start_date") or obj.get("created")) or when,
                              obj_id=oid, customer=customer, title=("subscription_started", {}),
                              summary=plan, currency=obj.get("currency") or "", data={"status": status},
                              resolver=r))
        if etype == "customer.subscription.updated":
            change = _subscription_change(obj, ((event or {}).get("data") or {}).get("previous_attributes") or {})
            if change:
                out.append(_entry(K.SUBSCRIPTION_CHANGED, ev_id, when, obj_id=oid, customer=customer,
                                  title=("subscription_changed", {}), summary=change, data={"status": status},
                                  resolver=r))
        if etype == "customer.subscription.deleted" or (not etype and status == "canceled"):
            out.append(_entry(K.SUBSCRIPTION_CANCELLED, oid, ts(obj.get("ended_at") or obj.get("canceled_at")) or when,
                              obj_id=oid, customer=customer, title=("subscription_cancelled", {}),
                              summary=plan + cancellation_parts(obj),
                              data={"status": status, "cancellation": obj.get("cancellation_details") or {}},
                              resolver=r))
    elif kind == "invoice":
        customer = ref(obj.get("customer"))
        number = obj.get("number") or oid
        if etype in ("invoice.paid", "invoice.payment_succeeded") or (not etype and obj.get("status") == "paid"):
            paid_at = ts((obj.get("status_transitions") or {}).get("paid_at"))
            out.append(_entry(K.INVOICE_PAID, oid, paid_at or when, obj_id=oid, customer=customer,
                              title=("invoice_paid", {"number": number}),
                              summary=_word("invoice.billing_reason", obj.get("billing_reason")),
                              amount=obj.get("amount_paid"), currency=obj.get("currency"), resolver=r,
                              data={"subscription": _invoice_subscription(obj)}))
        if etype == "invoice.payment_failed":
            out.append(_entry(K.INVOICE_FAILED, ev_id, when, obj_id=oid, customer=customer,
                              title=("invoice_failed", {"number": number}),
                              summary=[_part("invoice_attempt", attempt=obj.get("attempt_count") or 1,
                                             next=obj.get("next_payment_attempt"))],
                              amount=obj.get("amount_due"), currency=obj.get("currency"), resolver=r,
                              data={"subscription": _invoice_subscription(obj)}))
    elif kind == "payment_intent" and etype:
        # A PaymentIntent event never adds a row (its charge does) but may tell us, after
        # the charge's event, that an agent's shared payment token paid it.
        agent = agent_purchase(obj, r)
        if agent and obj.get("latest_charge"):
            rows = TimelineEntry.objects.filter(
                object_id=ref(obj["latest_charge"]), kind__in=[K.PAYMENT_SUCCEEDED, K.PAYMENT_FAILED])
            for row in rows.only("pk", "data"):  # one or two: keep what the entry says
                row.agent_purchase = True
                row.data = {**(row.data or {}), "agent": agent, "payment_intent": obj.get("id")}
                row.save(update_fields=["agent_purchase", "data"])
    return out


def _invoice_subscription(invoice: dict) -> str:
    """Where an invoice names its subscription: top level (older API versions) or under parent."""
    sub = ref(invoice.get("subscription"))
    if not sub:
        parent = invoice.get("parent") or {}
        sub = ref((parent.get("subscription_details") or {}).get("subscription"))
    return sub


# --- tickets, messages, audit → entries ----------------------------------------------------------


@_in_english
def ticket_entry(ticket: Ticket) -> dict:
    number = ticket.number or ticket.pk
    # The channel shows as a badge; the priority only when it asks for hurry.
    urgent = [_part("priority", value=ticket.priority)] if ticket.priority in ("high", "urgent") else []
    say, title, summary = _say(("ticket", {"number": number, "subject": ticket.subject}), urgent)
    return {
        "kind": K.TICKET, "source": f"ticket:{ticket.pk}", "occurred_at": ticket.created,
        "object_id": str(number), "customer": "", "contact_id": ticket.requester_id,
        "ticket_id": ticket.pk, "title": title[:255], "summary": summary[:500], "amount": None,
        "currency": "", "agent_purchase": False,
        "data": {"channel": ticket.channel, "number": ticket.number, "say": say},
    }


@_in_english
def message_entry(message: Message, ticket: Ticket) -> dict:
    say, title, _none = _say(("message", {"kind": message.kind, "number": ticket.number or ticket.pk}), None)
    return {
        "kind": K.MESSAGE, "source": f"message:{message.pk}", "occurred_at": message.created,
        "object_id": str(message.pk), "customer": "", "contact_id": ticket.requester_id, "ticket_id": ticket.pk,
        "title": title[:255],
        "summary": " ".join((message.body_text or message.subject or "").split())[:300], "amount": None,
        "currency": "", "agent_purchase": False,
        "data": {"channel": message.channel, "message_kind": message.kind, "number": ticket.number, "say": say},
    }


def _ticket_status_title(number: str, status: str) -> str:
    if status == "open":
        return _("Ticket #%(number)s reopened") % {"number": number}
    if status == "pending":
        return _("Ticket #%(number)s pending") % {"number": number}
    if status == "solved":
        return _("Ticket #%(number)s solved") % {"number": number}
    if status == "closed":
        return _("Ticket #%(number)s closed") % {"number": number}
    return _("Ticket #%(number)s: %(status)s") % {"number": number, "status": _words(status)}


def action_title(action: str, details: dict, target: str = "") -> str:
    """What an agent's action is called on the timeline, in the active language: its audit
    label, in a few cases with what it did."""
    if action == A.TICKET_STATUS and isinstance(details.get("status"), dict):
        return _ticket_status_title(target.partition(":")[2], details["status"].get("to") or "")
    if action == A.SUBSCRIPTION_CANCEL:
        return _("Cancellation at period end") if details.get("at_period_end") else _("Subscription cancelled now")
    try:
        return str(AuditAction(action).label)
    except ValueError:  # a row written before its action was renamed
        return _words(action.replace(".", " ")).capitalize()


def actor_name(e) -> str:
    """Who did an agent action: the username, or Paydesk itself."""
    actor = str((e.data or {}).get("actor") or "")
    return pgettext("actor", "system") if actor in ("", "system") else actor


STRIPE_TARGETS = {"cus_": None, "ch_": Charge, "sub_": Subscription, "in_": Invoice, "pi_": PaymentIntent}


def _audit_place(target: str, resolver: Resolver) -> tuple[int | None, str, int | None]:
    """(contact, Stripe customer, ticket) an audit target belongs to."""
    kind, _sep, value = target.partition(":")
    if kind == "ticket" and value.isdigit():
        row = Ticket.objects.filter(number=int(value)).values("pk", "requester_id").first()
        return (row["requester_id"], "", row["pk"]) if row else (None, "", None)
    if kind == "contact" and value.isdigit():
        return int(value), "", None
    customer = ""
    if target.startswith("cus_"):
        customer = target
    elif target.startswith(("re_", "pyr_")):
        charge = Refund.objects.filter(pk=target).values_list("charge", flat=True).first()
        customer = resolver.charge_customer(charge or "")
    elif target.startswith(("dp_", "du_")):
        charge = Dispute.objects.filter(pk=target).values_list("charge", flat=True).first()
        customer = resolver.charge_customer(charge or "")
    else:
        for prefix, model in STRIPE_TARGETS.items():
            if model is not None and target.startswith(prefix):
                customer = model.objects.filter(pk=target).values_list("customer", flat=True).first() or ""
    return (resolver.contact(customer), customer, None) if customer else (None, "", None)


@_in_english
def audit_entries(entry, resolver: Resolver | None = None) -> list[dict]:
    r = resolver or Resolver()
    if entry.action in AUDIT_COVERED or entry.action in AUDIT_TICKET_INTERNAL:
        return []
    if entry.actor_id is None and entry.action in AUDIT_SYSTEM_BOOKKEEPING:
        return []
    if entry.action in AUDIT_TICKET_MERGES and (entry.details or {}).get("role") == "merged":
        return []  # a ticket merge is one story on the customer's timeline: the survivor's row tells it
    contact, customer, ticket_id = _audit_place(entry.target, r)
    if contact is None and not customer:
        return []
    details = entry.details or {}
    amount = details.get("amount") if isinstance(details.get("amount"), int) else (
        details.get("refund_amount") if isinstance(details.get("refund_amount"), int) else None)
    params = {"action": entry.action}
    if entry.action == A.TICKET_STATUS and isinstance(details.get("status"), dict):
        params.update(to=details["status"].get("to") or "", number=entry.target.partition(":")[2])
    if entry.action == A.SUBSCRIPTION_CANCEL:
        params["at_period_end"] = bool(details.get("at_period_end"))
    say, title, _none = _say(("action", params), None)
    return [{
        "kind": K.ACTION, "source": f"audit:{entry.pk}", "occurred_at": entry.created, "object_id": entry.target,
        "customer": customer, "contact_id": contact, "ticket_id": ticket_id if not customer else None,
        "title": title[:255],
        # An agent's own words (a refund's description, a reason): shown as written.
        "summary": str(details.get("description") or details.get("reason") or "")[:500],
        "amount": amount, "currency": (details.get("currency") or "") if amount is not None else "",
        "agent_purchase": False,
        "data": {"audit": entry.pk, "actor": entry.actor.get_username() if entry.actor_id else "system",
                 "action": entry.action, "ticket": details.get("ticket") or "", "say": say},
    }]


# --- writing ------------------------------------------------------------------------------------


def upsert(rows: Iterable[dict]) -> int:
    """Insert or refresh entries by (source, kind); the first occurred_at stays."""
    objs = [TimelineEntry(**row) for row in rows]
    if not objs:
        return 0
    TimelineEntry.objects.bulk_create(
        objs, update_conflicts=True, unique_fields=["source", "kind"], update_fields=UPDATE_FIELDS, batch_size=1000
    )
    return len(objs)


def repoint(contact_ids: Iterable[int], customers: Iterable[str] = ()) -> None:
    """After a merge, undo, link or unlink: Stripe entries follow their customer's identity,
    ticket and message entries follow the ticket's requester."""
    ids = [int(i) for i in contact_ids if i]
    customers = [c for c in customers if c]
    their_customers = Identity.objects.filter(kind=Identity.Kind.STRIPE_CUSTOMER, contact_id__in=ids).values("value")
    linked = Identity.objects.filter(kind=Identity.Kind.STRIPE_CUSTOMER, value=OuterRef("customer")).values("contact_id")[:1]
    TimelineEntry.objects.exclude(customer="").filter(
        Q(contact_id__in=ids) | Q(customer__in=their_customers) | Q(customer__in=customers)
    ).update(contact_id=Subquery(linked))
    requester = Ticket.objects.filter(pk=OuterRef("ticket_id")).values("requester_id")[:1]
    TimelineEntry.objects.filter(customer="", ticket_id__isnull=False).filter(
        Q(contact_id__in=ids) | Q(ticket_id__in=Ticket.objects.filter(requester_id__in=ids).values("pk"))
    ).update(contact_id=Subquery(requester))


def audit_needs_reaction(action: str, actor_id: int | None) -> bool:
    """Whether an audit row changes the timeline at all (most of a ticket's housekeeping and
    Paydesk's own bookkeeping don't), so nothing is queued for the rest."""
    if action in AUDIT_REPOINTS or action in (A.TICKET_REPLY, A.TICKET_NOTE):
        return True
    if action in AUDIT_COVERED or action in AUDIT_TICKET_INTERNAL:
        return False
    return not (actor_id is None and action in AUDIT_SYSTEM_BOOKKEEPING)


def _follow_ticket_merge(merge_id, *, undone: bool) -> None:
    """The moved messages' entries name the ticket they are on now (the survivor, or after an
    undo the merged ticket again), so the timeline links where the message is."""
    merge = TicketMerge.objects.filter(pk=merge_id).first() if str(merge_id or "").isdigit() else None
    if merge is None:
        return
    ids = [int(i) for i in (merge.moved or {}).get("messages", []) if str(i).isdigit()]
    TimelineEntry.objects.filter(kind=K.MESSAGE, source__in=[f"message:{i}" for i in ids]).update(
        ticket_id=merge.merged_id if undone else merge.survivor_id)


def on_audit(entry) -> None:
    """An audit row, once committed (console.tasks): the agent's action, the message a reply
    or note wrote, and entries re-pointed after a merge, link or unlink."""
    upsert(audit_entries(entry))
    if entry.action in (A.TICKET_REPLY, A.TICKET_NOTE) and (entry.details or {}).get("message"):
        message = Message.objects.select_related("ticket").filter(pk=entry.details["message"]).first()
        if message is not None:
            upsert([message_entry(message, message.ticket)])
    if entry.action in AUDIT_TICKET_MERGES and (entry.details or {}).get("role") == "survivor":
        _follow_ticket_merge(entry.details.get("merge"), undone=entry.action == A.TICKET_MERGE_UNDO)
    if entry.action in AUDIT_REPOINTS:
        details = entry.details or {}
        ids = [entry.target.partition(":")[2], details.get("merged")]
        customers = [details.get("value")] if details.get("kind") == Identity.Kind.STRIPE_CUSTOMER else []
        repoint([i for i in ids if str(i or "").isdigit()], customers)


# --- rebuilding ---------------------------------------------------------------------------------

MIRRORED = (("charge", Charge), ("refund", Refund), ("dispute", Dispute),
            ("radar.early_fraud_warning", EarlyFraudWarning), ("subscription", Subscription), ("invoice", Invoice))


def rebuild(*, clear: bool = False, batch: int = 2000, progress=None) -> dict:
    """Rebuild every entry from the applied event log, the mirror (objects that came by
    backfill, without events), tickets, messages and the audit log. Upserts, so it can run
    on a live system; `clear` first deletes what is there (entries of forgotten objects)."""
    from payments.models import WebhookEvent

    counts = {}
    if clear:
        counts["deleted"] = TimelineEntry.objects.all().delete()[0]
    r = Resolver()
    pending: list[dict] = []

    def flush(force=False):
        nonlocal pending
        if pending and (force or len(pending) >= batch):
            # One row per key in a batch: ON CONFLICT cannot touch a row twice in one statement.
            unique = {(row["source"], row["kind"]): row for row in pending}
            upsert(unique.values())
            pending = []

    def add(name, rows):
        counts[name] = counts.get(name, 0) + len(rows)
        pending.extend(rows)
        flush()

    events = WebhookEvent.objects.filter(status=WebhookEvent.Status.APPLIED).order_by("created", "id")
    for payload in events.values_list("payload", flat=True).iterator(chunk_size=batch):
        obj = (payload.get("data") or {}).get("object") or {}
        add("events", stripe_entries(payload, obj, obj.get("object") or "", r))
    flush(True)
    for kind, model in MIRRORED:
        for data in model.objects.values_list("data", flat=True).iterator(chunk_size=batch):
            add(kind, stripe_entries(None, data, kind, r))
    for ticket in Ticket.objects.all().iterator(chunk_size=batch):
        add("tickets", [ticket_entry(ticket)])
    for message in Message.objects.select_related("ticket").iterator(chunk_size=batch):
        add("messages", [message_entry(message, message.ticket)])
    for entry in AuditEntry.objects.select_related("actor").order_by("id").iterator(chunk_size=batch):
        add("audit", audit_entries(entry, r))
    flush(True)
    if progress:
        progress(counts)
    return counts


# --- workflow runs ---------------------------------------------------------------------------------


@_in_english
def workflow_run_entries(run) -> list[dict]:
    """A finished run that did something (or failed, or was stopped) on the timeline of the
    customer it concerns; with ticket_id, on that ticket too. A run whose steps were all
    fetches and branches that led nowhere says nothing."""
    steps = [s for s in run.steps or [] if s.get("kind") == "action"]
    if run.contact_id is None and not run.customer_id:
        return []
    if not steps and run.status == run.Status.SUCCEEDED:
        return []
    facts = [workflow_describe.step_facts(s) for s in steps]
    ticket_id = next((f["ticket"] for f in facts if isinstance(f.get("ticket"), int)), run.ticket_id)
    event = run.trigger.partition(":")[2]
    summary = [_part("workflow_step", **f) for f in facts] + [
        _part("workflow_why", event=event, object=run.object_key)]
    say, title, summary_en = _say(("workflow_run", {"name": run.workflow.name, "status": run.status}), summary)
    return [{
        "kind": K.WORKFLOW_RUN, "source": f"workflow_run:{run.pk}", "occurred_at": run.finished or run.created,
        "object_id": str(run.pk), "customer": run.customer_id or "",
        "contact_id": run.contact_id if run.contact_id is not None else Resolver().contact(run.customer_id),
        "ticket_id": ticket_id, "title": title[:255], "summary": (summary_en or "")[:500], "amount": None,
        "currency": "", "agent_purchase": False,
        "data": {"workflow": run.workflow_id, "run": run.pk, "status": run.status, "say": say},
    }]
