"""Who may run a tickets action: actor is keyword-only everywhere; actor=None (Paydesk itself)
is allowed only by the actions Paydesk performs on its own, and every other action refuses it
before it reads or writes anything (audit.actors.require)."""

from __future__ import annotations

import inspect

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from audit.models import AuditEntry
from tickets import actions
from tickets.models import Macro, Team

pytestmark = pytest.mark.django_db

# What Paydesk does itself: a channel brought a message, the mirror or the shop's contacts API
# told it who someone is, LINE said follow/unfollow, LINE, email or Stripe said which language
# the customer reads, the delivery task sends a reply, the
# webhooks and tasks store and process what the channels delivered.
SYSTEM_ALLOWED = {
    "resolve_contact", "receive_message", "link_identity_to", "disconnect_identity", "set_line_following",
    "set_contact_language", "set_line_profile",
    "claim_delivery", "mark_delivered", "mark_delivery_failed",
    "store_line_events", "claim_line_event", "finish_line_event", "record_line_event_failure",
    "store_inbound_email", "claim_inbound_email", "finish_inbound_email", "record_inbound_email_failure",
    "record_triage", "save_reply_draft",  # assist read a message and drafted a reply (console/assist)
}
# Reads and helpers exported beside the actions.
NOT_ACTIONS = {"render_macro", "sla_times"}

# Enough to call each person action; the refusal comes before any of it is looked at.
ARGUMENTS = {
    "ticket": 1, "contact": 1, "identity": 1, "merge": 1, "survivor": 1, "merged": 2, "requester": 1,
    "subject": "Refund", "status": "solved", "priority": "high", "tickets": [1], "body": "Hello", "name": "Mika",
    "message": 1, "macro": Macro(name="Thanks"), "team": Team(name="Billing"), "kind": "line", "value": "U" + "a" * 32,
    "email": 1, "draft": 1, "intent": "other", "confidence": 0.5, "active": False,
}


def exported_functions() -> dict[str, object]:
    return {name: getattr(actions, name) for name in actions.__all__
            if inspect.isfunction(getattr(actions, name)) and name not in NOT_ACTIONS}


def person_actions() -> list[str]:
    return sorted(set(exported_functions()) - SYSTEM_ALLOWED)


def required_arguments(function) -> dict:
    params = inspect.signature(function).parameters
    return {name: ARGUMENTS[name] for name, p in params.items()
            if name != "actor" and p.default is inspect.Parameter.empty}


@pytest.mark.parametrize("name", sorted(exported_functions()))
def test_actor_is_keyword_only_and_defaults_to_paydesk_only_where_paydesk_acts(name):
    actor = inspect.signature(exported_functions()[name]).parameters["actor"]

    assert actor.kind is inspect.Parameter.KEYWORD_ONLY
    assert actor.default is (None if name in SYSTEM_ALLOWED else inspect.Parameter.empty)


@pytest.mark.parametrize("name", person_actions())
def test_a_person_action_refuses_paydesk_itself_and_writes_nothing(name):
    function = exported_functions()[name]

    with pytest.raises(PermissionDenied, match="on its own: a person or a workflow must"):
        function(actor=None, **required_arguments(function))
    assert not AuditEntry.objects.exists()


def test_someone_not_signed_in_is_refused(agent):
    with pytest.raises(PermissionDenied, match="Sign in to reply to customers"):
        actions.reply(actor=AnonymousUser(), ticket=1, body="Hello")
    agent.is_active = False
    with pytest.raises(PermissionDenied, match="Sign in to add internal notes"):
        actions.add_note(actor=agent, ticket=1, body="Hello")


def test_paydesk_itself_receives_and_links_and_the_audit_log_says_system():
    received = actions.receive_message(channel="email", sender="Rin Abe <rin@example.jp>", subject="Hello",
                                       body_text="Where is my parcel?", channel_message_id="actors-1@example.jp")
    actions.link_identity_to(anchor_kind="email", anchor_value="rin@example.jp", kind="stripe_customer",
                             value="cus_RinAbe0001", reason="Stripe customer.created")

    contact = received.message.contact
    assert set(contact.identities.values_list("kind", flat=True)) == {"email", "stripe_customer"}
    assert set(AuditEntry.objects.values_list("action", "actor")) == {
        ("contact.create", None), ("ticket.create", None), ("message.receive", None), ("identity.link", None),
    }
