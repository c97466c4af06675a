"""Table cells and labels for the mirror pages, rendered in Python: a list page has hundreds of cells."""

from __future__ import annotations

import datetime as dt
import functools
from html import escape as _esc

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _, pgettext

from common.l10n import format_relative, format_when
from payments import stripe_words
from payments.durations import units
from payments.money import format_money

register = template.Library()

_DASH = mark_safe('<span class="muted">—</span>')

# Charges say more than their status: Stripe's own list shows these.
_CHARGE_STATES = (
    (lambda r: r.disputed, "disputed"),
    (lambda r: r.refunded, "refunded"),
    (lambda r: r.amount_refunded > 0, "partially_refunded"),
)


@register.filter
def label(value) -> str:
    """needs_response → Needs response; unauthorized_use_of_card → Unauthorized use of card."""
    if not value:
        return ""
    text = str(value).replace("_", " ").replace(".", " ")
    return text[:1].upper() + text[1:]


def tone(status: str) -> str:
    if status in {"succeeded", "paid", "active", "applied", "won", "trialing", "available"}:
        return "ok"
    if status in {
        "pending", "open", "processing", "needs_response", "warning_needs_response", "past_due",
        "requires_action", "requires_payment_method", "requires_confirmation", "requires_capture",
        "incomplete", "disputed", "draft",
    }:
        return "warn"
    if status in {"failed", "lost", "unpaid", "uncollectible", "incomplete_expired", "deleted"}:
        return "bad"
    if status in {"under_review", "warning_under_review", "partially_refunded", "refunded"}:
        return "info"
    return "neutral"


# Where a status badge without a kind looks its word up; the first that knows it says it.
_STATUS_FIELDS = ("charge.status", "payment_intent.status", "refund.status", "dispute.status",
                  "subscription.status", "invoice.status")
# A row's model → the Stripe object whose status field names its statuses.
_MODEL_KIND = {"Charge": "charge", "PaymentIntent": "payment_intent", "Refund": "refund", "Dispute": "dispute",
               "Subscription": "subscription", "Invoice": "invoice", "WebhookEvent": "event"}


@register.simple_tag
def status_label(status: str, kind: str = "") -> str:
    """A status in the reader's language: `kind` is a Stripe object ("invoice") or "event"
    (the mirror's own event statuses); without one, the first Stripe object that knows it."""
    if not status:
        return ""
    if kind == "event":
        from payments.models import WebhookEvent

        return str(WebhookEvent.Status(status).label) if status in WebhookEvent.Status.values else label(status)
    for field in ((f"{kind}.status",) if kind else _STATUS_FIELDS):
        if stripe_words.knows(field, status):
            return stripe_words.label(field, status)
    return label(status)


def _kind(of) -> str:
    if not of:
        return ""
    return of if isinstance(of, str) else _MODEL_KIND.get(of.__class__.__name__, "")


@register.simple_tag
def badge(status: str, of=None) -> SafeString:
    """A status badge; `of` (a row, or a kind such as "invoice" or "event") picks the words."""
    if not status:
        return _DASH
    return format_html('<span class="badge badge-{}">{}</span>', tone(status), status_label(status, _kind(of)))


@register.filter
def stripe_label(value, field: str) -> str:
    """`{{ d.reason|stripe_label:"dispute.reason" }}`: a Stripe enum value in the reader's language."""
    return stripe_words.label(field, value)


def display_status(row) -> str:
    if row.__class__.__name__ == "Charge" and row.status == "succeeded":
        for test, state in _CHARGE_STATES:
            if test(row):
                return state
    return getattr(row, "status", "")


def when(value: dt.datetime | None) -> str:
    """Nov 22, 2026, 2:58 PM / 2026年11月22日 14:58, in the reader's language and time zone."""
    return format_when(value) if value else ""


_money = format_money  # cached per locale inside payments.money


@register.filter
def datetime(value) -> str:
    return when(value) or "—"


@register.filter
def ago(value) -> str:
    """How long ago, in the reader's language: "2 hours ago" / 「2時間前」 ("—" for none)."""
    if not value:
        return "—"
    delta = min(value - timezone.now(), dt.timedelta(0))  # a clock a little ahead is still "now"
    if delta > -dt.timedelta(seconds=1):
        return _("just now")
    return format_relative(delta)


@register.simple_tag
def object_kind_label(kind: str) -> str:
    """A mirrored Stripe type ("radar.early_fraud_warning") as its list is called ("Early fraud warnings")."""
    from payments.views import KIND_TO_LIST

    spec = KIND_TO_LIST.get(kind)
    return str(spec.title) if spec else label(kind)


OPEN_DISPUTE = {"needs_response", "warning_needs_response"}


