"""A LINE contact's profile (display name, picture): fetched once when first seen, again when
stale, kept as it was on 404, retried on 429. LINE is the recording stand-in
(console.demo.line_api) behind LINE_API_BASE; line-bot-sdk talks to it over HTTP."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from tests import factories
from tickets.identity import contact_display_name
from tickets.models import Contact, Identity
from tickets.templatetags.inbox_ui import contact_label

from .conftest import LINE_SECRET

pytestmark = pytest.mark.django_db

PICTURE = "https://profile.line-scdn.net/0h1a2b3c4d5e"


@pytest.fixture
def post_line(client, committed, line_api):
    def post(*events):
        body = factories.line_payload(*events)
        with committed():
            return client.post("/line/webhook/", body, content_type="application/json",
                               HTTP_X_LINE_SIGNATURE=factories.line_signature(body, LINE_SECRET))

    return post


def contact_of(user: str) -> Contact:
    return Identity.objects.get(kind="line", value=user).contact


def test_the_profile_is_fetched_once_when_the_user_first_writes(post_line, line_api):
    user = factories.line_user_id()
    line_api.profiles[user] = {"displayName": "さくら", "pictureUrl": PICTURE, "language": "ja"}

    post_line(factories.line_event(user_id=user, text="こんにちは"))
    post_line(factories.line_event(user_id=user, text="まだですか"))

    assert line_api.profile_calls == [user]
    contact = contact_of(user)
    assert (contact.line_name, contact.line_picture_url, contact.name) == ("さくら", PICTURE, "さくら")
    assert contact.line_profile_at is not None
    # Paydesk itself named the contact, in one audited edit.
    entry = AuditEntry.objects.filter(action="contact.update", details__source="line").get()
    assert entry.actor is None and entry.details["name"] == {"from": "", "to": "さくら"}


def test_a_named_contact_keeps_their_name_and_gets_the_line_name_beside_it(post_line, line_api):
    user = factories.line_user_id()
    contact = factories.ContactFactory(name="Mika Ito")
    factories.IdentityFactory(contact=contact, kind="line", value=user)
    line_api.profiles[user] = {"displayName": "みか"}

    post_line(factories.line_event(user_id=user))

    contact.refresh_from_db()
    assert (contact.name, contact.line_name, contact.line_picture_url) == ("Mika Ito", "みか", "")


def test_a_stale_profile_is_fetched_again_on_the_next_message(post_line, line_api, settings):
    settings.TICKETS_LINE_PROFILE_MAX_AGE_DAYS = 7
    user = factories.line_user_id()
    line_api.profiles[user] = {"displayName": "はると"}
    post_line(factories.line_event(user_id=user))
    Contact.objects.filter(pk=contact_of(user).pk).update(line_profile_at=timezone.now() - dt.timedelta(days=8))
    line_api.profiles[user] = {"displayName": "はると🌸", "pictureUrl": PICTURE}

    post_line(factories.line_event(user_id=user, text="もう一度"))

    assert line_api.profile_calls == [user, user]
    contact = contact_of(user)
    assert (contact.line_name, contact.line_picture_url) == ("はると🌸", PICTURE)
    # The name it took from LINE the first time is the contact's own now: a refresh keeps it.
    assert contact.name == "はると"
    assert contact.line_profile_at > timezone.now() - dt.timedelta(minutes=1)


def test_a_404_leaves_the_contact_as_it_was(post_line, line_api):
    user = factories.line_user_id()
    contact = factories.ContactFactory(name="")
    factories.IdentityFactory(contact=contact, kind="line", value=user)
    Contact.objects.filter(pk=contact.pk).update(line_name="ゆい", line_picture_url=PICTURE,
                                                 line_profile_at=timezone.now() - dt.timedelta(days=30))
    line_api.profiles[user] = None  # the user blocked the account

    post_line(factories.line_event(user_id=user))

    assert line_api.profile_calls == [user]
    contact.refresh_from_db()
    assert (contact.name, contact.line_name, contact.line_picture_url) == ("", "ゆい", PICTURE)
    assert not AuditEntry.objects.filter(action="contact.update", details__source="line").exists()


def test_a_429_is_retried_and_then_stored(post_line, line_api):
    user = factories.line_user_id()
    line_api.profiles[user] = {"displayName": "けんた"}
    line_api.fail_profile_next(429, "Too many requests", times=2)

    post_line(factories.line_event(user_id=user))

    assert line_api.profile_calls == [user, user, user]
    assert contact_of(user).line_name == "けんた"


def test_a_busy_line_is_given_up_after_the_retries_and_asked_on_the_next_message(post_line, line_api, settings):
    settings.TICKETS_LINE_PROFILE_MAX_RETRIES = 1
    user = factories.line_user_id()
    line_api.profiles[user] = {"displayName": "ゆい"}
    line_api.fail_profile_next(500, "internal error", times=2)

    post_line(factories.line_event(user_id=user))
    assert line_api.profile_calls == [user, user]
    assert contact_of(user).line_profile_at is None

    post_line(factories.line_event(user_id=user, text="もしもし"))
    assert contact_of(user).line_name == "ゆい"


def test_a_follow_fetches_the_profile(post_line, line_api):
    user = factories.line_user_id()
    line_api.profiles[user] = {"displayName": "蓮"}
    post_line(factories.line_event("follow", user_id=user))
    assert contact_of(user).name == "蓮"


# --- what agents call a contact -------------------------------------------------------------


def test_a_contact_is_never_called_by_its_internal_number():
    bare = factories.ContactFactory(name="")
    line_only = factories.ContactFactory(name="")
    factories.IdentityFactory(contact=line_only, kind="line", value="U" + "0" * 28 + "9f3c")
    named_on_line = factories.ContactFactory(name="")
    Contact.objects.filter(pk=named_on_line.pk).update(line_name="さくら")
    named_on_line.refresh_from_db()
    phone = factories.ContactFactory(name="")
    factories.IdentityFactory(contact=phone, kind="phone", value="+81312345678")
    factories.IdentityFactory(contact=phone, kind="line", value="U" + "1" * 32)

    labels = [contact_label(c) for c in (bare, line_only, named_on_line, phone)] + [str(bare), str(line_only)]

    assert labels == ["Unnamed customer", "LINE user ·9f3c", "さくら", "+81 3-1234-5678", "Unnamed customer",
                      "LINE user ·9f3c"]
    assert not any(label.startswith("Contact") or str(bare.pk) == label for label in labels)


def test_an_email_comes_before_a_line_id():
    assert contact_display_name("", "", [("line", "U" + "2" * 32), ("email", "a@example.jp")]) == "a@example.jp"


# --- where the picture and name show --------------------------------------------------------


def test_the_requester_card_and_the_inbox_show_the_picture_and_line_name(as_user, agent):
    from tickets import actions

    user = factories.line_user_id()
    ticket = actions.receive_message(channel="line", sender=user, body_text="届いていません",
                                     channel_message_id="line-pic-1").message.ticket
    Contact.objects.filter(pk=ticket.requester_id).update(line_name="さくら", line_picture_url=PICTURE)
    client = as_user(agent)

    card = client.get(f"/tickets/{ticket.number}/").content.decode()
    inbox = client.get("/tickets/all/").content.decode()

    for page in (card, inbox):
        assert f'src="{PICTURE}"' in page and "さくら" in page
        assert f"Contact {ticket.requester_id}" not in page
