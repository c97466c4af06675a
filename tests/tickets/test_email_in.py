"""Inbound email end to end: the committed .eml set through the anymail inbound webhook,
the import command and tickets.email_in, into contacts, tickets and messages."""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from tickets import actions, email_in
from tickets.models import Attachment, Contact, Identity, Message, Ticket

from .conftest import ATTACHMENT_LIMIT, eml

pytestmark = pytest.mark.django_db

WEBHOOK_AUTH = "anymail:inbound-secret-for-tests"


def receive(name: str) -> actions.Received:
    return email_in.receive_bytes(eml(name))


def test_plain_email_opens_a_ticket_for_a_new_contact_keyed_by_the_normalised_address():
    result = receive("01-plain.eml")

    assert result.created and result.ticket_created
    message, ticket = result.message, result.message.ticket
    ident = Identity.objects.get(kind="email")
    assert ident.value == "hana.sato@example.com"
    assert ident.contact.name == "Hana Sato"
    assert ticket.requester == ident.contact
    assert ticket.subject == "Where is my order #5521?"
    assert (ticket.channel, ticket.status, ticket.priority) == ("email", "open", "normal")
    assert ticket.number == ticket.pk
    assert ticket.first_response_due is not None and ticket.sla_due == ticket.first_response_due
    assert message.kind == "inbound" and message.contact == ident.contact
    assert message.channel_message_id == "CAF1plain.5521@mail.example.com"
    assert "have not received a shipping mail yet" in message.body_text
    assert message.body_html == ""
    actions_logged = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"contact.create", "ticket.create", "message.receive"} <= actions_logged


def test_a_redelivered_message_id_is_stored_once():
    first = receive("01-plain.eml")
    again = receive("01-plain.eml")

    assert not again.created
    assert again.message.pk == first.message.pk
    assert Message.objects.count() == 1 and Ticket.objects.count() == 1


def test_html_is_cleaned_of_scripts_tracking_pixels_and_remote_content_and_text_is_kept():
    message = receive("02-html-script.eml").message

    html = message.body_html
    for banned in ("<script", "document.cookie", "<img", "track.example.net", "cdn.example.net", "onload",
                   "onclick", "javascript:", "<style", "<iframe", "style="):
        assert banned not in html, banned
    assert "<b>refund</b>" in html
    assert '<a href="https://example.net/order/77" rel="noopener noreferrer nofollow">Order 77</a>' in html
    assert message.body_text.startswith("I'd like a refund for my last charge.")


def test_attachments_are_stored_and_one_over_the_limit_is_refused_with_a_note():
    result = receive("03-attachments.eml")
    ticket = result.message.ticket

    stored = {a.filename: a for a in Attachment.objects.filter(message=result.message)}
    assert set(stored) == {"photo1.png", "receipt.pdf", "video-of-damage.mov"}
    receipt, photo, video = stored["receipt.pdf"], stored["photo1.png"], stored["video-of-damage.mov"]
    assert not receipt.refused and receipt.content_type == "application/pdf"
    with receipt.file.open("rb") as fh:
        assert fh.read().startswith(b"%PDF-1.4")
    assert receipt.size < ATTACHMENT_LIMIT
    assert photo.content_id == "photo1@example.org" and photo.file.size == photo.size
    assert video.refused and not video.file and video.size == 30000
    notes = Message.objects.filter(ticket=ticket, kind="note")
    assert len(notes) == 1
    assert "video-of-damage.mov (30,000 bytes)" in notes[0].body_text
    assert f"{ATTACHMENT_LIMIT:,}-byte limit" in notes[0].body_text
    assert result.notes == [notes[0]]


def test_iso_2022_jp_subject_sender_and_body_are_decoded():
    message = receive("04-iso-2022-jp.eml").message

    assert message.ticket.subject == "注文のキャンセルについて"
    assert message.subject == "注文のキャンセルについて"
    assert message.contact.name == "山田 花子"
    assert "先日の注文（#8812）をキャンセルしたいです。" in message.body_text
    assert message.sender == "hanako.yamada@example.jp"


def test_utf8_subject_and_quoted_printable_body_are_decoded():
    message = receive("05-utf-8.eml").message

    assert message.ticket.subject == "返金の状況を教えてください"
    assert message.contact.name == "佐藤 健"
    assert "注文番号は4410です。" in message.body_text


def test_a_reply_thread_lands_on_one_ticket_by_in_reply_to_then_references():
    first = receive("06-thread-1.eml")
    second = receive("06-thread-2.eml")  # In-Reply-To, and the sender's address in capitals
    third = receive("06-thread-3.eml")   # References only, subject changed

    assert first.ticket_created and not second.ticket_created and not third.ticket_created
    ticket = first.message.ticket
    assert [m.channel_message_id for m in ticket.messages.order_by("id")] == [
        "thread-1@example.com", "thread-2@example.com", "thread-3@example.com",
    ]
    assert Contact.objects.count() == 1
    assert second.message.headers == {"in_reply_to": "thread-1@example.com", "references": ["thread-1@example.com"]}


