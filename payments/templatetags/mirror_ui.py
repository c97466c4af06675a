"""Table cells and labels for the mirror pages, rendered in Python: a list page has hundreds of cells."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

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


@register.simple_tag
def badge(status: str) -> SafeString:
    if not status:
        return _DASH
    return format_html('<span class="badge badge-{}">{}</span>', tone(status), label(status))


def display_status(row) -> str:
    if row.__class__.__name__ == "Charge" and row.status == "succeeded":
        for test, state in _CHARGE_STATES:
            if test(row):
                return state
    return getattr(row, "status", "")


def when(value: dt.datetime | None) -> str:
    if not value:
        return ""
    return formats.date_format(timezone.localtime(value), "M j, Y, H:i")


@register.filter
def datetime(value) -> str:
    return when(value) or "—"


OPEN_DISPUTE = {"needs_response", "warning_needs_response"}


def _days(seconds: float) -> str:
    days = int(abs(seconds) // 86400)
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, int(abs(seconds) // 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


@register.simple_tag
def due(value, status="needs_response") -> SafeString:
    """An evidence deadline: the date, and how long is left (or how long it is overdue) while it matters."""
    if not value:
        return _DASH
    if status not in OPEN_DISPUTE:
        return format_html('<span class="muted">{}</span>', when(value))
    left = (value - timezone.now()).total_seconds()
    if left < 0:
        return format_html('{} <span class="due due-over">{} overdue</span>', when(value), _days(left))
    css = "due due-soon" if left < 3 * 86400 else "due"
    return format_html('{} <span class="{}">in {}</span>', when(value), css, _days(left))


@register.simple_tag
def amount(value, currency) -> SafeString:
    if value is None or not currency:
        return _DASH
    return format_html('{} <span class="ccy">{}</span>', format_money(value, currency), currency.upper())


@register.filter
def object_url(object_id: str) -> str:
    from payments.views import object_url as url

    return url(object_id)


def _link(object_id: str, text: str = "", css: str = "mono") -> SafeString:
    if not object_id:
        return _DASH
    url = object_url(object_id)
    if not url:
        return format_html('<span class="{}">{}</span>', css, text or object_id)
    return format_html('<a class="{}" href="{}">{}</a>', css, url, text or object_id)


@register.simple_tag
def value(row, column, customers=None) -> SafeString:
    """The inside of one cell (or fact), by the column's kind."""
    v = getattr(row, column.field, None)
    kind = column.kind
    if kind == "money":
        if column.blank_zero and not v:
            return _DASH
        return amount(v, getattr(row, "currency", ""))
    if kind == "status":
        return badge(display_status(row))
    if kind == "date":
        return format_html("{}", when(v)) if v else _DASH
    if kind == "bool":
        return mark_safe("Yes") if v else mark_safe('<span class="muted">No</span>')
    if kind == "id":
        return _link(v)
    if kind == "ref":
        return _link(v)
    if kind == "customer":
        if not v:
            # A guest payment: the billing email is who paid.
            email = getattr(row, "billing_email", "")
            return format_html("{}", email) if email else _DASH
        name = (customers or {}).get(v, "")
        return _link(v, name, "" if name else "mono")
    if kind == "label":
        return format_html("{}", label(v)) if v else _DASH
    if kind == "due":
        return due(v, getattr(row, "status", ""))
    if kind == "currency":
        return format_html('<span class="mono">{}</span>', v.upper()) if v else _DASH
    if kind == "plan":
        return format_html("{}", v) if v else _DASH
    if kind == "mono":
        return format_html('<span class="mono">{}</span>', v) if v else _DASH
    return format_html("{}", v) if v not in (None, "") else _DASH


@register.simple_tag
def cell(row, column, customers=None, first=False) -> SafeString:
    """One <td>. The first cell of a row (an amount, a name) also links to the row's object."""
    css = {"money": "num nowrap", "date": "nowrap muted", "due": "nowrap", "id": "nowrap", "ref": "nowrap",
           "customer": "nowrap", "label": "nowrap"}.get(column.kind, "")
    inner = value(row, column, customers)
    if first and column.kind in ("money", "text", "label", "plan") and getattr(row, "pk", ""):
        url = object_url(row.pk)
        if url:
            inner = format_html('<a class="row-link" href="{}">{}</a>', url, inner)
    return format_html('<td class="{}">{}</td>', css, inner) if css else format_html("<td>{}</td>", inner)


@register.filter
def charge_status(row) -> str:
    return display_status(row)


@register.filter
def pretty_json(value) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
