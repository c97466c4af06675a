"""The customer timeline's rows, rendered in Python: a page has fifty entries and the
template engine spends more on fifty rows than the database does on the page. Strings are
built with the standard library's escape and marked safe once, as the mirror's lists do.

Everything is worded in the reader's language: titles and summaries through
console.timeline.entry_title/entry_summary, dates and times through common.l10n, and the
page's fixed words (day names, badges, "by …") looked up once per language, not per row."""

from __future__ import annotations

import datetime as dt
import functools
from html import escape as _esc

from django import template
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _, gettext_lazy, pgettext, pgettext_lazy

from common.l10n import babel_locale, format_day, format_time, format_when, format_when_short
from console.timeline import actor_name, entry_summary, entry_title
from payments.stripe_words import label as stripe_label
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
CHANNELS = {"email": pgettext_lazy("channel", "Email"), "line": "LINE", "chat": pgettext_lazy("channel", "Chat"),
            "phone": pgettext_lazy("channel", "Phone"), "web": pgettext_lazy("channel", "Web")}
MESSAGE_KINDS = {"note": gettext_lazy("Internal note")}


@functools.lru_cache(maxsize=16)
def _page_words(language: str) -> dict:
    """The fixed words of a timeline page in one language, escaped, looked up once."""
    return {
        "locale": babel_locale(language),
        "today": _esc(_("Today")),
        "yesterday": _esc(_("Yesterday")),
        "loading": _esc(_("Loading…")),
        "by": _esc(_("by %(actor)s")),  # filled per row with the escaped name
        "agent_purchase": _esc(pgettext("AI agent", "Agent purchase")),
        "channels": {k: _esc(str(v)) for k, v in CHANNELS.items()},
        "message_kinds": {k: _esc(str(v)) for k, v in MESSAGE_KINDS.items()},
    }


def _words() -> dict:
    return _page_words(translation.get_language() or "en")


def day_label(day: dt.date, today: dt.date) -> str:
    """A day heading, escaped: Today, Yesterday, else the weekday and date (今日, 昨日, 12月3日(木))."""
    if day == today:
        return _words()["today"]
    if day == today - dt.timedelta(days=1):
        return _words()["yesterday"]
    return _esc(format_day(day, locale=_words()["locale"], today=today))


def local_day(stamp: dt.datetime | None) -> str:
    return timezone.localtime(stamp).date().isoformat() if stamp else ""


def _badges(e, words: dict) -> str:
    out = []
    data = e.data or {}
    if e.agent_purchase:
        out.append(f'<span class="badge badge-info">{words["agent_purchase"]}</span>')
    if e.kind in ("message", "ticket"):
        channel = words["channels"].get(data.get("channel") or "")
        if channel:
            out.append(f'<span class="badge tl-channel">{channel}</span>')
        kind = words["message_kinds"].get(data.get("message_kind") or "")
        if kind:
            out.append(f'<span class="badge badge-warn">{kind}</span>')
    return " ".join(out)


def _by(e, words: dict) -> str:
    return f' <span class="tl-by">{words["by"] % {"actor": _esc(actor_name(e))}}</span>'


def _full(local: dt.datetime, locale: str | None = None) -> str:
    """The moment in full for a tooltip, with the time zone's abbreviation."""
    return f"{format_when(local, locale=locale, tz=local.tzinfo)} {local.tzname() or ''}".strip()


