"""The dispute queue's cells: the countdown to the evidence deadline, the evidence state, the
status badge (inquiries said as inquiries)."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _, pgettext

from common.l10n import format_date, format_when, format_when_short
from payments.durations import units

register = template.Library()

AMBER = dt.timedelta(hours=72)
RED = dt.timedelta(hours=24)
_RESPOND = {"needs_response", "warning_needs_response"}
_DASH = mark_safe('<span class="muted">—</span>')


def _span(left: dt.timedelta) -> str:
    """Hours under three days (what a deadline that close is counted in), else whole days."""
    seconds = abs(left.total_seconds())
    if seconds < AMBER.total_seconds():
        return units(max(1, int(seconds // 3600)), "hour")
    return units(int(seconds // 86400), "day")


def countdown_tone(left: dt.timedelta) -> str:
    """"red" under 24 hours (and overdue), "amber" under 72, else ""."""
    if left < RED:
        return "red"
    if left < AMBER:
        return "amber"
    return ""


@register.simple_tag
def countdown(due_by, status: str = "needs_response", now=None) -> SafeString:
    """Time left to respond, amber under 72 hours and red under 24, the deadline in full as its
    title; for a dispute no longer waiting on us, the deadline alone, quiet."""
    if not due_by:
        return _DASH
    if status not in _RESPOND:
        return format_html('<span class="muted small">{}</span>', format_when(due_by))
    left = due_by - (now or timezone.now())
    tone = countdown_tone(left)
    if left.total_seconds() < 0:
        text = _("%(span)s overdue") % {"span": _span(left)}
    else:
        text = pgettext("time left", "%(span)s left") % {"span": _span(left)}
    css = f"countdown countdown-{tone}" if tone else "countdown"
    return format_html('<span class="{}" title="{}">{}</span>', css, format_when_short(due_by), text)


@register.simple_tag
def evidence_badge(state: str) -> SafeString:
    tone, word = {
        "draft": ("badge-warn", pgettext("dispute evidence", "Draft")),
        "submitted": ("badge-ok", pgettext("dispute evidence", "Submitted")),
    }.get(state, ("", pgettext("dispute evidence", "None")))
    return format_html('<span class="badge {}">{}</span>', tone, word)


_STATUS_TONE = {"needs_response": "badge-bad", "warning_needs_response": "badge-warn", "under_review": "badge-info",
                "warning_under_review": "badge-info", "won": "badge-ok", "lost": "badge-bad", "prevented": "badge-ok",
                "warning_closed": ""}


@register.simple_tag
def dispute_badge(row: dict) -> SafeString:
    """The status, and "Inquiry" before it for Stripe's warning_* states (a pre-dispute the bank
    asks about, no money withdrawn yet)."""
    badge = format_html('<span class="badge {}">{}</span>', _STATUS_TONE.get(row["status"], ""), row["status_label"])
    if row.get("inquiry"):
        return format_html('<span class="badge dispute-inquiry">{}</span> {}', pgettext("dispute", "Inquiry"), badge)
    return badge


@register.simple_tag(takes_context=True)
def dispute_row(context, d: dict, can_assign: bool = False) -> SafeString:
    """One row of the queue, rendered in Python (a page has fifty rows of ten cells), with the
    same classes the template would use."""
    from urllib.parse import quote

    from payments.templatetags.mirror_ui import amount

    urls = context.render_context.get("dispute_row_urls")
    if urls is None:
        from django.urls import reverse

        def base(name, *args):
            return reverse(name, args=[*args, "__id__"]).replace("__id__", "{}")

        urls = {"dispute": base("dispute"), "charge": base("payment"),
                "customer_mirror": base("mirror_object", "customers"),
                "customer": reverse("customer", args=[1]).replace("/1/", "/{}/"),
                "ticket": reverse("ticket", args=[1]).replace("/1/", "/{}/")}
        context.render_context["dispute_row_urls"] = urls
    dispute_url = urls["dispute"].format(quote(d["id"]))
    cells = []
    if can_assign:
        cells.append(format_html(
            '<td class="dispute-pick"><input type="checkbox" name="dispute" value="{}" form="dispute-assign" '
            'aria-label="{}"></td>', d["id"], _("Select %(id)s") % {"id": d["id"]}))
    cells.append(format_html('<td class="num"><a href="{}">{}</a></td>', dispute_url, amount(d["amount"], d["currency"])))
    cells.append(format_html('<td class="stack">{}<a class="mono" href="{}">{}</a></td>', dispute_badge(d),
                             dispute_url, d["id"]))
    cells.append(format_html('<td class="nowrap">{}</td>', countdown(d["due_by"], d["status"])))
    card = ""
    if d["brand"] or d["network_reason_code"]:
        parts = [d["brand"].title()] if d["brand"] else []
        if d["network_reason_code"]:
            parts.append(_("code %(code)s") % {"code": d["network_reason_code"]})
        card = format_html('<span class="small muted">{}</span>', " · ".join(parts))
    cells.append(format_html('<td class="stack"><span>{}</span>{}</td>', d["reason_label"] or "—", card))
    name = d["customer_name"] or d["customer"]
    if d["contact_id"]:
        who = format_html('<a href="{}">{}</a>', urls["customer"].format(d["contact_id"]), name)
    elif d["customer"]:
        who = format_html('<a class="mono" href="{}">{}</a>', urls["customer_mirror"].format(quote(d["customer"])), name)
    else:
        who = _DASH
    if d["agentic"]:
        who = format_html('{}<span class="badge badge-info">{}</span>', who, _("AI agent"))
    cells.append(format_html('<td class="stack">{}</td>', who))
    order = d["order"] or "—"
    charge = ""
    if d["charge_id"]:
        when = format_html(" · {}", format_date(d["charge_created"])) if d["charge_created"] else ""
        charge = format_html('<span class="small muted"><a class="mono" href="{}">{}</a>{}</span>',
                             urls["charge"].format(quote(d["charge_id"])), d["charge_id"], when)
    cells.append(format_html('<td class="stack"><span class="clamp">{}</span>{}</td>',
                             order if len(order) <= 80 else order[:79] + "…", charge))
    cells.append(format_html("<td>{}</td>", evidence_badge(d["evidence"])))
    person = d["assignee"]
    cells.append(format_html("<td>{}</td>", (person.get_full_name() or person.get_username()) if person else _DASH))
    ticket = d["ticket"]
    cells.append(format_html('<td class="nowrap">{}</td>', format_html(
        '<a href="{}" title="{}">#{}</a>', urls["ticket"].format(ticket.number), ticket.subject, ticket.number)
        if ticket else _DASH))
    return format_html('<tr{}>{}</tr>', mark_safe(' class="dispute-inquiry-row"') if d["inquiry"] else "",
                       mark_safe("".join(cells)))
