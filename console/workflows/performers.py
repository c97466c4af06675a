"""What each workflow action does, through the console's existing actions only, as the
workflows service user (its own role and refund limit: settings.PAYMENTS_REFUND_LIMITS
["workflow"]).

`inputs()` resolves, when the run is planned, what an action will act on (the charge to
refund, the customer, the currency) and is stored with the plan; `perform()` does it. Stripe
writes carry the run's and step's idempotency key. A refusal (Stripe says the charge is already
refunded, a limit, a closed ticket) raises Refused: the step is recorded as skipped with the
reason. A failure that may pass (Stripe unreachable) raises Transient: the run is retried.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _, override

from audit.log import acting_as
from console.roles import WORKFLOW_ROLE
from payments.errors import ActionInProgress, ActionRefused, StripeActionFailed
from tickets.actions.errors import ActionError as TicketActionError

from .conditions import MISSING, minor_units, resolve
from .engine import render


class Refused(Exception):
    """The action was refused; the reason is the message."""


class Transient(Exception):
    """The action may work on a later attempt."""


def service_user():
    """The user workflows act as: named in settings.WORKFLOWS_SERVICE_USER, in the workflow role,
    unable to log in."""
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=settings.WORKFLOWS_SERVICE_USER, defaults={"first_name": "Workflows", "is_active": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if not user.groups.filter(name=WORKFLOW_ROLE).exists():
        user.groups.add(Group.objects.get(name=WORKFLOW_ROLE))
    return user


def key(run, step: dict) -> str:
    """The idempotency token of one step of one run (a retry sends the same)."""
    return f"workflow-run-{run.pk}-step-{step['path'].replace('.', '_')}"


# --- what an action acts on, resolved at plan time -----------------------------------------------

_CHARGE_REFS = ("charge.id", "payment_intent.latest_charge", "dispute.charge", "early_fraud_warning.charge",
                "invoice.charge", "refund.charge", "message.linked_charge")


def _first(context: dict, refs) -> str:
    for ref in refs:
        value = resolve(ref, context)
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, str) and value:
            return value
    return ""


def inputs(action: str, params: dict, *, context: dict) -> dict:
    found: dict = {}
    if action == "refund":
        found["charge"] = _first(context, _CHARGE_REFS)
        found["currency"] = _first(context, ("charge.currency", "payment_intent.currency", "dispute.currency"))
    if action == "reply_with_draft":
        found["message"] = resolve("message.id", context)  # the message the draft answers
    if action in ("update_customer_metadata", "create_ticket", "send_portal_link", "refund", "notify"):
        found["customer"] = _first(context, ("customer.id", "charge.customer", "payment_intent.customer",
                                             "invoice.customer", "subscription.customer"))
    if action == "notify":
        found["object"] = _first(context, ("event.id",))
    return found


# --- doing it --------------------------------------------------------------------------------------


def perform(run, step: dict, *, state: dict) -> dict:
    """Do the step's action; returns what it did (ids, amounts) for the run's record."""
    action = step["detail"]["action"]
    params = step["detail"].get("params") or {}
    actor = service_user()
    try:
        # Each row the step writes names the run, so the ticket's thread can say which workflow did it.
        with acting_as(workflow={"run": run.pk, "name": run.workflow.name}):
            return PERFORMERS[action](run, step, params, step.get("inputs") or {}, state, actor)
    except (ActionRefused, TicketActionError, PermissionDenied, ValidationError) as exc:
        raise Refused(_message(exc)) from exc
    except ActionInProgress as exc:
        raise Transient(_message(exc)) from exc
    except StripeActionFailed as exc:
        if exc.transient:
            raise Transient(_message(exc)) from exc
        raise Refused(_message(exc)) from exc  # Stripe's reason, e.g. "Charge ch_… has already been refunded."


def _message(exc: Exception) -> str:
    messages = getattr(exc, "messages", None)
    return "; ".join(messages) if isinstance(messages, list) and messages else str(exc)


def _ticket(state: dict):
    from tickets.models import Ticket

    ticket = Ticket.objects.filter(pk=state.get("ticket")).first() if state.get("ticket") else None
    if ticket is None:
        raise Refused(_("There is no ticket to act on: the trigger has none and no step before opened one."))
    return ticket


def _ticket_ref(run, state: dict) -> str:
    """What a change at Stripe is recorded against: the run's ticket ("#12", so the ticket's
    thread shows it), else the run."""
    from tickets.models import Ticket

    number = Ticket.objects.filter(pk=state["ticket"]).values_list("number", flat=True).first() \
        if state.get("ticket") else None
    return f"#{number}" if number else f"workflow run {run.pk}"


def _team(slug: str):
    from tickets.models import Team

    if not slug:
        return None
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise Refused(_("There is no team “%(team)s”.") % {"team": slug})
    return team


def _user(username: str):
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise Refused(_("There is no active user “%(user)s”.") % {"user": username})
    return user


def _tags(value) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    return [str(t).strip() for t in value or [] if str(t).strip()]


def _notify(run, step, params, inputs, state, actor) -> dict:
    from console.actions import notify_people

    # The text as written, filled in each recipient's language (a date, an amount read as they read them).
    text, context = (step["detail"].get("template") or {}).get("text", params.get("text", "")), run.context
    from tickets.models import Ticket

    number = Ticket.objects.filter(pk=state["ticket"]).values_list("number", flat=True).first() \
        if state.get("ticket") else None

    def in_language(language: str) -> str:
        with override(language):
            return render(text, context)

    sent = notify_people(actor=actor, users=[params["user"]] if params.get("user") else [],
                         team=params.get("team") or "", text=in_language,
                         link=f"/tickets/{number}/" if number else "",
                         source=f"workflow:{run.workflow_id} run:{run.pk}")
    return {"notified": sorted({n.recipient.get_username() for n in sent})}


def _update_metadata(run, step, params, inputs, state, actor) -> dict:
    from payments.actions.customers import update_customer_metadata

    customer = inputs.get("customer") or state.get("customer")
    if not customer:
        raise Refused(_("There is no Stripe customer to update."))
    result = update_customer_metadata(customer, {params["key"]: params.get("value") or ""}, actor=actor,
                                      ticket_ref=_ticket_ref(run, state), idempotency_key=key(run, step))
    return {"customer": customer, "changed": result.changed}


def _refund(run, step, params, inputs, state, actor) -> dict:
    from payments.actions.refunds import refund_charge

    charge = inputs.get("charge")
    if not charge:
        raise Refused(_("There is no charge to refund here."))
    amount, currency = None, inputs.get("currency") or ""
    if isinstance(params.get("amount"), dict):
        amount, currency = minor_units(params["amount"])
    result = refund_charge(charge, actor=actor, amount=amount, currency=currency, reason=params["reason"],
                           note=f"workflow run {run.pk}", ticket_ref=_ticket_ref(run, state),
                           idempotency_key=key(run, step))
    refund = result.refund
    return {"refund": refund.get("id"), "charge": charge, "amount": refund.get("amount"),
            "currency": refund.get("currency"), "replayed": result.replayed}


def _requester(inputs: dict, state: dict):
    from tickets.actions import resolve_contact
    from tickets.models import Contact

    if state.get("contact"):
        contact = Contact.objects.filter(pk=state["contact"]).first()
        if contact is not None:
            return contact
    customer = inputs.get("customer") or state.get("customer")
    if not customer:
        raise Refused(_("There is no customer to open a ticket for."))
    contact, _identity, _created = resolve_contact("stripe_customer", customer)
    return contact


def _create_ticket(run, step, params, inputs, state, actor) -> dict:
    from tickets.actions import add_note, create_ticket
    from tickets.models import Ticket

    requester = _requester(inputs, state)
    note = params.get("note") or ""
    if params.get("if_open_ticket") == "note":
        open_ticket = (Ticket.objects.filter(requester=requester, status__in=[Ticket.Status.OPEN, Ticket.Status.PENDING])
                       .order_by("-updated").first())
        if open_ticket is not None:
            add_note(actor=actor, ticket=open_ticket, body="\n\n".join(t for t in (params["subject"], note) if t))
            _work_dispute_on(run, open_ticket, actor)
            return {"ticket": open_ticket.pk, "noted": True}
    ticket = create_ticket(actor=actor, requester=requester, subject=params["subject"][:200],
                           priority=params.get("priority") or Ticket.Priority.NORMAL,
                           team=_team(params.get("team") or ""), tags=_tags(params.get("tags")), note=note)
    _work_dispute_on(run, ticket, actor)
    return {"ticket": ticket.pk, "created": True}


def _work_dispute_on(run, ticket, actor) -> None:
    """A ticket made about a dispute (a charge.dispute.* trigger) becomes the ticket it is worked
    on, unless one is linked already: the queue and the page show it, and the deadline reminder
    escalates it rather than open a second one."""
    if not run.trigger.startswith("stripe:charge.dispute.") or not run.object_key:
        return
    from ..disputes.actions import work_dispute_on_ticket

    work_dispute_on_ticket(actor=actor, dispute_id=run.object_key, ticket=ticket,
                           why=f"workflow run {run.pk} (workflow {run.workflow_id})")


def _tag(run, step, params, inputs, state, actor) -> dict:
    from tickets.actions import set_tags

    ticket = _ticket(state)
    set_tags(actor=actor, ticket=ticket, add=_tags(params["tags"]))
    return {"ticket": ticket.pk}


def _assign(run, step, params, inputs, state, actor) -> dict:
    from tickets.actions import UNSET, assign

    ticket = _ticket(state)
    assign(actor=actor, ticket=ticket,
           assignee=_user(params["user"]) if params.get("user") else UNSET,
           team=_team(params["team"]) if params.get("team") else UNSET)
    return {"ticket": ticket.pk}


def _priority(run, step, params, inputs, state, actor) -> dict:
    from tickets.actions import set_priority

    ticket = _ticket(state)
    set_priority(actor=actor, ticket=ticket, priority=params["priority"])
    return {"ticket": ticket.pk}


def _status(run, step, params, inputs, state, actor) -> dict:
    from tickets.actions import set_status

    ticket = _ticket(state)
    set_status(actor=actor, ticket=ticket, status=params["status"])
    return {"ticket": ticket.pk}


def _note(run, step, params, inputs, state, actor) -> dict:
    from tickets.actions import add_note

    ticket = _ticket(state)
    message = add_note(actor=actor, ticket=ticket, body=params["text"])
    return {"ticket": ticket.pk, "message": message.pk}


def _macro(run, step, params, inputs, state, actor) -> dict:
    from tickets.actions import apply_macro
    from tickets.models import Macro

    ticket = _ticket(state)
    name = str(params["macro"])
    macro = Macro.objects.filter(active=True).filter(**({"pk": int(name)} if name.isdigit() else {"name": name})).first()
    if macro is None:
        raise Refused(_("There is no active macro “%(macro)s”.") % {"macro": name})
    # Once per run and step: a retried step finds the reply it sent (the step's record and the
    # reply commit together), so nothing is sent twice.
    apply_macro(actor=actor, ticket=ticket, macro=macro)
    return {"ticket": ticket.pk, "macro": macro.name}


def _draft(run, step, params, inputs, state, actor) -> dict:
    from tickets.actions import reply
    from tickets.models import ReplyDraft

    ticket = _ticket(state)
    draft = (ReplyDraft.objects.filter(ticket=ticket, status=ReplyDraft.Status.OPEN)
             .filter(**({"message_id": inputs["message"]} if inputs.get("message") else {})).first())
    if draft is None:
        raise Refused(_("There is no open draft for this message to send."))
    # The reply and the step's record commit together: a retried step finds it sent, not open.
    message = reply(actor=actor, ticket=ticket, body=draft.body, from_draft=draft.pk)
    return {"ticket": ticket.pk, "draft": draft.pk, "message": message.pk}


def _portal(run, step, params, inputs, state, actor) -> dict:
    from console.actions import send_portal_link
    from tickets.models import Ticket

    ticket = Ticket.objects.filter(pk=state.get("ticket")).first() if state.get("ticket") else None
    customer = inputs.get("customer") or state.get("customer")
    if not customer:
        raise Refused(_("There is no Stripe customer to make a billing-portal link for."))
    if ticket is None:
        raise Refused(_("There is no ticket to send the billing-portal link on."))
    outcome = send_portal_link(actor=actor, ticket=ticket, customer_id=customer, flow="", subscription_id="",
                               coupon="", locale=None, token=key(run, step))
    if outcome.error:
        raise Refused(outcome.error)
    return {"ticket": ticket.pk, "customer": customer}


PERFORMERS = {
    "notify": _notify,
    "update_customer_metadata": _update_metadata,
    "refund": _refund,
    "create_ticket": _create_ticket,
    "tag_ticket": _tag,
    "assign_ticket": _assign,
    "set_priority": _priority,
    "set_status": _status,
    "add_note": _note,
    "reply_with_macro": _macro,
    "reply_with_draft": _draft,
    "send_portal_link": _portal,
}
