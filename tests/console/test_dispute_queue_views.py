"""The dispute queue's pages (console/disputes/views.py): the queue (page and HTMX table), bulk
assign, the early-fraud-warning tab with its refund link; each for the right role, a wrong
role and an anonymous visitor."""

from __future__ import annotations

import time

import pytest

from audit.models import AuditEntry
from console.disputes.models import DisputeCase
from tests import factories

pytestmark = pytest.mark.django_db

NOW = int(time.time())


@pytest.fixture
def disputes():
    customer = factories.CustomerFactory(name="Mika Tanaka")
    charge = factories.ChargeFactory(customer=customer["id"], description="Gyokuro gift box")
    soon = factories.DisputeFactory(charge=charge["id"], evidence_details={
        "due_by": NOW + 10 * 3600, "has_evidence": False, "submission_count": 0})
    inquiry = factories.DisputeFactory(status="warning_needs_response", evidence_details={
        "due_by": NOW + 50 * 3600, "has_evidence": False, "submission_count": 0})
    lost = factories.DisputeFactory(status="lost", currency="jpy", amount=3000)
    factories.mirror(customer, charge, soon, inquiry, lost)
    identity = factories.IdentityFactory(kind="stripe_customer", value=customer["id"])
    return {"soon": soon, "inquiry": inquiry, "lost": lost, "contact": identity.contact}


