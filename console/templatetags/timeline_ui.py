"""The customer timeline's rows, rendered in Python: a page has fifty entries and the
template engine spends more on fifty rows than the database does on the page. Strings are
built with the standard library's escape and marked safe once, as the mirror's lists do."""

from __future__ import annotations

import datetime as dt
from html import escape as _esc

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from payments.templatetags.mirror_ui import _money

register = template.Library()

# One tone per meaning, as the badges: what went well, what needs someone, what is neutral.
TONES = {
    "payment_succeeded": "ok", "payment_failed": "bad", "refund": "info", "dispute_opened": "bad",
    "dispute_updated": "warn", "dispute_closed": "neutral", "fraud_warning": "warn",
    "subscription_started": "ok", "subscription_changed": "neutral", "subscription_cancelled": "warn",
    "invoice_paid": "ok", "invoice_failed": "bad", "ticket": "accent", "message": "accent",
    "action": "accent", "workflow_run": "neutral",
}
CHANNELS = {"email": "Email", "line": "LINE", "chat": "Chat", "phone": "Phone", "web": "Web"}
MESSAGE_KINDS = {"note": "Internal note"}


def day_label(day: dt.date, today: dt.date) -> str:
    if day == today:
        return "Today"
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    if day.year == today.year:
        return f"{day:%a}, {day:%b} {day.day}"
    return f"{day:%a}, {day:%b} {day.day}, {day.year}"


def local_day(stamp: dt.datetime | None) -> str:
    return timezone.localtime(stamp).date().isoformat() if stamp else ""


def _badges(e) -> str:
    out = []
    data = e.data or {}
    if e.agent_purchase:
        out.append('<span class="badge badge-info">Agent purchase</span>')
    if e.kind in ("message", "ticket"):
        channel = CHANNELS.get(data.get("channel") or "")
        if channel:
            out.append(f'<span class="badge tl-channel">{channel}</span>')
        if data.get("message_kind") in MESSAGE_KINDS:
            out.append(f'<span class="badge badge-warn">{MESSAGE_KINDS[data["message_kind"]]}</span>')
    return " ".join(out)


def entry_row(e, url: str) -> str:
    data = e.data or {}
    local = timezone.localtime(e.occurred_at)
    tone = TONES.get(e.kind, "neutral")
    title = _esc(e.title)
    if e.kind == "action" and data.get("actor"):
        title += f' <span class="tl-by">by {_esc(str(data["actor"]))}</span>'
    badges = _badges(e)
    summary = f'<span class="tl-summary">{_esc(e.summary)}</span>' if e.summary else ""
    amount = '<span class="tl-amount"></span>'  # always there: the time stays in its column
    if e.amount is not None and e.currency:
        css = "tl-amount tl-struck" if e.kind == "payment_failed" else "tl-amount"
        amount = f'<span class="{css}">{_esc(_money(e.amount, e.currency))}</span>'
    return (
        f'<li class="tl-entry tone-{tone}" id="entry-{e.pk}" data-kind="{_esc(e.kind)}">'
        f'<details hx-get="{_esc(url)}" hx-trigger="toggle once" hx-target="find .tl-detail" hx-swap="innerHTML">'
        f'<summary class="tl-row"><span class="tl-dot" aria-hidden="true"></span>'
        f'<span class="tl-main"><span class="tl-title">{title}{" " + badges if badges else ""}</span>{summary}</span>'
        f'{amount}<time class="tl-time" datetime="{local.isoformat()}" title="{_esc(_full(local))}">'
        f'{local:%H:%M}</time></summary>'
        f'<div class="tl-detail" aria-live="polite"><p class="muted small">Loading…</p></div></details></li>'
    )


def _full(local: dt.datetime) -> str:
    return f"{local:%b} {local.day}, {local.year}, {local:%H:%M} {local.tzname() or ''}".strip()


@register.simple_tag
def timeline_rows(entries, contact_id: int, after_day: str = "") -> SafeString:
    """Rows, with a day heading wherever the day (in the agent's time zone) changes.
    `after_day` is the last day the previous page showed, so a page does not repeat it."""
    prefix = reverse("timeline_entry", args=[contact_id, 0])[:-1]  # one reverse for the page
    today = timezone.localdate()
    out, last = [], after_day
    for e in entries:
        day = timezone.localtime(e.occurred_at).date()
        if day.isoformat() != last:
            last = day.isoformat()
            out.append(f'<li class="tl-day" role="presentation"><h3>{day_label(day, today)}</h3></li>')
        out.append(entry_row(e, f"{prefix}{e.pk}"))
    return mark_safe("".join(out))


@register.simple_tag
def recent_activity(contact_id: int, ticket: str = "") -> list:
    """The newest few timeline entries besides the ticket the panel sits next to."""
    from console.selectors import recent_activity as newest

    return newest(contact_id, besides_ticket=str(ticket or ""))


@register.simple_tag
def entry_brief(e) -> SafeString:
    """One entry of the panel's recent activity: dot, title (and who), then amount and when."""
    local = timezone.localtime(e.occurred_at)
    meta = [f'<time datetime="{local.isoformat()}" title="{_esc(_full(local))}">{local:%b} {local.day}, {local:%H:%M}</time>']
    if e.amount is not None and e.currency:
        meta.insert(0, f'<span class="tl-amount">{_esc(_money(e.amount, e.currency))}</span>')
    by = f' <span class="tl-by">by {_esc(str((e.data or {}).get("actor")))}</span>' if e.kind == "action" else ""
    return mark_safe(
        f'<span class="tl-dot" aria-hidden="true"></span><span class="cpanel-act">'
        f'<span class="cpanel-act-title">{_esc(e.title)}{by}</span>'
        f'<span class="cpanel-sub muted">{" · ".join(meta)}</span></span>'
    )


@register.filter
def entry_tone(kind: str) -> str:
    return TONES.get(kind, "neutral")
