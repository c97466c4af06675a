"""Inbound email end to end: the committed .eml set (tests/tickets/eml) through the anymail
inbound webhook, the import command and tickets.email_in, stored first (InboundEmail), then
made into contacts, tickets and messages; what cannot be used is kept as ignored with the
reason."""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from tickets import actions, email_in
from tests.helpers import eager_tasks
from tickets.models import Attachment, Contact, Identity, InboundEmail, Message, Ticket

from .conftest import ATTACHMENT_LIMIT, EML, eml

pytestmark = pytest.mark.django_db

WEBHOOK_AUTH = "anymail:inbound-secret-for-tests"


def receive(name: str) -> actions.Received:
    """The sample stored and processed as the task would: what receive_message returned."""
    arrival = email_in.receive_bytes(eml(name))
    assert arrival.email.status == "processed", arrival.email.last_error
    return arrival.received


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


def test_the_same_bytes_delivered_again_are_stored_once():
    first = receive("01-plain.eml")
    again = email_in.receive_bytes(eml("01-plain.eml"))

    assert not again.stored and again.received is None
    assert again.email.status == "processed" and again.email.message == first.message
    assert InboundEmail.objects.count() == 1
    assert Message.objects.count() == 1 and Ticket.objects.count() == 1


def test_the_same_message_id_in_other_bytes_is_ignored_as_a_duplicate_of_the_message():
    first = receive("01-plain.eml")
    # The same message relayed once more, with one more Received line on top.
    relay = b"Received: from relay.example.com by mx.paydesk.test; Mon, 3 Mar 2025 09:13:00 +0900\n"
    relayed = email_in.receive_bytes(relay + eml("01-plain.eml"))

    assert relayed.stored and relayed.email.status == "ignored"
    assert relayed.email.message == first.message
    assert relayed.email.last_error == f"the same Message-ID was received before (message {first.message.pk})"
    assert Message.objects.count() == 1


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

    same = email_in.receive_bytes(_mail("tom@example.com", f"Re: charged twice {ticket.token}", message_id="t1@x")).received
    other = email_in.receive_bytes(_mail("mallory@example.com", f"Re: {ticket.token}", message_id="t2@x")).received

    assert same.message.ticket_id == ticket.pk and not same.ticket_created
    assert other.ticket_created and other.message.ticket_id != ticket.pk


def test_a_customer_reply_to_an_agent_reply_threads_and_reopens_the_solved_ticket(agent, committed):
    ticket = receive("06-thread-1.eml").message.ticket
    with committed():
        sent = actions.reply(actor=agent, ticket=ticket, body="We refunded the second charge.", status="solved")
    assert Ticket.objects.get(pk=ticket.pk).status == "solved"

    answer = email_in.receive_bytes(_mail(
        "tom@example.com", "Re: thanks", body="It is still there.", message_id="t3@example.com",
    ).replace(b"Subject:", f"In-Reply-To: <{sent.channel_message_id}>\nSubject:".encode())).received

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


def test_mail_without_a_usable_sender_or_from_ourselves_is_kept_as_ignored_with_the_reason():
    no_from = EmailMessage()
    no_from["To"], no_from["Subject"] = "support@paydesk.test", "hello"
    no_from.set_content("Who am I?")

    arrivals = {
        "bounce": email_in.receive_bytes(eml("14-from-without-domain.eml")),
        "none": email_in.receive_bytes(no_from.as_bytes()),
        "words": email_in.receive_bytes(_mail("not an address", "hello", message_id="nosender@x")),
        "loop": email_in.receive_bytes(_mail("Paydesk <SUPPORT@paydesk.test>", "Re: hello", message_id="loop@x")),
    }

    assert {k: (a.email.status, a.email.last_error) for k, a in arrivals.items()} == {
        "bounce": ("ignored", "its From (Mail Delivery Subsystem <MAILER-DAEMON>) is not an email address"),
        "none": ("ignored", "the message has no From address"),
        "words": ("ignored", "its From (not an address) is not an email address"),
        "loop": ("ignored", "it is from the support address itself"),
    }
    assert arrivals["bounce"].email.subject == "Returned mail: see transcript for details"
    assert InboundEmail.objects.count() == 4
    assert not Ticket.objects.exists() and not Contact.objects.exists()


# --- real-world mail that must still become a ticket from its sender ------------------------------


def test_a_bcc_copy_whose_to_is_undisclosed_recipients_becomes_a_ticket():
    """`To: undisclosed-recipients:;` is on every blind copy (the import crashed on it)."""
    message = receive("07-bcc-undisclosed-recipients.eml").message

    assert message.sender == "daniel.okafor@example.net" and message.contact.name == "Daniel Okafor"
    assert message.ticket.subject == "Charged twice for order KR-7730"
    assert message.recipient == "undisclosed-recipients:;"  # kept as text
    assert message.body_text.startswith("Hello,\r\n\r\nI was charged twice for order KR-7730")