def entry_row(e, url: str, words: dict | None = None) -> str:
    words = words or _words()
    data = e.data or {}
    local = timezone.localtime(e.occurred_at)
    tone = TONES.get(e.kind, "neutral")
    title = _esc(entry_title(e))
    if e.kind == "action" and data.get("actor"):
        title += _by(e, words)
    badges = _badges(e, words)
    summary_text = entry_summary(e)
    summary = f'<span class="tl-summary">{_esc(summary_text)}</span>' if summary_text else ""
    amount = '<span class="tl-amount"></span>'  # always there: the time stays in its column
    if e.amount is not None and e.currency:
        css = "tl-amount tl-struck" if e.kind == "payment_failed" else "tl-amount"
        amount = f'<span class="{css}">{_esc(_money(e.amount, e.currency))}</span>'
    return (
        f'<li class="tl-entry tone-{tone}" id="entry-{e.pk}" data-kind="{_esc(e.kind)}">'
        f'<details hx-get="{_esc(url)}" hx-trigger="toggle once" hx-target="find .tl-detail" hx-swap="innerHTML">'
        f'<summary class="tl-row"><span class="tl-dot" aria-hidden="true"></span>'
        f'<span class="tl-main"><span class="tl-title">{title}{" " + badges if badges else ""}</span>{summary}</span>'
        f'{amount}<time class="tl-time" datetime="{local.isoformat()}" title="{_esc(_full(local, words["locale"]))}">'
        f'{_esc(format_time(local, locale=words["locale"], tz=local.tzinfo))}</time></summary>'
        f'<div class="tl-detail" aria-live="polite"><p class="muted small">{words["loading"]}</p></div></details></li>'
    )


@register.simple_tag
def timeline_rows(entries, contact_id: int, after_day: str = "") -> SafeString:
    """Rows, with a day heading wherever the day (in the agent's time zone) changes.
    `after_day` is the last day the previous page showed, so a page does not repeat it."""
    prefix = reverse("timeline_entry", args=[contact_id, 0])[:-1]  # one reverse for the page
    today = timezone.localdate()
    words = _words()
    out, last = [], after_day
    for e in entries:
        day = timezone.localtime(e.occurred_at).date()
        if day.isoformat() != last:
            last = day.isoformat()
            out.append(f'<li class="tl-day" role="presentation"><h3>{day_label(day, today)}</h3></li>')
        out.append(entry_row(e, f"{prefix}{e.pk}", words))
    return mark_safe("".join(out))


@register.simple_tag
def recent_activity(contact_id: int, ticket: str = "") -> list:
    """The newest few timeline entries besides the ticket the panel sits next to."""
    from console.selectors import recent_activity as newest

    return newest(contact_id, besides_ticket=str(ticket or ""))


@register.simple_tag
def entry_brief(e) -> SafeString:
    """One entry of the panel's recent activity: dot, title (and who), then amount and when."""
    words = _words()
    local = timezone.localtime(e.occurred_at)
    loc = words["locale"]
    meta = [f'<time datetime="{local.isoformat()}" title="{_esc(_full(local, loc))}">'
            f'{_esc(format_when_short(local, locale=loc, tz=local.tzinfo))}</time>']
    if e.amount is not None and e.currency:
        meta.insert(0, f'<span class="tl-amount">{_esc(_money(e.amount, e.currency))}</span>')
    by = _by(e, words) if e.kind == "action" else ""
    return mark_safe(
        f'<span class="tl-dot" aria-hidden="true"></span><span class="cpanel-act">'
        f'<span class="cpanel-act-title">{_esc(entry_title(e))}{by}</span>'
        f'<span class="cpanel-sub muted">{" · ".join(meta)}</span></span>'
    )


@register.filter
def entry_tone(kind: str) -> str:
    return TONES.get(kind, "neutral")


# --- the entry's detail (customers/entry.html) ---------------------------------------------------


@register.filter
def when(value) -> str:
    """A moment in full in the reader's language and time zone (Dec 3, 2026, 9:48 AM / 2026年12月3日 9:48)."""
    return format_when(value) if value else "—"


@register.filter
def stripe_word(value, field: str) -> str:
    """A Stripe enum value as the reader says it: {{ dispute.reason|stripe_word:"dispute.reason" }}."""
    return stripe_label(field, value)


@register.filter
def channel_name(value) -> str:
    return str(CHANNELS.get(value or "", value or ""))


@register.filter
def ticket_status(value) -> str:
    from tickets.models import Ticket
    from tickets.templatetags.inbox_ui import choice_label

    return choice_label(Ticket.Status, value or "")


@register.filter
def actor(e) -> str:
    """Who did an agent action on the timeline: a username, or Paydesk itself (system)."""
    return actor_name(e)
