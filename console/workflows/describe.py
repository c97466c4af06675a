"""A run and its steps in words, in the reader's language: the run page, the ticket and the
customer's timeline say the same thing. Stored facts (`facts`), not sentences, so a Japanese
reader reads the line of a run an English worker recorded."""

from __future__ import annotations

from django.utils.translation import gettext as _, pgettext

from payments.money import format_money

def action_name(action: str) -> str:
    # Built when read, in the reader's language.
    name = {
        "notify": pgettext("workflow action", "Notify"),
        "update_customer_metadata": pgettext("workflow action", "Update customer metadata"),
        "refund": pgettext("workflow action", "Refund"),
        "create_ticket": pgettext("workflow action", "Create a ticket"),
        "tag_ticket": pgettext("workflow action", "Tag the ticket"),
        "assign_ticket": pgettext("workflow action", "Assign the ticket"),
        "set_priority": pgettext("workflow action", "Set the priority"),
        "set_status": pgettext("workflow action", "Set the status"),
        "add_note": pgettext("workflow action", "Add an internal note"),
        "reply_with_macro": pgettext("workflow action", "Reply with a macro"),
        "reply_with_draft": pgettext("workflow action", "Reply with the draft"),
        "send_portal_link": pgettext("workflow action", "Send a billing-portal link"),
    }.get(action)
    return name or str(action)


def step_facts(step: dict) -> dict:
    """What the timeline keeps of one action step: small and language-free."""
    detail, output = step.get("detail") or {}, step.get("output") or {}
    facts = {"action": detail.get("action") or "", "status": step.get("status") or ""}
    for name in ("amount", "currency", "ticket", "created", "noted", "notified", "customer", "macro"):
        if output.get(name) not in (None, "", [], False):
            facts[name] = output[name]
    params = detail.get("params") or {}
    for name in ("team", "user", "key", "value", "tags", "priority", "status"):
        if params.get(name) not in (None, "", []):
            facts[f"param_{name}"] = params[name]
    if step.get("status") == "skipped":
        facts["reason"] = str(step.get("error") or "")[:300]
    return facts


def step_sentence(facts: dict) -> str:
    """"Refunded $10.00", "Opened ticket", "Notified alice, bob", "Skipped refund: …"."""
    action, status = facts.get("action") or "", facts.get("status") or ""
    if status == "skipped":
        return _("Skipped “%(action)s”: %(reason)s") % {"action": action_name(action), "reason": facts.get("reason", "")}
    if status == "failed":
        return _("“%(action)s” failed") % {"action": action_name(action)}
    if status != "done":
        return _("“%(action)s” not done yet") % {"action": action_name(action)}
    if action == "refund" and isinstance(facts.get("amount"), int):
        return _("Refunded %(amount)s") % {"amount": format_money(facts["amount"], facts.get("currency") or "")}
    if action == "notify":
        return _("Notified %(people)s") % {"people": ", ".join(facts.get("notified") or []) or "—"}
    if action == "create_ticket":
        return _("Added a note to the open ticket") if facts.get("noted") else _("Opened a ticket")
    if action == "update_customer_metadata":
        return _("Set %(key)s = %(value)s on the customer") % {"key": facts.get("param_key", ""),
                                                                "value": facts.get("param_value", "")}
    if action == "tag_ticket":
        tags = facts.get("param_tags")
        return _("Tagged %(tags)s") % {"tags": ", ".join(tags) if isinstance(tags, list) else str(tags or "")}
    if action == "assign_ticket":
        return _("Assigned to %(who)s") % {"who": facts.get("param_user") or facts.get("param_team") or "—"}
    return action_name(action)


def run_sentence(facts: list[dict]) -> str:
    return " · ".join(step_sentence(f) for f in facts) or _("Nothing to do")