def test_the_envelope_recipient_stands_for_a_to_that_names_nobody():
    arrival = email_in.receive_bytes(eml("07-bcc-undisclosed-recipients.eml"), esp="postmark",
                                     envelope_recipient="support@paydesk.test")

    assert arrival.email.message.recipient == "support@paydesk.test"


def test_a_to_that_is_a_bare_word_or_missing_is_kept_as_text():
    bare = receive("08-to-bare-word.eml").message
    none = receive("09-no-to.eml").message

    assert (bare.sender, bare.recipient, bare.ticket.subject) == (
        "priya.raman@example.co.uk", "support", "Invoice with our VAT number, please")
    assert (none.sender, none.recipient, none.contact.name) == ("t.nowak@example.pl", "", "Tomasz Nowak")
    assert none.body_text.startswith("Dzień dobry,")


def test_headers_and_a_body_in_a_charset_nobody_knows_are_still_read():
    """unknown-8bit in encoded-words and in the body's Content-Type (Latin-1 bytes)."""
    message = receive("10-unknown-charset.eml").message

    assert message.contact.name == "Jürgen Müller" and message.sender == "juergen.mueller@example.de"
    assert message.ticket.subject == "Rückerstattung für Bestellung KR-4471"
    assert "die Rückerstattung für Bestellung KR-4471 (Kaffeemühle)" in message.body_text
    assert message.body_text.endswith("Mit freundlichen Grüßen\nJürgen Müller\n")


def test_an_iso_2022_jp_body_declared_as_us_ascii_is_read_as_iso_2022_jp():
    message = receive("11-iso-2022-jp-declared-us-ascii.eml").message

    assert message.contact.name == "中村 直子" and message.ticket.subject == "定期便の一時停止"
    assert message.body_text.startswith("お世話になっております。\n定期便（毎月15日発送）を一時停止したいのですが、")
    assert "\x1b" not in message.body_text


def test_raw_8bit_utf8_headers_are_decoded():
    message = receive("12-raw-8bit-headers.eml").message

    assert message.contact.name == "小林 優斗" and message.sender == "yuto.kobayashi@example.jp"
    assert message.ticket.subject == "領収書の宛名を変更したい"
    assert "株式会社コバヤシ" in message.body_text


def test_a_message_without_a_message_id_becomes_a_ticket_and_is_stored_once():
    first = email_in.receive_bytes(eml("13-no-message-id.eml"))
    again = email_in.receive_bytes(eml("13-no-message-id.eml"))

    message = first.email.message
    assert first.email.status == "processed" and message.channel_message_id == ""
    assert message.sender == "lucia.fernandez@example.es" and "3º B, 28013 Madrid" in message.body_text
    assert not again.stored and Message.objects.count() == 1


def test_broken_headers_are_read_into_what_the_admin_shows():
    email = email_in.receive_bytes(eml("10-unknown-charset.eml")).email

    assert email.mail_from == "Jürgen Müller <juergen.mueller@example.de>"
    assert email.subject == "Rückerstattung für Bestellung KR-4471"
    assert bytes(email.raw) == eml("10-unknown-charset.eml") and email.size == len(eml("10-unknown-charset.eml"))


# --- through anymail's inbound webhook (Postmark's JSON with RawEmail) ---------------------


def _postmark(client, raw: bytes, auth: str | None = WEBHOOK_AUTH, **extra):
    """Post `raw` as Postmark's inbound webhook does: JSON with the message as RawEmail text."""
    headers = dict(extra)
    if auth:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # 8-bit bytes that are not UTF-8 reach the JSON as characters
    payload = {"RawEmail": text, "Headers": [], "MessageID": "pm-1", "OriginalRecipient": "support@paydesk.test"}
    return client.post("/anymail/postmark/inbound/", json.dumps(payload), content_type="application/json", **headers)


@pytest.fixture
def postmark_enabled(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_AUTH}
    settings.TICKETS_INBOUND_EMAIL_ESPS = ["postmark"]


