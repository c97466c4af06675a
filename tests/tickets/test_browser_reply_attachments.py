"""In a real browser at 1440×900: an agent picks a photo and a PDF in the composer (listed with
their sizes), sends, and the reply shows in the thread with the photo's thumbnail (served
inline) and the PDF by name and size; the email went out with both. The screenshot goes to
/tmp/h/shots/reply_attachments.png for a person to look at."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core import mail
from PIL import Image, ImageDraw

from tickets import actions
from tests import factories
from tests.helpers import chromium_tab, sign_in

from .test_attachment_scan import PDF

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1440, 900
SHOT = Path("/tmp/h/shots/reply_attachments.png")


def photo() -> bytes:
    """A 640×420 'photo' of a parcel: a warm gradient and a box."""
    image = Image.new("RGB", (640, 420))
    draw = ImageDraw.Draw(image)
    for y in range(420):
        draw.line([(0, y), (640, y)], fill=(240 - y // 4, 200 - y // 5, 150 - y // 6))
    draw.rectangle([200, 120, 440, 320], fill=(176, 128, 80), outline=(90, 60, 30), width=6)
    draw.line([(200, 220), (440, 220)], fill=(230, 210, 170), width=14)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def page(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium_tab(WIDTH, HEIGHT) as tab:
        yield tab


def test_agent_sends_a_photo_and_a_pdf_and_the_thread_shows_them(live_server, page, settings, eager_tasks, tmp_path):
    from playwright.sync_api import expect

    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    ticket = actions.receive_message(
        channel="email", sender="Misaki Sato <misaki.sato@example.jp>", subject="Parcel arrived damaged",
        body_text="Hello, the box for order KR-10538 arrived crushed. What can you do?",
        channel_message_id="browser-attach-1@mail.example").message.ticket
    factories.UserFactory(username="aiko", role="agent", first_name="Aiko", last_name="Mori")
    (tmp_path / "carrier-photo.png").write_bytes(photo())
    (tmp_path / "refund-receipt.pdf").write_bytes(PDF)

    sign_in(page, live_server.url, "aiko", f"/tickets/{ticket.number}/")

    page.fill("#composer textarea[name=body]", "Sorry about the box. Here is the carrier's photo and your refund receipt.")
    page.set_input_files("#composer input[name=files]",
                         [str(tmp_path / "carrier-photo.png"), str(tmp_path / "refund-receipt.pdf")])
    chosen = page.locator("#composer .chosen-files li")
    expect(chosen).to_have_count(2)
    expect(chosen.nth(0)).to_contain_text("carrier-photo.png")
    expect(chosen.nth(0)).to_contain_text("KB")
    expect(chosen.nth(1)).to_contain_text(f"refund-receipt.pdf {len(PDF)} B")

    page.click("#composer button.primary[type=submit]")
    expect(page.locator(".sent-ok")).to_be_visible()
    reply = page.locator("li.msg-outbound").last
    thumb = reply.locator(".att-thumb img")
    expect(thumb).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert thumb.evaluate("img => img.naturalWidth") == 640
    expect(reply.locator(".attachments")).to_contain_text("refund-receipt.pdf")
    reply.scroll_into_view_if_needed()
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOT))

    assert len(mail.outbox) == 1
    assert [a.filename for a in mail.outbox[0].attachments] == ["carrier-photo.png", "refund-receipt.pdf"]
    assert page.errors == [] and page.csp == []
