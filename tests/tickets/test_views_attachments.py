"""GET /tickets/<number>/attachments/<id>/: customers' files, for whoever may read the ticket."""

from urllib.parse import quote

import pytest

from tests import factories
from tickets import actions
from tickets.actions import IncomingAttachment

pytestmark = pytest.mark.django_db


def inbound_with(*files, sender="Hana Sato <hana@example.jp>"):
    return actions.receive_message(
        channel="email", sender=sender, subject="Receipt attached", body_text="See the photo.",
        channel_message_id=f"{factories.stripe_id('m')}@mail.example", attachments=list(files),
    ).message


@pytest.fixture
def message():
    return inbound_with(
        IncomingAttachment("領収書.pdf", b"%PDF-1.4 receipt", "application/pdf"),
        IncomingAttachment("page.html", b"<script>alert(1)</script>", "text/html"),
    )


def url(message, attachment):
    return f"/tickets/{message.ticket.number}/attachments/{attachment.pk}/"


def test_agent_downloads_the_file_with_its_japanese_name(client, agent, message):
    client.force_login(agent)
    pdf = message.attachments.get(filename="領収書.pdf")
    response = client.get(url(message, pdf))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 receipt"
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert quote("領収書.pdf") in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_html_from_a_customer_is_never_rendered_inline(client, agent, message):
    client.force_login(agent)
    html = message.attachments.get(filename="page.html")
    response = client.get(url(message, html))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]


def test_the_ticket_page_links_the_download(client, agent, message):
    client.force_login(agent)
    pdf = message.attachments.get(filename="領収書.pdf")
    html = client.get(f"/tickets/{message.ticket.number}/").content.decode()
    assert f'href="{url(message, pdf)}"' in html


def test_an_attachment_of_another_ticket_is_404(client, agent, message):
    other = inbound_with(IncomingAttachment("other.txt", b"x", "text/plain"), sender="Ken <ken@example.com>")
    client.force_login(agent)
    foreign = other.attachments.get()
    response = client.get(f"/tickets/{message.ticket.number}/attachments/{foreign.pk}/")
    assert response.status_code == 404


def test_a_user_without_a_tickets_role_is_refused(client, no_role, message):
    client.force_login(no_role)
    response = client.get(url(message, message.attachments.first()))
    assert response.status_code == 403


def test_anonymous_is_sent_to_login(client, message):
    response = client.get(url(message, message.attachments.first()))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