def test_the_webhook_only_stores_and_queues_and_the_task_makes_the_message(
    client, postmark_enabled, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = _postmark(client, eml("04-iso-2022-jp.eml"))

    assert response.status_code == 200
    email = InboundEmail.objects.get()
    assert (email.status, email.esp, email.envelope_recipient) == ("pending", "postmark", "support@paydesk.test")
    assert bytes(email.raw) == eml("04-iso-2022-jp.eml")  # the message as it was sent
    assert not Message.objects.exists() and len(queued) == 1  # its processing, queued on commit

    with eager_tasks():
        queued[0]()

    email.refresh_from_db()
    assert email.status == "processed" and email.mail_from == "山田 花子 <hanako.yamada@example.jp>"
    assert email.message.ticket.subject == "注文のキャンセルについて"
    assert email.message.sender == "hanako.yamada@example.jp"


def test_the_same_post_delivered_again_is_stored_once(client, postmark_enabled, committed):
    with committed():
        first = _postmark(client, eml("01-plain.eml"))
    with committed():
        again = _postmark(client, eml("01-plain.eml"))

    assert first.status_code == again.status_code == 200
    assert InboundEmail.objects.count() == 1 and Message.objects.count() == 1


@pytest.mark.parametrize("name, sender, subject, status", [
    ("07-bcc-undisclosed-recipients.eml", "daniel.okafor@example.net", "Charged twice for order KR-7730", "processed"),
    ("08-to-bare-word.eml", "priya.raman@example.co.uk", "Invoice with our VAT number, please", "processed"),
    ("09-no-to.eml", "t.nowak@example.pl", "Subscription paused?", "processed"),
    ("10-unknown-charset.eml", "juergen.mueller@example.de", "Rückerstattung für Bestellung KR-4471", "processed"),
    ("11-iso-2022-jp-declared-us-ascii.eml", "naoko.nakamura@example.ne.jp", "定期便の一時停止", "processed"),
    ("12-raw-8bit-headers.eml", "yuto.kobayashi@example.jp", "領収書の宛名を変更したい", "processed"),
    ("13-no-message-id.eml", "lucia.fernandez@example.es", "Change of delivery address", "processed"),
    ("14-from-without-domain.eml", "", "Returned mail: see transcript for details", "ignored"),
])
def test_real_world_mail_through_the_webhook_is_answered_200_and_used_by_its_sender(
    client, postmark_enabled, committed, name, sender, subject, status
):
    with committed():
        response = _postmark(client, eml(name))

    assert response.status_code == 200
    email = InboundEmail.objects.get()
    assert (email.status, email.subject) == (status, subject)
    if sender:
        assert email.message.sender == sender and email.message.ticket.subject == subject
        assert email.message.recipient == "support@paydesk.test"  # the envelope's, not the To header's
    else:
        assert email.message is None and "is not an email address" in email.last_error


def test_a_message_with_photos_over_djangos_upload_limit_is_stored(client, postmark_enabled, committed, settings):
    photo = EmailMessage()
    photo["From"], photo["To"], photo["Subject"] = "Aiko Tanaka <aiko@example.org>", "support@paydesk.test", "Broken mug"
    photo["Message-ID"] = "<photos-4417@example.org>"
    photo.set_content("The mug arrived broken; photos attached.")
    photo.add_attachment(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 12_000, maintype="image", subtype="jpeg",
                         filename="mug.jpg")
    raw = photo.as_bytes()
    assert len(json.dumps({"RawEmail": raw.decode()})) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    with committed():
        response = _postmark(client, raw)

    assert response.status_code == 200
    email = InboundEmail.objects.get()
    assert email.status == "processed" and email.size == len(raw)
    # Kept by the inbound limit, then refused by the attachment limit with a note, as any mail.
    assert email.message.attachments.get().refused
    assert "mug.jpg" in email.message.ticket.messages.get(kind="note").body_text


def test_the_webhook_refuses_a_content_length_that_is_not_a_number(client, postmark_enabled):
    response = _postmark(client, eml("01-plain.eml"), CONTENT_LENGTH="abc")

    assert (response.status_code, response.content) == (400, b"bad Content-Length")
    assert not InboundEmail.objects.exists()


def test_anymail_inbound_webhook_with_wrong_credentials_stores_nothing(client, postmark_enabled):

    response = _postmark(client, eml("01-plain.eml"), auth="anymail:guessed")
    anonymous = _postmark(client, eml("01-plain.eml"), auth=None)

    assert response.status_code == 400 and anonymous.status_code == 400
    assert not InboundEmail.objects.exists() and not Message.objects.exists()


def test_anymail_inbound_webhook_is_off_without_a_secret_or_for_other_providers(client, postmark_enabled, settings):
    other = client.post("/anymail/amazon_ses/inbound/", "{}", content_type="application/json")
    settings.ANYMAIL = {}
    no_secret = _postmark(client, eml("01-plain.eml"), auth=None)

    assert other.status_code == 404 and no_secret.status_code == 404
    assert not InboundEmail.objects.exists()


# --- the import command -------------------------------------------------------------------


def test_import_eml_command_says_what_became_of_each_file(tmp_path):
    files = sorted(str(p) for p in EML.glob("*.eml"))
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 of 16 file"):
        call_command("tickets_import_eml", *files, stdout=out, stderr=err)

    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines())
    assert len(lines) == 15
    assert sum(what.startswith("new ticket") for what in lines.values()) == 13
    assert sum(what.startswith("added to ticket") for what in lines.values()) == 2
    assert err.getvalue() == (f"{EML / '14-from-without-domain.eml'}: ignored: its From (Mail Delivery Subsystem "
                              "<MAILER-DAEMON>) is not an email address\n")
    assert InboundEmail.objects.count() == 16 and Message.objects.filter(kind="inbound").count() == 15

    out = StringIO()
    call_command("tickets_import_eml", files[0], stdout=out)
    assert "already stored" in out.getvalue()

    bad = tmp_path / "missing.eml"
    with pytest.raises(CommandError):
        call_command("tickets_import_eml", str(bad), stdout=StringIO(), stderr=StringIO())
