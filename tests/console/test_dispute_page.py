"""The dispute page (console/disputes/page.py): facts for everyone who may read disputes; the
evidence form, "Assemble", save/submit and accept for finance and admins, each confirmed, sent to
Stripe (the recording gateway and the stand-in) exactly as previewed."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests import factories
from tests.helpers import sealed
from tests.payments.test_dispute_actions import tell, writes
from tests.payments.test_stripe_actions import gateway_server, gw  # noqa: F401  (fixtures)
from tickets.actions import receive_message

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def case(gw, localstripe):
    """A fraud dispute on Misaki's 32 USD charge, known to the stand-in and mirrored; she wrote
    to support in Japanese."""
    customer = factories.CustomerFactory(name="Misaki Sato", email="misaki.sato@example.jp")
    charge = factories.ChargeFactory(customer=customer["id"], amount=3200, description="Order KR-10538")
    dispute = tell(localstripe, charge=charge["id"], amount=3200, currency="usd",
                   payment_method_details={"type": "card", "card": {"brand": "visa", "network_reason_code": "10.4"}})
    factories.mirror(customer, charge, dispute)
    message = receive_message(channel="email", sender="misaki.sato@example.jp", subject="Refund?",
                              body_text="注文が届いていません。").message
    factories.IdentityFactory(contact=message.ticket.requester, kind="stripe_customer", value=customer["id"])
    return {"dispute": dispute, "charge": charge, "contact": message.ticket.requester}


def test_everyone_who_reads_disputes_sees_the_facts_only_finance_and_admins_act(as_user, agent, finance, admin_user,
                                                                                 no_role, client, case):
    url = f"/disputes/{case['dispute']['id']}/"
    page = as_user(agent).get(url).content.decode()
    assert "$32.00" in page and "10.4" in page and "Other fraud, card absent" in page
    assert "Not assessed" in page  # Radar's risk (none on this charge), said as on the payment page
    assert f'href="/customers/{case["contact"].pk}/"' in page and "Assemble evidence" not in page
    for person in (finance, admin_user):
        assert "Assemble evidence" in as_user(person).get(url).content.decode()
    assert as_user(no_role).get(url).status_code == 403
    client.logout()
    assert client.get(url)["Location"].startswith("/login/")
    assert as_user(finance).get("/disputes/dp_missing/").status_code == 404


def test_assemble_save_a_draft_then_submit_exactly_as_previewed(as_user, finance, gw, case):
    client, dispute_id = as_user(finance), case["dispute"]["id"]
    base = f"/disputes/{dispute_id}/evidence"
    form = unescape(client.get(base + "?assemble=1", **HX).content.decode())
    assert 'value="Misaki Sato"' in form and f"From the mirror: customer {case['charge']['customer']}" in form
    assert "The customer's 1 messages with support (email and LINE), as a PDF" in form
    token = re.search(r'name="token" value="([^"]+)"', form).group(1)

    assert 'name="include_receipt" checked' in form.replace('id="id_include_receipt" ', "")
    preview = client.post(base + "/preview", {"token": token, "customer_name": "Misaki Sato (edited)",
                                              "include_conversation": "on", "include_receipt": "on"}, **HX)
    assert preview.status_code == 200 and "draft" in preview.content.decode().lower()
    upload = [r for r in writes(gw) if r["path"] == "/v1/files"]
    assert len(upload) == 2  # the PDFs the confirmation names, each uploaded once
    shown = unescape(preview.content.decode())  # the values themselves, not only the fields' names
    assert "<dt>Customer name</dt>" in shown and "Misaki Sato (edited)" in shown
    assert "the conversation with support, as a PDF" in shown and "the charge's receipt, as a PDF" in shown
    assert not [r for r in writes(gw) if r["path"].startswith("/v1/disputes")]  # nothing sent before confirming

    done = client.post(base + "/confirm", {"confirmation": sealed(preview)}, **HX)
    assert done.status_code == 200, done.content
    sent = [r for r in writes(gw) if r["path"] == f"/v1/disputes/{dispute_id}"]
    assert len(sent) == 1
    params = sent[0]["params"]
    assert params["evidence[customer_name]"] == "Misaki Sato (edited)" and params["submit"] == "false"
    assert params["evidence[customer_communication]"].startswith("file_")
    assert params["evidence[receipt]"].startswith("file_")
    assert params["evidence[receipt]"] != params["evidence[customer_communication]"]

    again = client.post(base + "/confirm", {"confirmation": sealed(preview)}, **HX)  # a double click
    assert again.status_code == 200
    assert len([r for r in writes(gw) if r["path"] == f"/v1/disputes/{dispute_id}"]) == 1

    final = client.post(base + "/preview", {"token": token + "x" * 3, "customer_name": "Misaki Sato",
                                            "submit": "on"}, **HX)
    assert "final" in final.content.decode().lower()
    client.post(base + "/confirm", {"confirmation": sealed(final)}, **HX)
    submits = [r for r in writes(gw) if r["path"] == f"/v1/disputes/{dispute_id}" and r["params"]["submit"] == "true"]
    assert len(submits) == 1


def test_a_field_emptied_in_the_form_is_cleared_at_stripe_as_the_preview_says(as_user, finance, gw, localstripe):
    charge = factories.ChargeFactory(amount=3200)
    dispute = tell(localstripe, charge=charge["id"], amount=3200, currency="usd",
                   evidence={"customer_name": "Wrong Name", "billing_address": "1-2-3 Jingumae, Tokyo"})
    factories.mirror(charge, dispute)
    client, base = as_user(finance), f"/disputes/{dispute['id']}/evidence"
    preview = client.post(base + "/preview", {"token": "c" * 32, "customer_name": "",
                                              "billing_address": "1-2-3 Jingumae, Tokyo"}, **HX)
    shown = unescape(preview.content.decode())
    assert preview.status_code == 200 and "Emptied: Customer name." in shown
    assert re.search(r"<dt>Customer name</dt>\s*<dd class=\"muted\">emptied</dd>", shown)
    client.post(base + "/confirm", {"confirmation": sealed(preview)}, **HX)
    [sent] = [r for r in writes(gw) if r["path"] == f"/v1/disputes/{dispute['id']}"]
    assert sent["params"]["evidence[customer_name]"] == ""
    assert sent["params"]["evidence[billing_address]"] == "1-2-3 Jingumae, Tokyo"


def test_agents_cannot_preview_or_confirm(as_user, agent, gw, case):
    base = f"/disputes/{case['dispute']['id']}/evidence"
    assert as_user(agent).get(base, **HX).status_code == 403
    assert as_user(agent).post(base + "/preview", {"customer_name": "x"}, **HX).status_code == 403
    assert writes(gw) == []


def test_accept_closes_the_dispute_once_confirmed(as_user, finance, gw, case):
    client, dispute_id = as_user(finance), case["dispute"]["id"]
    preview = client.post(f"/disputes/{dispute_id}/accept/preview", {"token": "a" * 32}, **HX)
    assert preview.status_code == 200 and not writes(gw)
    client.post(f"/disputes/{dispute_id}/accept/confirm", {"confirmation": sealed(preview)}, **HX)
    assert [r["path"] for r in writes(gw)] == [f"/v1/disputes/{dispute_id}/close"]


def test_finance_links_the_ticket_a_dispute_is_worked_on_agents_cannot(as_user, finance, agent, case):
    from audit.models import AuditEntry
    from console.disputes.models import DisputeCase

    dispute_id, ticket = case["dispute"]["id"], case["contact"].tickets.get()
    assert as_user(agent).post(f"/disputes/{dispute_id}/ticket", {"ticket": ticket.number}).status_code == 403
    client = as_user(finance)
    refused = client.post(f"/disputes/{dispute_id}/ticket", {"ticket": "99999"}, follow=True).content.decode()
    assert "There is no ticket #99999." in refused and not DisputeCase.objects.filter(ticket__isnull=False).exists()
    page = client.post(f"/disputes/{dispute_id}/ticket", {"ticket": f"#{ticket.number}"}, follow=True).content.decode()
    assert f"Ticket #{ticket.number} is linked to this dispute." in page and f'href="/tickets/{ticket.number}/"' in page
    assert DisputeCase.objects.get(dispute_id=dispute_id).ticket == ticket
    assert AuditEntry.objects.filter(action="dispute.link_ticket", actor=finance).count() == 1
    client.post(f"/disputes/{dispute_id}/ticket", {"ticket": ""})
    assert DisputeCase.objects.get(dispute_id=dispute_id).ticket is None


def test_the_page_shows_the_customers_timeline_around_the_charge(as_user, agent, case):
    from console import timeline
    from tickets.models import Message

    message = Message.objects.get(ticket__requester=case["contact"])
    timeline.upsert([timeline.message_entry(message, message.ticket)])
    page = as_user(agent).get(f"/disputes/{case['dispute']['id']}/").content.decode()
    assert "Around this charge" in page and "Customer wrote on #" in page