def _mail(sender: str, subject: str, body: str = "more details", message_id: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "support@paydesk.test", subject
    if message_id:
        msg["Message-ID"] = f"<{message_id}>"
    msg.set_content(body)
    return msg.as_bytes()


def test_the_subject_token_threads_when_headers_are_lost_but_only_for_the_same_contact():
    ticket = receive("06-thread-1.eml").message.ticket

    same = email_in.receive_bytes(_mail("tom@example.com", f"Re: charged twice {ticket.token}", message_id="t1@x"))
    other = email_in.receive_bytes(_mail("mallory@example.com", f"Re: {ticket.token}", message_id="t2@x"))

    assert same.message.ticket_id == ticket.pk and not same.ticket_created
    assert other.ticket_created and other.message.ticket_id != ticket.pk


def test_a_customer_reply_to_an_agent_reply_threads_and_reopens_the_solved_ticket(agent, committed):
    ticket = receive("06-thread-1.eml").message.ticket
    with committed():
        sent = actions.reply(actor=agent, ticket=ticket, body="We refunded the second charge.", status="solved")
    assert Ticket.objects.get(pk=ticket.pk).status == "solved"

    answer = email_in.receive_bytes(_mail(
        "tom@example.com", "Re: thanks", body="It is still there.", message_id="t3@example.com",
    ).replace(b"Subject:", f"In-Reply-To: <{sent.channel_message_id}>\nSubject:".encode()))

    ticket.refresh_from_db()
    assert answer.message.ticket_id == ticket.pk
    assert ticket.status == "open" and ticket.solved_at is None


def test_mail_on_a_closed_ticket_opens_a_follow_up(admin_user):
    ticket = receive("06-thread-1.eml").message.ticket
    actions.set_status(actor=admin_user, ticket=ticket, status="closed")

    result = receive("06-thread-2.eml")

    assert result.ticket_created and result.message.ticket_id != ticket.pk
    note = result.notes[0]
    assert note.kind == "note" and note.body_text == f"Follow-up to closed ticket #{ticket.number}."
    assert Ticket.objects.get(pk=ticket.pk).status == "closed"


def test_mail_without_a_usable_sender_or_from_ourselves_is_refused_and_nothing_is_written():
    raw = _mail("not an address", "hello", message_id="nosender@x")
    with pytest.raises(actions.ActionError):
        email_in.receive_bytes(raw)
    with pytest.raises(actions.ActionError, match="support address itself"):
        email_in.receive_bytes(_mail("Paydesk <SUPPORT@paydesk.test>", "Re: hello", message_id="loop@x"))
    assert not Ticket.objects.exists() and not Contact.objects.exists()


# --- through anymail's inbound webhook (Postmark's JSON with RawEmail) ---------------------


def _postmark(client, raw: bytes, auth: str | None = WEBHOOK_AUTH):
    headers = {}
    if auth:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()
    payload = {"RawEmail": raw.decode("ascii"), "Headers": [], "MessageID": "pm-1"}
    return client.post("/anymail/postmark/inbound/", json.dumps(payload), content_type="application/json", **headers)


@pytest.fixture
def postmark_enabled(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_AUTH}
    settings.TICKETS_INBOUND_EMAIL_ESPS = ["postmark"]


def test_anymail_inbound_webhook_stores_the_message(client, postmark_enabled):

    response = _postmark(client, eml("04-iso-2022-jp.eml"))
    again = _postmark(client, eml("04-iso-2022-jp.eml"))

    assert response.status_code == 200 and again.status_code == 200
    message = Message.objects.get()
    assert message.ticket.subject == "注文のキャンセルについて"
    assert message.sender == "hanako.yamada@example.jp"


def test_anymail_inbound_webhook_with_wrong_credentials_stores_nothing(client, postmark_enabled):

    response = _postmark(client, eml("01-plain.eml"), auth="anymail:guessed")
    anonymous = _postmark(client, eml("01-plain.eml"), auth=None)

    assert response.status_code == 400 and anonymous.status_code == 400
    assert not Message.objects.exists()


def test_anymail_inbound_webhook_is_off_without_a_secret_or_for_other_providers(client, postmark_enabled, settings):
    other = client.post("/anymail/amazon_ses/inbound/", "{}", content_type="application/json")
    settings.ANYMAIL = {}
    no_secret = _postmark(client, eml("01-plain.eml"), auth=None)

    assert other.status_code == 404 and no_secret.status_code == 404
    assert not Message.objects.exists()


# --- the import command -------------------------------------------------------------------


def test_import_eml_command_imports_threads_and_skips_what_it_has(tmp_path):
    from .conftest import EML

    files = sorted(str(p) for p in EML.glob("*.eml"))
    out = StringIO()
    call_command("tickets_import_eml", *files, stdout=out)
    lines = out.getvalue().splitlines()

    assert len(lines) == 8
    assert sum("new ticket" in line for line in lines) == 6
    assert sum("added to ticket" in line for line in lines) == 2
    assert Ticket.objects.count() == 6 and Message.objects.filter(kind="inbound").count() == 8

    out = StringIO()
    call_command("tickets_import_eml", files[0], stdout=out)
    assert "already stored" in out.getvalue()

    bad = tmp_path / "missing.eml"
    with pytest.raises(CommandError):
        call_command("tickets_import_eml", str(bad), stdout=StringIO(), stderr=StringIO())
