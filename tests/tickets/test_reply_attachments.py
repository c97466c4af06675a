"""Files on an agent's reply or note: checked like a customer's (tickets.attachment_scan), sent
by email as attachments and by LINE as image messages whose signed, expiring URLs LINE fetches;
shown in the thread (thumbnails for pictures). Inbound email with a program is refused with a
note saying why."""

from __future__ import annotations

import io
import time
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from django.core import mail, signing
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tickets import actions, email_in, line_media
from tickets.models import Attachment, Message, Ticket
from tests import factories

from .conftest import ATTACHMENT_LIMIT
from .test_attachment_scan import PDF, PE, picture

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
PUBLIC = "https://paydesk.example"


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.PAYDESK_PUBLIC_URL = PUBLIC
    return settings


@pytest.fixture
def email_ticket(db) -> Ticket:
    return actions.receive_message(channel="email", sender="Hana Sato <hana@example.jp>", subject="Broken mug",
                                   body_text="It arrived broken.",
                                   channel_message_id=f"{factories.stripe_id('m')}@mail.example").message.ticket


@pytest.fixture
def line_ticket(db) -> Ticket:
    return actions.receive_message(channel="line", sender=factories.line_user_id(), body_text="返品できますか？",
                                   channel_message_id=factories.stripe_id("line")).message.ticket


