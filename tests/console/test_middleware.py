"""console/middleware.py: refusals answered with a fragment are marked so the page swaps them in
place (with DEBUG on, django-htmx's script would otherwise replace the whole page with them);
every answer carries the Content-Security-Policy, and no template needs what it forbids."""

import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def refund_url():
    customer = factories.CustomerFactory()
    charge = factories.ChargeFactory(customer=customer["id"], amount=5000)
    factories.mirror(customer, charge)
    contact = factories.IdentityFactory(kind="stripe_customer", value=customer["id"]).contact
    return f"/customers/{contact.pk}/charges/{charge['id']}/refund/preview"


def test_a_refused_htmx_form_is_marked_as_a_fragment(client, agent, refund_url):
    client.force_login(agent)
    data = {"token": uuid.uuid4().hex, "amount": "twelve", "reason": "requested_by_customer"}
    refused = client.post(refund_url, data, HTTP_HX_REQUEST="true")
    assert refused.status_code == 400 and b"is not an amount" in refused.content
    assert refused["X-Paydesk-Fragment"] == "1"


def test_whole_pages_and_plain_requests_are_not_marked(client, agent, refund_url):
    client.force_login(agent)
    # The settings page refuses an unknown zone with the whole page, even to htmx.
    page = client.post("/account/", {"time_zone": "Nowhere/Atlantis"}, HTTP_HX_REQUEST="true")
    assert page.status_code == 400 and "X-Paydesk-Fragment" not in page
    plain = client.post(refund_url, {"token": uuid.uuid4().hex, "amount": "twelve"})  # not htmx
    assert plain.status_code == 400 and "X-Paydesk-Fragment" not in plain
    ok = client.get("/account/", HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and "X-Paydesk-Fragment" not in ok


# --- the Content-Security-Policy -------------------------------------------------------------------

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_the_policy_allows_scripts_only_from_our_own_files():
    policy = dict(part.split(" ", 1) for part in settings.CONTENT_SECURITY_POLICY.split("; "))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy["script-src"] and "unsafe-inline" in policy["style-src"]


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_every_page_carries_it_for_every_role(client, request, role, refund_url):
    client.force_login(request.getfixturevalue(role))
    for url, extra in [("/", {}), ("/tickets/all/", {}), ("/stripe/payments/", {}), ("/no-such-page/", {}),
                       ("/account/", {"HTTP_HX_REQUEST": "true"})]:
        response = client.get(url, **extra)
        assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY, url
    refused = client.post(refund_url, {"amount": "twelve"}, HTTP_HX_REQUEST="true")
    assert refused["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY


def test_anonymous_and_wrong_role_answers_carry_it_too(client, no_role):
    for url in ("/login/", "/", "/admin/login/", "/healthz"):
        assert client.get(url)["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY, url
    client.force_login(no_role)
    denied = client.get("/stripe/payments/")
    assert denied.status_code == 403 and denied["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY


def _inline_code(path: Path) -> list[str]:
    """What the policy would block in a template: inline <script>, on* handlers, htmx eval."""
    text = path.read_text(encoding="utf-8")
    found = [m.group(0) for m in re.finditer(r"<script(?![^>]*\bsrc=)[^>]*>", text)]
    found += re.findall(r"\son[a-z]+\s*=", text)
    found += re.findall(r"\b(?:data-)?hx-on[:-][^=\s]*=", text)
    found += re.findall(r"hx-vals\s*=\s*['\"]\s*js:", text) + re.findall(r"hx-vars\s*=", text)
    return found


@pytest.mark.parametrize("template", [p.relative_to(TEMPLATES).as_posix() for p in sorted(TEMPLATES.rglob("*.html"))])
def test_templates_have_no_inline_code_the_policy_would_block(template):
    assert _inline_code(TEMPLATES / template) == []


@pytest.mark.parametrize("status", [409, 413, 502])
def test_any_refusal_or_failure_fragment_is_marked(rf, status):
    from django.http import HttpResponse

    from console.middleware import FragmentRefusalMiddleware

    request = rf.post("/anything", HTTP_HX_REQUEST="true")
    request.htmx = True
    fragment = FragmentRefusalMiddleware(lambda r: HttpResponse("<p>Stripe didn't answer.</p>", status=status))
    assert fragment(request)["X-Paydesk-Fragment"] == "1"
    page = FragmentRefusalMiddleware(lambda r: HttpResponse("<!doctype html><html>…</html>", status=status))
    assert "X-Paydesk-Fragment" not in page(request)


# --- NUL characters --------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/stripe/payments/ch_%00/", "/stripe/events/evt_%00/", "/search/?q=a%00b",
                                 "/tickets/all/?tag=%00", "/stripe/payments/?q=%00&status=x", "/?%00=1"])
def test_a_nul_anywhere_in_the_url_is_a_400_for_every_visitor(client, agent, finance, url):
    assert client.get(url).status_code == 400
    for user in (agent, finance):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 400 and b"NUL" in response.content


def test_a_nul_in_a_form_field_or_a_cookie_is_a_400_and_changes_nothing(client, admin_user):
    from tickets.models import Tag, Ticket

    ticket = factories.TicketFactory(subject="Late parcel")
    client.force_login(admin_user)
    assert client.post(f"/tickets/{ticket.number}/tags/", {"add": "late\x00"}).status_code == 400
    assert client.post("/sync/replay/", {"event": ["evt_\x00"]}).status_code == 400
    urlencoded = client.post("/sync/replay/", "event=evt_%00", content_type="application/x-www-form-urlencoded")
    assert urlencoded.status_code == 400
    assert not Tag.objects.exists() and Ticket.objects.get().version == ticket.version
    client.cookies["sessionid"] = "abc\x00def"
    assert client.get("/").status_code == 400


def test_json_bodies_are_left_to_the_endpoints(client):
    response = client.post("/stripe/webhook/", '{"id": "evt_\\u0000"}', content_type="application/json")
    assert response.status_code == 400 and response.json()["reason"] == "signature verification failed"


def test_a_multipart_body_is_left_for_the_view_to_read(client, settings):
    """The LINE webhook reads its raw body: refused for its signature (400), not a 500."""
    settings.LINE_CHANNEL_SECRET = "line-secret-for-the-middleware-test"
    assert client.post("/line/webhook/", {"events": "[]"}).status_code == 400
