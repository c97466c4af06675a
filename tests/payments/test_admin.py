"""Django admin: admin role only, mirrored fields read-only, re-sync and replay actions audited."""

import time

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from audit.models import AuditEntry
from payments.actions import events as actions
from payments.events import store_event
from payments.mirror import KINDS, upsert_fetched
from payments.models import Customer, SyncCursor, WebhookEvent
from tests import factories

pytestmark = pytest.mark.django_db

ADMIN_MODELS = [kind.model._meta.model_name for kind in KINDS.values()] + ["webhookevent", "synccursor"]


def seed():
    customer = factories.CustomerFactory(id="cus_Yui0001", name="Yui Nakamura", email="yui.nakamura@example.jp")
    other = factories.CustomerFactory(id="cus_Ben0001", name="Ben Walker", email="ben@example.com")
    charge = factories.ChargeFactory(id="ch_adm0001", customer=customer["id"], amount=3300, currency="jpy",
                                     billing_details={"email": "yui.nakamura@example.jp"})
    other_charge = factories.ChargeFactory(id="ch_adm0002", customer=other["id"],
                                           billing_details={"email": "ben@example.com"})
    factories.mirror(customer, other, charge, other_charge)
    store_event(factories.event("charge.succeeded", charge, event_id="evt_adm0001"))
    store_event(factories.event("charge.succeeded", other_charge, event_id="evt_adm0002"))
    return customer, charge


# --- who gets in ------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client):
    response = client.get("/admin/payments/charge/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/admin/payments/charge/")


@pytest.mark.parametrize("role", ["agent", "finance"])
def test_agent_and_finance_get_the_admin_login(as_user, request, role):
    seed()
    client = as_user(request.getfixturevalue(role))
    for path in ("/admin/", "/admin/payments/charge/", "/admin/payments/charge/ch_adm0001/change/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/?next=")
    page = client.get("/admin/login/")
    assert b"not authorized to access this page" in page.content


def test_admin_sees_every_mirrored_model_and_the_event_log(as_user, admin_user):
    response = as_user(admin_user).get("/admin/")
    assert response.status_code == 200
    body = response.content.decode()
    for model in ADMIN_MODELS:
        assert f'href="/admin/payments/{model}/"' in body, model
    assert 'href="/admin/audit/auditentry/"' in body


@pytest.mark.parametrize("model", ADMIN_MODELS)
def test_admin_changelists_open(as_user, admin_user, model):
    seed()
    assert as_user(admin_user).get(f"/admin/payments/{model}/").status_code == 200


# --- lists, search, the object page -------------------------------------------------------------


def test_charge_list_columns_filters_and_money(as_user, admin_user):
    seed()
    body = as_user(admin_user).get("/admin/payments/charge/").content.decode()
    assert "ch_adm0001" in body
    assert "¥3,300" in body
    assert "By status" in body and "By disputed" in body


@pytest.mark.parametrize(
    "model, q, shown, hidden",
    [
        ("customer", "cus_Yui0001", "cus_Yui0001", "cus_Ben0001"),
        ("customer", "yui.nakamura@example.jp", "cus_Yui0001", "cus_Ben0001"),
        ("customer", "Walker", "cus_Ben0001", "cus_Yui0001"),
        ("charge", "yui.nakamura@", "ch_adm0001", "ch_adm0002"),
        ("charge", "cus_Yui0001", "ch_adm0001", "ch_adm0002"),
        ("charge", "ch_adm0002", "ch_adm0002", "ch_adm0001"),
        ("webhookevent", "ch_adm0001", "evt_adm0001", "evt_adm0002"),
        ("webhookevent", "evt_adm0002", "evt_adm0002", "evt_adm0001"),
    ],
)
def test_search_by_stripe_id_and_email(as_user, admin_user, model, q, shown, hidden):
    seed()
    response = as_user(admin_user).get(f"/admin/payments/{model}/", {"q": q})
    body = response.content.decode()
    assert shown in body
    assert hidden not in body