def upload(name: str, content: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def post(client, ticket, body="Here are the photos.", *, files=(), kind="reply", **data):
    version = Ticket.objects.get(pk=ticket.pk).version
    return client.post(f"/tickets/{ticket.number}/reply/",
                       {"kind": kind, "body": body, "version": version, "files": list(files), **data}, **HX)


# --- by email ----------------------------------------------------------------------------------


def test_an_email_reply_carries_the_files_with_their_names_types_and_bytes(client, agent, email_ticket, committed):
    png, pdf = picture("PNG"), PDF
    client.force_login(agent)
    with committed():
        response = post(client, email_ticket, files=[upload("damage.png", png, "image/png"),
                                                     upload("返金明細.pdf", pdf, "application/pdf")])

    assert response.status_code == 200 and "Reply queued for sending." in response.content.decode()
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["hana@example.jp"]
    assert [(a.filename, a.mimetype, a.content) for a in sent.attachments] == [
        ("damage.png", "image/png", png), ("返金明細.pdf", "application/pdf", pdf)]
    # The MIME message itself carries them too (what the provider receives).
    raw = sent.message().as_bytes()
    assert b'filename="damage.png"' in raw and b"Content-Type: application/pdf" in raw
    message = Message.objects.get(kind="outbound")
    assert message.delivery_status == "sent"
    assert [(a.filename, a.size, a.refused) for a in message.attachments.all()] == [
        ("damage.png", len(png), False), ("返金明細.pdf", len(pdf), False)]


def test_the_thread_shows_a_replys_picture_as_a_thumbnail_and_a_pdf_by_name_and_size(client, agent, email_ticket):
    message = actions.reply(actor=agent, ticket=email_ticket, body="See attached.", attachments=[
        actions.IncomingAttachment("damage.png", picture("PNG"), "image/png"),
        actions.IncomingAttachment("refund.pdf", PDF, "application/pdf")])
    png, pdf = message.attachments.all()
    client.force_login(agent)
    html = client.get(f"/tickets/{email_ticket.number}/").content.decode()
    png_url = f"/tickets/{email_ticket.number}/attachments/{png.pk}/"
    pdf_url = f"/tickets/{email_ticket.number}/attachments/{pdf.pk}/"
    assert f'<img src="{png_url}?inline=1" alt="damage.png"' in html
    assert f'href="{pdf_url}" download>refund.pdf</a>' in html
    assert f'{pdf_url}?inline=1' not in html
    assert f"{len(PDF)}" in html and "bytes" in html


def test_only_a_picture_is_served_inline_and_everything_else_downloads_with_nosniff(client, agent, email_ticket):
    message = actions.reply(actor=agent, ticket=email_ticket, body="Files.", attachments=[
        actions.IncomingAttachment("damage.png", picture("PNG"), "image/png"),
        actions.IncomingAttachment("refund.pdf", PDF, "application/pdf")])
    inbound = actions.receive_message(
        channel="email", sender="hana@example.jp", subject=f"Re: Broken mug {email_ticket.token}", body_text="x",
        channel_message_id="svg-1@mail.example",
        attachments=[actions.IncomingAttachment("logo.svg", b"<svg onload='alert(1)'/>", "image/svg+xml")]).message
    assert inbound.ticket == email_ticket
    png, pdf = message.attachments.all()
    svg = inbound.attachments.get()
    client.force_login(agent)
    base = f"/tickets/{email_ticket.number}/attachments/"

    image = client.get(f"{base}{png.pk}/?inline=1")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image["Content-Disposition"].startswith("inline;")
    assert image["X-Content-Type-Options"] == "nosniff"
    assert b"".join(image.streaming_content) == picture("PNG")
    for other in (pdf, svg):
        response = client.get(f"{base}{other.pk}/?inline=1")
        assert response["Content-Disposition"].startswith("attachment;"), other.filename
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
    assert client.get(f"{base}{png.pk}/")["Content-Disposition"].startswith("attachment;")


def test_a_note_keeps_its_files_and_sends_nothing(client, agent, email_ticket, committed):
    client.force_login(agent)
    with committed():
        response = post(client, email_ticket, "Customer's photo for the carrier.", kind="note",
                        files=[upload("carrier.png", picture(), "image/png")])
    assert response.status_code == 200 and "Note added." in response.content.decode()
    assert mail.outbox == []
    note = Message.objects.get(kind="note")
    assert note.attachments.get().filename == "carrier.png"


# --- refused files: the whole reply is refused ------------------------------------------------


@pytest.mark.parametrize("name, content, words", [
    ("invoice.pdf", PE, "invoice.pdf is refused: named .pdf but really: Windows executable"),
    ("fix.bat", b"del *.*", "fix.bat is refused: a script or installer (.bat)"),
    ("huge.png", b"x" * (ATTACHMENT_LIMIT + 1), f"huge.png is refused: over the {ATTACHMENT_LIMIT:,}-byte limit"),
], ids=["disguised-program", "script", "too-large"])
def test_a_refused_file_refuses_the_reply_with_the_reason_and_keeps_the_text(
        client, agent, email_ticket, committed, name, content, words):
    client.force_login(agent)
    with committed():
        response = post(client, email_ticket, "Please find the invoice attached.",
                        files=[upload("ok.png", picture(), "image/png"), upload(name, content)])
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was sent." in html and words in html
    assert ">Please find the invoice attached.</textarea>" in html
    assert "Attach these files again if you still mean to send them: ok.png, " + name in html
    assert mail.outbox == []
    assert not Message.objects.filter(kind="outbound").exists()
    assert not Attachment.objects.filter(message__kind="outbound").exists()


def test_files_over_the_total_for_one_message_are_refused(client, agent, email_ticket, settings):
    settings.TICKETS_MESSAGE_ATTACHMENTS_MAX_BYTES = 1000
    client.force_login(agent)
    response = post(client, email_ticket, files=[upload("a.txt", b"a" * 600, "text/plain"),
                                                 upload("b.txt", b"b" * 600, "text/plain")])
    assert "The files add up to 1,200 bytes, over the 1,000-byte limit for one message." in response.content.decode()
    assert not Message.objects.filter(kind="outbound").exists()


def test_a_refused_note_file_refuses_the_note(client, agent, email_ticket):
    client.force_login(agent)
    response = post(client, email_ticket, "internal", kind="note", files=[upload("run.ps1", b"Write-Host hi")])
    assert "run.ps1 is refused" in response.content.decode()
    assert not Message.objects.filter(kind="note").exists()


def test_files_go_with_a_macros_reply_and_the_macro_counts_once(client, agent, email_ticket, committed):
    macro = factories.MacroFactory(name="Thanks", body="Thanks {{ contact.name }}!", add_tags=["thanked"])
    client.force_login(agent)
    with committed():
        post(client, email_ticket, "Thanks! Here is the photo.", macro=macro.pk,
             files=[upload("a.png", picture(), "image/png")])
    [sent] = Message.objects.filter(kind="outbound")
    assert sent.body_text == "Thanks! Here is the photo."
    assert [a.filename for a in sent.attachments.all()] == ["a.png"]
    assert "thanked" in set(email_ticket.tags.values_list("name", flat=True))
    macro.refresh_from_db()
    assert macro.use_count == 1


def test_a_refused_file_with_a_macro_sends_nothing_and_changes_nothing(client, agent, email_ticket):
    macro = factories.MacroFactory(name="Thanks", body="Thanks!", add_tags=["thanked"])
    client.force_login(agent)
    response = post(client, email_ticket, "Thanks!", macro=macro.pk, files=[upload("run.ps1", b"Write-Host hi")])
    assert "run.ps1 is refused" in response.content.decode()
    assert not Message.objects.filter(kind="outbound").exists()
    assert not email_ticket.tags.filter(name="thanked").exists()
    macro.refresh_from_db()
    assert macro.use_count == 0


def test_the_composer_takes_files(client, agent, email_ticket):
    client.force_login(agent)
    html = client.get(f"/tickets/{email_ticket.number}/").content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert '<input type="file" name="files" multiple' in html


# --- roles -------------------------------------------------------------------------------------


def test_a_user_without_a_tickets_role_cannot_send_files(client, no_role, email_ticket):
    client.force_login(no_role)
    response = post(client, email_ticket, files=[upload("a.png", picture(), "image/png")])
    assert response.status_code == 403
    assert not Attachment.objects.filter(message__kind__in=["outbound", "note"]).exists()


def test_anonymous_is_sent_to_login_and_nothing_is_stored(client, email_ticket):
    response = post(client, email_ticket, files=[upload("a.png", picture(), "image/png")])
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not Message.objects.filter(kind="outbound").exists()


# --- by LINE -----------------------------------------------------------------------------------


def _path(url: str) -> str:
    assert url.startswith(f"{PUBLIC}/line/images/"), url
    return urlsplit(url).path


def test_a_line_reply_pushes_the_text_and_each_image_by_a_signed_url(client, agent, line_ticket, line_api, committed):
    jpeg, png = picture("JPEG"), picture("PNG")
    client.force_login(agent)
    with committed():
        response = post(client, line_ticket, "写真をお送りします。",
                        files=[upload("a.jpg", jpeg, "image/jpeg"), upload("b.png", png, "image/png")])
    assert "Reply queued for sending." in response.content.decode()

    assert len(line_api.calls) == 1
    messages = line_api.calls[0]["json"]["messages"]
    assert messages[0] == {"type": "text", "text": "写真をお送りします。"}
    assert [m["type"] for m in messages[1:]] == ["image", "image"]
    assert Message.objects.get(kind="outbound").delivery_status == "sent"

    client.logout()  # LINE's servers fetch without a login
    for message, content, kind in zip(messages[1:], (jpeg, png), ("image/jpeg", "image/png")):
        original = client.get(_path(message["originalContentUrl"]))
        assert original.status_code == 200 and original["Content-Type"] == kind
        assert b"".join(original.streaming_content) == content
        assert original["X-Content-Type-Options"] == "nosniff"
        preview = client.get(_path(message["previewImageUrl"]))
        assert preview.status_code == 200 and preview["Content-Type"] == "image/jpeg"
        assert Image.open(io.BytesIO(preview.content)).format == "JPEG"
        assert len(preview.content) <= 1024 * 1024


def test_a_signed_image_url_that_is_tampered_expired_or_not_a_line_reply_is_404(client, agent, line_ticket, email_ticket):
    line_reply = actions.reply(actor=agent, ticket=line_ticket, body="写真です", attachments=[
        actions.IncomingAttachment("a.png", picture("PNG"), "image/png")])
    image = line_reply.attachments.get()
    good = _path(line_media.signed_url(image))
    assert client.get(good).status_code == 200

    token = good.rsplit("/", 1)[1]
    assert client.get(f"/line/images/{token[:-1]}{'A' if token[-1] != 'A' else 'B'}").status_code == 404
    other = actions.reply(actor=agent, ticket=line_ticket, body="もう一枚", attachments=[
        actions.IncomingAttachment("b.png", picture("PNG"), "image/png")]).attachments.get()
    payload, rest = token.split(":", 1)
    assert signing.b64_decode(payload.encode()) == f'{{"a":{image.pk},"p":0}}'.encode()
    swapped = signing.b64_encode(f'{{"a":{other.pk},"p":0}}'.encode()).decode()
    assert client.get(f"/line/images/{swapped}:{rest}").status_code == 404  # another image, this signature
    assert client.get("/line/images/not-a-token").status_code == 404

    class EightDaysAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - 8 * 24 * 3600)

    expired = EightDaysAgo(salt=line_media.SALT).sign_object({"a": image.pk, "p": 0})
    assert client.get(f"/line/images/{expired}").status_code == 404
    # Signed with another salt (another use of signing): not an image URL.
    assert client.get(f"/line/images/{signing.dumps({'a': image.pk, 'p': 0})}").status_code == 404
    # An email reply's picture is never served here, even with a good signature.
    email_reply = actions.reply(actor=agent, ticket=email_ticket, body="photo", attachments=[
        actions.IncomingAttachment("a.png", picture("PNG"), "image/png")])
    assert client.get(_path(line_media.signed_url(email_reply.attachments.get()))).status_code == 404


