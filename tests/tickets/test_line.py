"""LINE end to end: signed webhook payloads in LINE's documented shape in, pushes out to a
local HTTP server standing in for the Messaging API (line-bot-sdk talks to it over HTTP)."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest
from linebot.v3 import WebhookParser
from linebot.v3.webhook import SignatureValidator

from audit.models import AuditEntry
from tests import factories
from tickets import actions, line
from tickets.models import Contact, Identity, LineEvent, Message, Ticket
from tickets.tasks import deliver_message_task

from .conftest import LINE_SECRET

LINE_SAMPLES = Path(__file__).resolve().parent / "line"

pytestmark = pytest.mark.django_db


@pytest.fixture
def post_line(client, committed):
    """POST a payload to /line/webhook/ signed like LINE does, then run the queued tasks."""

    def post(*events, secret=LINE_SECRET, signature=None, body=None):
        body = body if body is not None else factories.line_payload(*events)
        sig = signature if signature is not None else factories.line_signature(body, secret)
        with committed():
            return client.post("/line/webhook/", body, content_type="application/json", HTTP_X_LINE_SIGNATURE=sig)

    return post


def test_a_text_message_opens_a_line_ticket_for_a_new_contact(post_line):
    user = factories.line_user_id()
    event = factories.line_event(user_id=user, text="注文した商品がまだ届きません")

    response = post_line(event)

    assert response.status_code == 200
    stored = LineEvent.objects.get()
    assert stored.webhook_event_id == event["webhookEventId"] and stored.status == "processed"
    message = Message.objects.get()
    assert message.channel == "line" and message.kind == "inbound"
    assert message.body_text == "注文した商品がまだ届きません"
    assert message.channel_message_id == event["message"]["id"]
    assert message.sender == user
    ident = Identity.objects.get(kind="line")
    assert ident.value == user and message.contact == ident.contact
    ticket = message.ticket
    assert ticket.channel == "line" and ticket.requester == ident.contact
    assert ticket.subject == "注文した商品がまだ届きません"


def test_messages_from_one_user_continue_the_open_line_ticket(post_line):
    user = factories.line_user_id()
    post_line(factories.line_event(user_id=user, text="こんにちは"))
    post_line(factories.line_event(user_id=user, text="[image]") | {"message": {
        "id": "468789577898262530", "type": "sticker", "packageId": "1", "stickerId": "1", "stickerResourceType": "STATIC",
    }})

    assert Ticket.objects.count() == 1
    assert list(Message.objects.values_list("body_text", flat=True)) == ["こんにちは", "[sticker]"]


def test_a_bad_signature_is_400_and_stores_nothing(post_line):
    event = factories.line_event()

    wrong_secret = post_line(event, secret="not-the-channel-secret")
    missing = post_line(event, signature="")
    tampered_body = factories.line_payload(event)
    tampered = post_line(event, signature=factories.line_signature(tampered_body, LINE_SECRET),
                         body=tampered_body.replace(b"active", b"standby"))

    assert [r.status_code for r in (wrong_secret, missing, tampered)] == [400, 400, 400]
    assert not LineEvent.objects.exists() and not Message.objects.exists() and not Contact.objects.exists()


def test_the_same_webhook_event_delivered_twice_is_stored_once(post_line):
    event = factories.line_event(text="one message")
    first = post_line(event)
    event["deliveryContext"]["isRedelivery"] = True
    second = post_line(event)

    assert first.status_code == 200 and second.status_code == 200
    assert LineEvent.objects.count() == 1
    assert Message.objects.count() == 1


def test_follow_creates_a_reachable_contact_and_unfollow_marks_it_unreachable(post_line):
    user = factories.line_user_id()

    post_line(factories.line_event("follow", user_id=user))
    ident = Identity.objects.get(kind="line", value=user)
    assert ident.reachable and not Ticket.objects.exists()

    post_line(factories.line_event("unfollow", user_id=user))
    ident.refresh_from_db()
    assert not ident.reachable
    assert Contact.objects.count() == 1
    assert {"identity.line_follow", "identity.line_unfollow"} <= set(AuditEntry.objects.values_list("action", flat=True))


def test_unhandled_event_types_are_kept_as_ignored(post_line):
    postback = factories.line_event("postback")
    postback["postback"] = {"data": "action=buy&itemid=111"}

    assert post_line(postback).status_code == 200
    assert LineEvent.objects.get().status == "ignored"
    assert not Message.objects.exists()


def test_the_verify_request_and_a_get(post_line, client):
    assert post_line().status_code == 200  # LINE's "Verify" button sends no events
    assert client.get("/line/webhook/").status_code == 405
    assert not LineEvent.objects.exists()


def test_an_invalid_user_id_is_kept_as_ignored_with_the_reason(post_line):
    event = factories.line_event(user_id="not-a-line-user")

    assert post_line(event).status_code == 200
    stored = LineEvent.objects.get()
    assert stored.status == "ignored" and "LINE user id" in stored.last_error
    assert not Message.objects.exists()


# --- signed bodies the SDK cannot parse: answered 200, stored, used where they can be ----------


def sample(name: str) -> bytes:
    return (LINE_SAMPLES / name).read_bytes()


def test_an_older_shape_without_webhook_event_id_or_delivery_context_becomes_a_ticket(post_line):
    body = sample("2019-text-without-event-id.json")
    with pytest.raises(ValueError):  # line-bot-sdk refuses it: mode, webhookEventId, deliveryContext missing
        WebhookParser(LINE_SECRET).parse(body.decode(), factories.line_signature(body, LINE_SECRET))

    first = post_line(body=body)
    again = post_line(body=body)  # LINE delivers it again: the same event hashes to the same key

    assert first.status_code == again.status_code == 200
    stored = LineEvent.objects.get()
    assert stored.webhook_event_id.startswith("sha256:") and stored.status == "processed"
    message = Message.objects.get()
    assert message.sender == "U4af4980629a0c1f2b4f6d5b3e8c7a901" and message.channel_message_id == "10834537382927"
    assert message.body_text.startswith("先週注文したコーヒー豆がまだ届いていません。")


def test_newer_shapes_are_stored_and_what_cannot_be_used_is_ignored_with_the_reason(post_line):
    body = sample("2025-shapes-the-sdk-does-not-know.json")
    with pytest.raises(ValueError):  # the first event has no deliveryContext
        WebhookParser(LINE_SECRET).parse(body.decode(), factories.line_signature(body, LINE_SECRET))

    assert post_line(body=body).status_code == 200

    events = {e.webhook_event_id: e for e in LineEvent.objects.all()}
    assert {k: (e.type, e.status) for k, e in events.items()} == {
        "01JW3Q8Z5K2M4N6P8R0T2V4X6Y": ("message", "processed"),  # no deliveryContext
        "01JW3Q9B7D9F1H3K5M7P9R1T3V": ("message", "processed"),  # a kind of message Paydesk doesn't know
        "01JW3QA0X1Z3B5D7F9H1K3M5P7": ("membership", "ignored"),
        "01JW3QB2S4U6W8Y0A2C4E6G8J0": ("leave", "ignored"),
    }
    assert events["01JW3QA0X1Z3B5D7F9H1K3M5P7"].last_error == "Paydesk does not handle LINE 'membership' events"
    assert events["01JW3QB2S4U6W8Y0A2C4E6G8J0"].last_error == "Paydesk does not handle LINE 'leave' events"
    assert events["01JW3QA0X1Z3B5D7F9H1K3M5P7"].payload["membership"] == {"type": "joined", "membershipId": 3189}
    ticket = Ticket.objects.get()
    assert list(ticket.messages.values_list("body_text", flat=True)) == [
        "定期便の配送日を来週の金曜日に変更できますか？", "[giftcard message]",
    ]


def test_a_signed_body_that_is_not_utf8_or_not_json_is_stored_as_ignored(post_line):
    shift_jis = '{"destination": "U0", "events": [{"type": "message", "text": "返品したい"}]}'.encode("shift_jis")

    assert post_line(body=shift_jis).status_code == 200
    assert post_line(body=shift_jis).status_code == 200  # redelivered: still one row
    assert post_line(body=b"{not json").status_code == 200
    assert post_line(body=b'["events"]').status_code == 200

    rows = {e.last_error: e for e in LineEvent.objects.all()}
    assert set(rows) == {"the body is not UTF-8", "the body is not JSON", "the body has no list of events"}
    assert {e.status for e in rows.values()} == {"ignored"}
    assert base64.b64decode(rows["the body is not UTF-8"].payload["body_base64"]) == shift_jis
    assert rows["the body is not JSON"].payload == {"body": "{not json"}
    assert not Message.objects.exists()


def test_an_event_without_id_source_or_type_is_stored_and_ignored(post_line):
    assert post_line(body=b'{"destination": "x", "events": [{"type": "message"}, {"mode": "active"}, 7]}').status_code == 200

    assert sorted((e.type, e.last_error) for e in LineEvent.objects.all()) == [
        ("", "the event has no type"), ("", "the event is not a JSON object"),
        ("message", "the event has no source.userId"),
    ]
    assert {e.status for e in LineEvent.objects.all()} == {"ignored"}


def test_a_nul_character_jsonb_refuses_is_left_out_and_the_message_kept(post_line):
    user = factories.line_user_id()
    body = factories.line_payload(factories.line_event(user_id=user, text="注文番号\x00 KR-5521"))
    assert b"\\u0000" in body  # JSON escapes it; jsonb refuses it

    assert post_line(body=body).status_code == 200

    stored = LineEvent.objects.get()
    assert stored.status == "processed" and stored.payload["message"]["text"] == "注文番号 KR-5521"
    assert Message.objects.get().body_text == "注文番号 KR-5521"


def test_a_content_length_that_is_not_a_number_is_400_and_an_oversize_body_413(client, settings):
    event = factories.line_event()
    body = factories.line_payload(event)
    signature = factories.line_signature(body, LINE_SECRET)

    for length in ("abc", "-1"):
        response = client.generic("POST", "/line/webhook/", body, content_type="application/json",
                                  CONTENT_LENGTH=length, HTTP_X_LINE_SIGNATURE=signature)
        assert (response.status_code, response.content) == (400, b"bad Content-Length")
    settings.LINE_WEBHOOK_MAX_BYTES = len(body) - 1
    response = client.post("/line/webhook/", body, content_type="application/json", HTTP_X_LINE_SIGNATURE=signature)
    assert response.status_code == 413
    assert not LineEvent.objects.exists()


def test_our_signature_check_agrees_with_line_bot_sdk():
    body = factories.line_payload(factories.line_event(text="届きました"))
    good, bad = factories.line_signature(body, LINE_SECRET), factories.line_signature(body, "another-secret")

    assert line.signature_ok(body, good) and SignatureValidator(LINE_SECRET).validate(body.decode(), good)
    assert not line.signature_ok(body, bad) and not SignatureValidator(LINE_SECRET).validate(body.decode(), bad)
    assert not line.signature_ok(body, "")


def test_ignored_events_and_their_reasons_are_in_the_admin(post_line, admin_user, client):
    post_line(body=sample("2025-shapes-the-sdk-does-not-know.json"))
    client.force_login(admin_user)

    html = client.get("/admin/tickets/lineevent/", {"status__exact": "ignored"}).content.decode()

    assert "Paydesk does not handle LINE &#x27;membership&#x27; events" in html
    assert "01JW3QB2S4U6W8Y0A2C4E6G8J0" in html and "01JW3Q8Z5K2M4N6P8R0T2V4X6Y" not in html


# --- pushes -----------------------------------------------------------------------------------


@pytest.fixture
def line_ticket(post_line):
    user = factories.line_user_id()
    post_line(factories.line_event(user_id=user, text="返品できますか？"))
    return Ticket.objects.get(), user


def test_a_reply_on_a_line_ticket_is_pushed_with_a_retry_key(agent, line_api, line_ticket, committed):
    ticket, user = line_ticket

    with committed():
        message = actions.reply(actor=agent, ticket=ticket, body="はい、30日以内なら返品できます。")

    assert len(line_api.calls) == 1
    call = line_api.calls[0]
    assert call["path"] == "/v2/bot/message/push"
    assert call["headers"]["authorization"] == "Bearer line-access-token-for-tests"
    assert call["headers"]["x-line-retry-key"] == str(message.uuid)
    assert call["json"] == {"to": user, "messages": [{"type": "text", "text": "はい、30日以内なら返品できます。"}],
                            "notificationDisabled": False}
    message.refresh_from_db()
    assert message.delivery_status == "sent" and message.sent_at is not None
    assert message.channel_message_id == "500000000000000001"


def test_a_refused_push_marks_the_message_failed_and_retry_sends_it(agent, line_api, line_ticket, committed):
    ticket, user = line_ticket
    line_api.fail_next(400, "The property, 'to', in the request body is invalid")

    with committed():
        message = actions.reply(actor=agent, ticket=ticket, body="Hello")
    message.refresh_from_db()
    assert message.delivery_status == "failed"
    assert "LINE refused the push (400)" in message.delivery_error and "'to'" in message.delivery_error
    assert AuditEntry.objects.filter(action="message.delivery_failed").exists()

    with committed():
        actions.retry_delivery(actor=agent, message=message)
    message.refresh_from_db()
    assert message.delivery_status == "sent" and message.delivery_error == ""
    assert [c["headers"]["x-line-retry-key"] for c in line_api.calls] == [str(message.uuid)] * 2


def test_a_server_error_is_retried_with_the_same_key(agent, line_api, line_ticket, committed):
    ticket, _ = line_ticket
    line_api.fail_next(500, "internal error")

    with committed():
        message = actions.reply(actor=agent, ticket=ticket, body="Hello")

    message.refresh_from_db()
    assert message.delivery_status == "sent" and message.delivery_attempts == 2
    assert len({c["headers"]["x-line-retry-key"] for c in line_api.calls}) == 1 and len(line_api.calls) == 2


def test_a_push_accepted_before_under_the_key_counts_as_sent(agent, line_api, line_ticket, committed):
    ticket, _ = line_ticket
    line_api.fail_next(409, "The retry key is already accepted")

    with committed():
        message = actions.reply(actor=agent, ticket=ticket, body="Hello")

    message.refresh_from_db()
    assert message.delivery_status == "sent"


def test_an_unreachable_line_api_fails_after_the_retries(agent, line_ticket, committed, settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.LINE_API_BASE = f"http://127.0.0.1:{port}"  # nothing listens there
    ticket, _ = line_ticket

    with committed():
        message = actions.reply(actor=agent, ticket=ticket, body="Hello")

    message.refresh_from_db()
    assert message.delivery_status == "failed"
    assert message.delivery_attempts == settings.TICKETS_DELIVERY_MAX_RETRIES + 1


def test_delivery_is_idempotent(agent, line_api, line_ticket, committed):
    ticket, _ = line_ticket
    with committed():
        message = actions.reply(actor=agent, ticket=ticket, body="Hello")

    assert deliver_message_task.delay(message.pk).get() == "skipped"
    assert len(line_api.calls) == 1


def test_no_push_to_a_user_who_unfollowed(agent, line_api, line_ticket, post_line):
    ticket, user = line_ticket
    post_line(factories.line_event("unfollow", user_id=user))

    with pytest.raises(actions.NoRecipient):
        actions.reply(actor=agent, ticket=ticket, body="Hello?")
    assert not Message.objects.filter(kind="outbound").exists()
    assert line_api.calls == []