def test_object_page_is_read_only_with_readable_json(as_user, admin_user):
    seed()
    response = as_user(admin_user).get("/admin/payments/customer/cus_Yui0001/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Raw Stripe object" in body
    assert "&quot;email&quot;: &quot;yui.nakamura@example.jp&quot;" in body  # indented, escaped
    assert 'name="email"' not in body and 'name="data"' not in body  # nothing to edit
    assert 'name="_save"' not in body


def test_event_page_shows_the_raw_event(as_user, admin_user):
    seed()
    body = as_user(admin_user).get("/admin/payments/webhookevent/evt_adm0001/change/").content.decode()
    assert "Raw event" in body and "&quot;type&quot;: &quot;charge.succeeded&quot;" in body


@pytest.mark.parametrize("path", ["/admin/payments/customer/add/", "/admin/payments/customer/cus_Yui0001/delete/"])
def test_no_adding_or_deleting_mirrored_objects(as_user, admin_user, path):
    seed()
    assert as_user(admin_user).get(path).status_code == 403
    assert Customer.objects.filter(pk="cus_Yui0001").exists()


def test_editing_a_mirrored_object_is_refused(as_user, admin_user):
    seed()
    response = as_user(admin_user).post(
        "/admin/payments/customer/cus_Yui0001/change/", {"email": "changed@example.com", "name": "X"}
    )
    assert response.status_code == 403
    assert Customer.objects.get(pk="cus_Yui0001").email == "yui.nakamura@example.jp"


def test_audit_log_and_sync_cursors_are_readable(as_user, admin_user):
    AuditEntry.objects.create(actor=admin_user, action="stripe_event.replay", target="evt_x", details={"n": 1})
    SyncCursor.objects.create(name="backfill:customer", count=12)
    client = as_user(admin_user)
    assert "evt_x" in client.get("/admin/audit/auditentry/").content.decode()
    assert "backfill:customer" in client.get("/admin/payments/synccursor/").content.decode()
    assert client.get("/admin/audit/auditentry/add/").status_code == 403


# --- actions --------------------------------------------------------------------------------------


def action(client, model, name, ids):
    return client.post(
        f"/admin/payments/{model}/", {"action": name, ACTION_CHECKBOX_NAME: ids, "index": 0}, follow=True
    )


def test_resync_from_stripe_writes_stripe_state_and_audits(as_user, admin_user, localstripe):
    live = localstripe.client().v1.customers.create(params={"email": "sora@example.jp", "name": "Sora Ito"})
    stale = factories.CustomerFactory(id=live.id, name="Sora (old name)", email="old@example.jp")
    upsert_fetched([stale], int(time.time()) - 3600)  # read an hour ago
    response = action(as_user(admin_user), "customer", "resync", [live.id])
    assert "Re-synced 1 object from Stripe." in response.content.decode()
    row = Customer.objects.get(pk=live.id)
    assert (row.name, row.email) == ("Sora Ito", "sora@example.jp")
    assert row.version_source == "api"
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target) == (admin_user, "stripe_object.resync", live.id)


def test_resync_of_an_object_stripe_does_not_have_changes_nothing(as_user, admin_user, localstripe):
    seed()
    response = action(as_user(admin_user), "customer", "resync", ["cus_Yui0001"])
    assert "Re-sync failed, nothing changed" in response.content.decode()
    assert localstripe.key not in response.content.decode()
    assert Customer.objects.get(pk="cus_Yui0001").name == "Yui Nakamura"
    assert not AuditEntry.objects.exists()


def test_finance_cannot_run_admin_actions(as_user, finance, localstripe):
    seed()
    response = as_user(finance).post(
        "/admin/payments/customer/", {"action": "resync", ACTION_CHECKBOX_NAME: ["cus_Yui0001"], "index": 0}
    )
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not AuditEntry.objects.exists()


def test_replay_events_applies_them_and_audits(as_user, admin_user, eager_tasks, django_capture_on_commit_callbacks):
    charge = factories.ChargeFactory(id="ch_replay_adm", amount=7700, currency="jpy")
    store_event(factories.event("charge.succeeded", charge, event_id="evt_replay_adm"))
    actions.record_event_failure("evt_replay_adm", "OperationalError: server closed the connection", final=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = action(as_user(admin_user), "webhookevent", "replay", ["evt_replay_adm"])
    assert "Queued 1 event for replay." in response.content.decode()
    event = WebhookEvent.objects.get(pk="evt_replay_adm")
    assert event.status == WebhookEvent.Status.APPLIED and event.last_error == ""
    assert KINDS["charge"].model.objects.get(pk="ch_replay_adm").amount == 7700
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target) == (admin_user, "stripe_event.replay", "evt_replay_adm")