@pytest.mark.parametrize("files, words", [
    ([("receipt.pdf", PDF, "application/pdf")], "receipt.pdf: LINE can only receive images (JPEG or PNG)."),
    ([("anim.gif", picture("GIF"), "image/gif")], "anim.gif: LINE can only receive images (JPEG or PNG)."),
    ([(f"{i}.png", picture(), "image/png") for i in range(5)],
     "LINE takes at most 4 images with a reply; 5 are attached."),
], ids=["pdf", "gif", "five-images"])
def test_what_line_cannot_take_is_refused_at_the_form(client, agent, line_ticket, line_api, committed, files, words):
    client.force_login(agent)
    with committed():
        response = post(client, line_ticket, "こちらです", files=[upload(*f) for f in files])
    html = response.content.decode()
    assert "Nothing was sent." in html and words in html
    assert ">こちらです</textarea>" in html
    assert line_api.calls == []
    assert not Message.objects.filter(kind="outbound").exists()


def test_line_images_need_a_public_https_address(client, agent, line_ticket, settings):
    settings.PAYDESK_PUBLIC_URL = "http://paydesk.internal"
    client.force_login(agent)
    response = post(client, line_ticket, "写真", files=[upload("a.png", picture(), "image/png")])
    assert "PAYDESK_PUBLIC_URL" in response.content.decode()
    assert not Message.objects.filter(kind="outbound").exists()