def test_finance_sees_the_queue_with_countdowns_and_the_assign_bar(as_user, finance, disputes):
    response = as_user(finance).get("/disputes/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(disputes["soon"]["id"]) < html.index(disputes["inquiry"]["id"]) < html.index(disputes["lost"]["id"])
    assert "countdown countdown-red" in html and "countdown countdown-amber" in html
    assert "Inquiry" in html and f'href="/customers/{disputes["contact"].pk}/"' in html
    assert "Gyokuro gift box" in html and f'/disputes/{disputes["soon"]["id"]}/' in html
    assert 'id="dispute-assign"' in html and "Assign selected" in html
    assert 'aria-current="page">Disputes<' in html  # the nav points here


def test_the_htmx_request_gets_the_table_alone(as_user, agent, disputes):
    response = as_user(agent).get("/disputes/?group=closed", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<div id="queue-table">')
    assert disputes["lost"]["id"] in html and disputes["soon"]["id"] not in html


def test_agents_read_the_queue_without_the_assign_bar(as_user, agent, disputes):
    response = as_user(agent).get("/disputes/")
    assert response.status_code == 200 and 'id="dispute-assign"' not in response.content.decode()


def test_no_role_is_refused_and_anonymous_goes_to_the_login(client, as_user, no_role):
    assert as_user(no_role).get("/disputes/").status_code == 403
    client.logout()
    response = client.get("/disputes/?group=respond")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/disputes/")


@pytest.mark.parametrize("query", ["due=%C2%B2", "due=-5", "page=99999999999999999999", "group=%00", "reason=x%27",
                                   "assignee=%E2%80%AE", "agentic=2", "page=abc&due=Infinity"])
def test_hostile_query_strings_never_500(as_user, finance, disputes, query):
    assert as_user(finance).get(f"/disputes/?{query}").status_code in (200, 400)


def test_finance_assigns_in_bulk_and_each_dispute_is_audited(as_user, finance, admin_user, disputes):
    ids = [disputes["soon"]["id"], disputes["inquiry"]["id"]]
    response = as_user(finance).post("/disputes/assign", {"dispute": ids, "assign_to": "admin", "group": "respond",
                                                          "assignee": "nobody"})
    assert response.status_code == 302 and response["Location"] == "/disputes/?group=respond&assignee=nobody"
    assert set(DisputeCase.objects.filter(assignee=admin_user).values_list("dispute_id", flat=True)) == set(ids)
    assert AuditEntry.objects.filter(action="dispute.assign", actor=finance).count() == 2
    # Again: nothing changes hands, nothing more is audited.
    as_user(finance).post("/disputes/assign", {"dispute": ids, "assign_to": "admin"})
    assert AuditEntry.objects.filter(action="dispute.assign").count() == 2
    as_user(finance).post("/disputes/assign", {"dispute": ids[:1], "assign_to": "nobody"})
    assert DisputeCase.objects.get(dispute_id=ids[0]).assignee is None


def test_assigning_nothing_or_an_unknown_dispute_says_so(as_user, finance, disputes):
    client = as_user(finance)
    response = client.post("/disputes/assign", {"assign_to": "me"}, follow=True)
    assert "Choose at least one dispute." in response.content.decode()
    response = client.post("/disputes/assign", {"dispute": ["dp_nope"], "assign_to": "me"}, follow=True)
    assert "There is no dispute dp_nope." in response.content.decode()
    response = client.post("/disputes/assign", {"dispute": [disputes["soon"]["id"]], "assign_to": "ghost"}, follow=True)
    assert "There is no user" in response.content.decode()
    assert not DisputeCase.objects.filter(assignee__isnull=False).exists()


def test_agents_cannot_assign_and_anonymous_goes_to_the_login(client, as_user, agent, disputes):
    response = as_user(agent).post("/disputes/assign", {"dispute": [disputes["soon"]["id"]], "assign_to": "me"})
    assert response.status_code == 403
    client.logout()
    response = client.post("/disputes/assign", {"dispute": [disputes["soon"]["id"]], "assign_to": "me"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not DisputeCase.objects.filter(assignee__isnull=False).exists()
    assert as_user(agent).get("/disputes/assign").status_code == 405


def test_a_dispute_is_assigned_only_to_someone_who_works_the_queue(as_user, finance, no_role, disputes):
    response = as_user(finance).post("/disputes/assign", {"dispute": [disputes["soon"]["id"]],
                                                          "assign_to": no_role.username}, follow=True)
    assert "Disputes can only be assigned to someone who works the dispute queue." in response.content.decode()


# --- early fraud warnings ----------------------------------------------------------------------


@pytest.fixture
def warnings():
    customer = factories.CustomerFactory(name="Ken Sato")
    refundable = factories.ChargeFactory(customer=customer["id"])
    disputed = factories.ChargeFactory(customer=customer["id"], disputed=True)
    w1 = factories.EarlyFraudWarningFactory(charge=refundable["id"], created=NOW - 10)
    w2 = factories.EarlyFraudWarningFactory(charge=disputed["id"], created=NOW - 20)
    d = factories.DisputeFactory(charge=disputed["id"])
    factories.mirror(customer, refundable, disputed, w1, w2, d)
    identity = factories.IdentityFactory(kind="stripe_customer", value=customer["id"])
    return {"refundable": refundable, "disputed": disputed, "dispute": d, "contact": identity.contact}


def test_the_fraud_warnings_tab_offers_the_existing_refund_flow_only_when_refundable(as_user, finance, warnings):
    html = as_user(finance).get("/disputes/fraud-warnings/").content.decode()
    form = f'/customers/{warnings["contact"].pk}/charges/{warnings["refundable"]["id"]}/refund'
    assert f'hx-get="{form}"' in html and html.count("Refund to avoid a dispute") == 1
    assert f'/customers/{warnings["contact"].pk}/charges/{warnings["disputed"]["id"]}/refund' not in html
    assert f'/disputes/{warnings["dispute"]["id"]}/' in html and "Ken Sato" in html
    # The link opens the refund form the panel uses.
    assert as_user(finance).get(form).status_code == 200


def test_a_warning_whose_charge_was_refunded_says_so(as_user, finance):
    charge = factories.ChargeFactory(amount=3900, amount_refunded=3900, refunded=True)
    warning = factories.EarlyFraudWarningFactory(charge=charge["id"])
    factories.mirror(charge, warning)
    html = as_user(finance).get("/disputes/fraud-warnings/").content.decode()
    assert '<span class="badge badge-ok">Refunded</span>' in html and "Refund to avoid a dispute" not in html


def test_a_role_that_cannot_refund_reads_the_warnings_without_the_button(as_user, admin_user, warnings, settings):
    from django.contrib.auth.models import Permission

    admin_user.groups.get().permissions.remove(Permission.objects.get(codename="refund_charge"))
    html = as_user(admin_user).get("/disputes/fraud-warnings/").content.decode()
    assert "Refund to avoid a dispute" not in html and warnings["refundable"]["id"] in html


def test_fraud_warnings_for_agents_no_role_and_anonymous(client, as_user, agent, no_role, warnings):
    assert as_user(agent).get("/disputes/fraud-warnings/", HTTP_HX_REQUEST="true").status_code == 200
    assert as_user(no_role).get("/disputes/fraud-warnings/").status_code == 403
    client.logout()
    assert client.get("/disputes/fraud-warnings/")["Location"].startswith("/login/")