def _days(seconds: float) -> str:
    """Whole days (or hours under a day), rounded down: "7 days", "5 hours" / 「7日」「5時間」."""
    days = int(abs(seconds) // 86400)
    if days >= 1:
        return units(days, "day")
    return units(max(1, int(abs(seconds) // 3600)), "hour")


@register.simple_tag
def due(value, status="needs_response") -> SafeString:
    """An evidence deadline: the date, and how long is left (or how long it is overdue) while it matters."""
    if not value:
        return _DASH
    if status not in OPEN_DISPUTE:
        return format_html('<span class="muted">{}</span>', when(value))
    left = (value - timezone.now()).total_seconds()
    if left < 0:
        return format_html('{} <span class="due due-over">{}</span>', when(value),
                           _("%(span)s overdue") % {"span": _days(left)})
    css = "due due-soon" if left < 3 * 86400 else "due"
    return format_html('{} <span class="{}">{}</span>', when(value), css,
                       pgettext("time left", "in %(span)s") % {"span": _days(left)})


@register.simple_tag
def amount(value, currency) -> SafeString:
    if value is None or not currency:
        return _DASH
    return format_html('{} <span class="ccy">{}</span>', _money(value, currency), currency.upper())


@register.filter
def object_url(object_id: str) -> str:
    from payments.views import object_url as url

    return url(object_id)


# The cells below build plain strings with the standard library's escape (a list page has
# hundreds of cells; format_html costs several times more per call) and are marked safe once.
_DASH_HTML = str(_DASH)
_CELL_CSS = {"money": "num nowrap", "date": "nowrap muted", "due": "nowrap", "id": "nowrap", "ref": "nowrap",
             "customer": "nowrap", "label": "nowrap"}


def _link(object_id: str, text: str = "", css: str = "mono") -> str:
    if not object_id:
        return _DASH_HTML
    url = object_url(object_id)
    shown = _esc(text or object_id)
    if not url:
        return f'<span class="{css}">{shown}</span>'
    return f'<a class="{css}" href="{_esc(url)}">{shown}</a>'


def _value_html(row, column, customers) -> str:
    v = getattr(row, column.field, None)
    kind = column.kind
    if kind == "money":
        if (column.blank_zero and not v) or v is None:
            return _DASH_HTML
        currency = getattr(row, "currency", "")
        if not currency:
            return _DASH_HTML
        return f'{_esc(_money(v, currency))} <span class="ccy">{_esc(currency.upper())}</span>'
    if kind == "status":
        return str(badge(display_status(row), row))
    if kind == "date":
        return _esc(when(v)) if v else _DASH_HTML
    if kind == "bool":
        return _esc(_("Yes")) if v else f'<span class="muted">{_esc(_("No"))}</span>'
    if kind in ("id", "ref"):
        return _link(v)
    if kind == "customer":
        if not v:
            # A guest payment: the billing email is who paid.
            email = getattr(row, "billing_email", "")
            return _esc(email) if email else _DASH_HTML
        name = (customers or {}).get(v, "")
        return _link(v, name, "" if name else "mono")
    if kind == "due":
        return str(due(v, getattr(row, "status", "")))
    if not v and v != 0:
        return _DASH_HTML
    if kind == "label":
        field = column.words or f"{_MODEL_KIND.get(row.__class__.__name__, '')}.{column.field}"
        return _esc(stripe_words.label(field, v) if stripe_words.knows(field, v) else label(v))
    if kind == "currency":
        return f'<span class="mono">{_esc(str(v).upper())}</span>'
    if kind == "mono":
        return f'<span class="mono">{_esc(str(v))}</span>'
    return _esc(str(v))


@register.simple_tag
def value(row, column, customers=None) -> SafeString:
    """The inside of one cell (or fact), by the column's kind."""
    return mark_safe(_value_html(row, column, customers))


@register.simple_tag
def cell(row, column, customers=None, first=False) -> SafeString:
    """One <td>. The first cell of a row (an amount, a name) also links to the row's object."""
    inner = _value_html(row, column, customers)
    if first and column.kind in ("money", "text", "label", "plan") and getattr(row, "pk", ""):
        url = object_url(row.pk)
        if url:
            inner = f'<a class="row-link" href="{_esc(url)}">{inner}</a>'
    css = _CELL_CSS.get(column.kind)
    return mark_safe(f'<td class="{css}">{inner}</td>' if css else f"<td>{inner}</td>")


@register.filter
def charge_status(row) -> str:
    return display_status(row)


@register.filter
def pairs(mapping) -> list[tuple[str, object]]:
    """A dict's (key, value) pairs sorted by key: `{% for k, v in metadata|pairs %}`.

    Never `metadata.items` on a Stripe dict: the template engine tries metadata["items"]
    before the method, and metadata may well have an "items" key (an agent can set one)."""
    if not isinstance(mapping, dict):
        return []
    return sorted(((str(k), v) for k, v in mapping.items()), key=lambda kv: kv[0])


@register.filter
def pretty_json(value) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