# --- inbound: the same rules -------------------------------------------------------------------


def test_an_inbound_email_with_a_program_keeps_the_rest_and_a_note_says_why(committed):
    mail_in = EmailMessage()
    mail_in["From"], mail_in["To"], mail_in["Subject"] = "ken@example.com", "support@paydesk.test", "Invoice"
    mail_in["Message-ID"] = "<exe-1@example.com>"
    mail_in.set_content("Invoice attached.")
    mail_in.add_attachment(PE, maintype="application", subtype="pdf", filename="invoice.pdf")
    mail_in.add_attachment(PE, maintype="application", subtype="octet-stream", filename="setup.exe")
    mail_in.add_attachment(picture(), maintype="image", subtype="png", filename="mug.png")

    arrival = email_in.receive_bytes(mail_in.as_bytes())

    assert arrival.email.status == "processed", arrival.email.last_error
    message = arrival.received.message
    stored = {a.filename: a for a in message.attachments.all()}
    assert stored["invoice.pdf"].refused and not stored["invoice.pdf"].file
    assert stored["setup.exe"].refused and not stored["setup.exe"].file
    assert not stored["mug.png"].refused and stored["mug.png"].file
    note = Message.objects.get(ticket=message.ticket, kind="note")
    assert "Refused 2 attachment(s)" in note.body_text
    assert f"invoice.pdf ({len(PE):,} bytes): named .pdf but really: Windows executable" in note.body_text
    assert "setup.exe" in note.body_text and "a program (Windows executable)" in note.body_text


def test_a_stale_reply_with_files_asks_for_them_again_before_send_anyway(client, agent, email_ticket):
    client.force_login(agent)
    stale_version = Ticket.objects.get(pk=email_ticket.pk).version
    actions.add_note(actor=agent, ticket=email_ticket, body="Someone else looked.")
    response = client.post(f"/tickets/{email_ticket.number}/reply/", {
        "kind": "reply", "body": "Photo attached.", "version": stale_version,
        "files": [upload("damage.png", picture(), "image/png")]}, **HX)
    html = response.content.decode()
    assert "Your reply was not sent." in html
    assert "Attach these files again if you still mean to send them: damage.png" in html
    assert not Message.objects.filter(kind="outbound").exists()
