"""The dispute queue's cells: the countdown to the evidence deadline, the evidence state, the
status badge (inquiries said as inquiries); and the evidence fields' names for the confirmation."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _, pgettext

from common.l10n import format_date, format_when, format_when_short
from payments.durations import units
from payments.stripe_objects import card_brand

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
    """The status; Stripe's warning_* states read as inquiries ("Inquiry: needs response": a
    pre-dispute the bank asks about, no money withdrawn yet)."""
    return format_html('<span class="badge {}">{}</span>', _STATUS_TONE.get(row["status"], ""), row["status_label"])


@register.filter
def evidence_label(name: str) -> str:
    """An evidence field's name in words ("Shipping tracking number"), for the confirmation."""
    from payments.actions.disputes import field_label

    return field_label(name)


@register.filter
def evidence_is_file(name: str) -> bool:
    from payments.actions.disputes import EVIDENCE_FIELDS

    return EVIDENCE_FIELDS.get(name) == "file"


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
    # Plain string building with conditional_escape(): format_html per cell was most of the page's time.
    e = conditional_escape
    dispute_url = e(urls["dispute"].format(quote(d["id"])))
    cells = []
    if can_assign:
        select = _("Select %(id)s") % {"id": d["id"]}  # outside the f-string, where makemessages finds it
        cells.append(f'<td class="dispute-pick"><input type="checkbox" name="dispute" value="{e(d["id"])}" '
                     f'form="dispute-assign" aria-label="{e(select)}"></td>')
    # The dispute's id only as the link's title: the row is the dispute, and the column room goes to the order.
    cells.append(f'<td class="num"><a href="{dispute_url}" title="{e(d["id"])}">'
                 f'{e(amount(d["amount"], d["currency"]))}</a></td>')
    cells.append(f'<td>{dispute_badge(d)}</td>')
    cells.append(f'<td class="nowrap">{countdown(d["due_by"], d["status"])}</td>')
    card = ""
    if d["brand"] or d["network_reason_code"]:
        parts = [card_brand({"brand": d["brand"]})] if d["brand"] else []
        if d["network_reason_code"]:
            parts.append(_("code %(code)s") % {"code": d["network_reason_code"]})
        card = f'<span class="small muted">{e(" · ".join(parts))}</span>'
    cells.append(f'<td class="stack"><span>{e(d["reason_label"] or "—")}</span>{card}</td>')
    name = e(d["customer_name"] or d["customer"])
    if d["contact_id"]:
        who = f'<a href="{e(urls["customer"].format(d["contact_id"]))}">{name}</a>'
    elif d["customer"]:
        who = f'<a class="mono" href="{e(urls["customer_mirror"].format(quote(d["customer"])))}">{name}</a>'
    else:
        who = _DASH
    if d["agentic"]:
        agent = _("AI agent")
        who += f'<span class="badge badge-info">{e(agent)}</span>'
    cells.append(f'<td class="stack">{who}</td>')
    order = d["order"] or "—"
    charge = ""
    if d["charge_id"]:
        when = f" · {e(format_date(d['charge_created']))}" if d["charge_created"] else ""
        charge = (f'<span class="small muted"><a class="mono" href="{e(urls["charge"].format(quote(d["charge_id"])))}">'
                  f'{e(d["charge_id"])}</a>{when}</span>')
    cells.append(f'<td class="stack"><span class="clamp">{e(order if len(order) <= 80 else order[:79] + "…")}</span>'
                 f'{charge}</td>')
    badges = context.render_context.setdefault("dispute_row_evidence", {})  # three states, made once a page
    if d["evidence"] not in badges:
        badges[d["evidence"]] = evidence_badge(d["evidence"])
    cells.append(f"<td>{badges[d['evidence']]}</td>")
    person = d["assignee"]
    cells.append(f"<td>{e(person.get_full_name() or person.get_username()) if person else _DASH}</td>")
    ticket = d["ticket"]
    link = (f'<a href="{e(urls["ticket"].format(ticket.number))}" title="{e(ticket.subject)}">#{ticket.number}</a>'
            if ticket else _DASH)
    cells.append(f'<td class="nowrap">{link}</td>')
    css = ' class="dispute-inquiry-row"' if d["inquiry"] else ""
    return mark_safe(f'<tr{css}>{"".join(cells)}</tr>')
