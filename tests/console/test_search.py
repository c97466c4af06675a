"""The top bar's search (console/search.py): one box finds tickets, message text (English and
Japanese, partial words), contacts (names, email domains, phones in any format), payments (order
numbers, descriptions, metadata, last four, amounts) and Stripe customers; an exact Stripe id
or "#4" goes straight there; everything else is a results page grouped by kind."""

import time

import pytest
from django.urls import reverse

from console import search as finder
from tests import factories
from tests.helpers import deliver
from tickets import actions as ticket_actions
from tickets.models import Identity, Ticket

pytestmark = pytest.mark.django_db
NOW = int(time.time())


@pytest.fixture
def shop(agent):
    cus = factories.CustomerFactory(email="mika@example.jp", name="Mika Tanaka")
    deliver("customer.created", cus, created=NOW - 100)
    contact = Identity.objects.get(value=cus["id"]).contact
    line = factories.line_user_id()
    ticket_actions.link_identity(actor=agent, contact=contact, kind="line", value=line)
    ticket_actions.link_identity(actor=agent, contact=contact, kind="phone", value="+81 90-8628-8424")
    card = {"type": "card", "card": {"brand": "visa", "last4": "5556", "exp_month": 1, "exp_year": 2030}}
    ch = factories.ChargeFactory(customer=cus["id"], amount=2500, currency="jpy", description="Order KR-10454: V60 dripper",
                                 metadata={"order_id": "KR-10454"}, payment_method_details=card)
    deliver("charge.succeeded", ch, created=NOW - 100)
    dp = factories.DisputeFactory(charge=ch["id"])
    deliver("charge.dispute.created", dp, created=NOW - 100)
    received = ticket_actions.receive_message(
        channel="email", sender="mika@example.jp", subject="Broken dripper",
        body_text="Hello, the ceramic dripper from order KR-10454 arrived cracked.")
    ja = factories.MessageFactory(ticket=factories.TicketFactory(requester=contact, subject="二重請求について"),
                                  body_text="注文 KR-10454 の代金が二重に請求されています。確認をお願いします。")
    return {"contact": contact, "cus": cus, "ch": ch, "dp": dp, "line": line, "ticket": received.message.ticket,
            "ja_ticket": ja.ticket}


def go(client, q, **headers):
    return client.get(reverse("search"), {"q": q}, **headers)


def page(client, user, q) -> str:
    client.force_login(user)
    response = go(client, q)
    assert response.status_code == 200, response.get("Location")
    return response.content.decode()


def group(html: str, key: str) -> str:
    """The HTML of one group of the results page ("" when the group is not there)."""
    start = html.find(f'class="card search-group search-{key}"')
    if start < 0:
        return ""
    return html[start:html.find("</section>", start)]


# --- each kind is found ---------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["dripper", "DRIPP", "ceramic drip", "二重", "請求されて", "確認"])
def test_message_text_is_found_in_english_and_japanese_and_by_part_of_a_word(client, agent, shop, q):
    messages = group(page(client, agent, q), "messages")
    assert "<mark>" in messages
    assert any(reverse("ticket", args=[t.number]) in messages for t in (shop["ticket"], shop["ja_ticket"]))


def test_a_japanese_word_finds_its_message_and_not_the_english_one(client, agent, shop):
    messages = group(page(client, agent, "二重"), "messages")
    assert reverse("ticket", args=[shop["ja_ticket"].number]) in messages
    assert reverse("ticket", args=[shop["ticket"].number]) not in messages
    assert "<mark>二重</mark>" in messages


@pytest.mark.parametrize("q", ["+81 90-8628-8424", "09086288424", "090-8628-8424", "+819086288424", "819086288424"])
def test_a_phone_is_found_in_any_format(client, agent, shop, q):
    contacts = group(page(client, agent, q), "contacts")
    assert reverse("customer", args=[shop["contact"].pk]) in contacts
    assert "<mark>+819086288424</mark>" in contacts


def test_phone_forms_are_e164_first():
    assert finder.phone_forms("+81 90-8628-8424")[0][0] == "+819086288424"
    assert finder.phone_forms("09086288424")[0][:2] == ["+819086288424", "09086288424"]
    assert finder.phone_forms("+1 415-555-2671")[0][0] == "+14155552671"
    assert finder.phone_forms("KR-10454") == ([], "")


def test_an_order_number_finds_the_payment_and_the_messages(client, agent, shop):
    html = page(client, agent, "KR-10454")
    payments = group(html, "payments")
    assert reverse("mirror_object", args=["payments", shop["ch"]["id"]]) in payments
    assert "<mark>KR-10454</mark>" in payments
    assert reverse("ticket", args=[shop["ticket"].number]) in group(html, "messages")


def test_an_order_number_kept_only_in_metadata_is_found(client, agent, shop):
    ch = factories.ChargeFactory(customer=shop["cus"]["id"], description="Subscription", metadata={"order_id": "KR-20001"})
    factories.mirror(ch)
    payments = group(page(client, agent, "kr-20001"), "payments")
    assert reverse("mirror_object", args=["payments", ch["id"]]) in payments and "<mark>KR-20001</mark>" in payments


def test_the_cards_last_four_finds_the_payment(client, agent, shop):
    payments = group(page(client, agent, "5556"), "payments")
    assert reverse("mirror_object", args=["payments", shop["ch"]["id"]]) in payments
    assert "<mark>5556</mark>" in payments


def test_an_amount_finds_the_payment(client, agent, shop):
    payments = group(page(client, agent, "¥2,500"), "payments")
    assert reverse("mirror_object", args=["payments", shop["ch"]["id"]]) in payments


def test_an_email_domain_finds_contacts_and_stripe_customers(client, agent, shop):
    html = page(client, agent, "example.jp")
    assert reverse("customer", args=[shop["contact"].pk]) in group(html, "contacts")
    assert "mika@<mark>example.jp</mark>" in group(html, "contacts")
    assert reverse("mirror_object", args=["customers", shop["cus"]["id"]]) in group(html, "customers")


def test_a_name_finds_the_contact_and_the_stripe_customer(client, agent, shop):
    html = page(client, agent, "mika tan")
    assert "<mark>Mika Tan</mark>aka" in group(html, "contacts")
    assert "<mark>Mika Tan</mark>aka" in group(html, "customers")


def test_a_ticket_subject_is_found(client, agent, shop):
    tickets = group(page(client, agent, "二重請求"), "tickets")
    assert reverse("ticket", args=[shop["ja_ticket"].number]) in tickets and "<mark>二重請求</mark>について" in tickets


# --- straight there --------------------------------------------------------------------------------


def _ticket_number(n: int) -> Ticket:
    return factories.TicketFactory(number=n, subject="Where is my parcel?")


def test_hash_number_goes_to_the_ticket(client, agent, finance, admin_user):
    ticket = _ticket_number(4)
    for user in (agent, finance, admin_user):
        client.force_login(user)
        assert go(client, "#4")["Location"] == reverse("ticket", args=[4]) == reverse("ticket", args=[ticket.number])


def test_a_bare_number_goes_to_the_ticket_when_nothing_else_matches(client, agent):
    _ticket_number(4)
    client.force_login(agent)
    assert go(client, "4")["Location"] == reverse("ticket", args=[4])


def test_a_bare_number_that_also_matches_a_payment_lists_both_ticket_first(client, agent, shop):
    _ticket_number(5556)
    html = page(client, agent, "5556")
    tickets = group(html, "tickets")
    assert tickets.index(reverse("ticket", args=[5556])) < tickets.find("</li>")
    assert "<mark>#5556</mark>" in tickets
    assert shop["ch"]["id"] in group(html, "payments")


def test_a_number_with_a_leading_zero_is_not_a_ticket_number(client, agent, shop):
    _ticket_number(7)
    card = {"type": "card", "card": {"brand": "visa", "last4": "0007"}}
    ch = factories.ChargeFactory(customer=shop["cus"]["id"], payment_method_details=card)
    factories.mirror(ch)
    html = page(client, agent, "0007")
    assert group(html, "tickets") == "" and "<mark>0007</mark>" in group(html, "payments")


def test_a_hash_number_that_does_not_exist_says_so(client, agent):
    html = page(client, agent, "#999999")
    assert "Nothing found for “#999999”" in html


@pytest.mark.parametrize("key", ["cus", "ch", "dp"])
def test_an_exact_stripe_id_goes_to_its_customer(client, agent, shop, key):
    client.force_login(agent)
    assert go(client, shop[key]["id"])["Location"] == reverse("customer", args=[shop["contact"].pk])


def test_an_exact_line_id_goes_to_its_customer(client, agent, shop):
    client.force_login(agent)
    assert go(client, shop["line"])["Location"] == reverse("customer", args=[shop["contact"].pk])


def test_stripe_object_without_a_contact_goes_to_the_object(client, finance):
    ch = factories.ChargeFactory(customer="cus_nobody")
    factories.mirror(ch)
    client.force_login(finance)
    assert go(client, ch["id"])["Location"] == reverse("mirror_object", args=["payments", ch["id"]])


def test_an_unknown_stripe_id_lands_on_the_filtered_list(client, finance):
    client.force_login(finance)
    assert go(client, "ch_missing")["Location"] == reverse("mirror_list", args=["payments"]) + "?q=ch_missing"


# --- the page --------------------------------------------------------------------------------------


def test_results_are_grouped_in_order_and_the_list_script_is_loaded(client, agent, shop):
    html = page(client, agent, "KR-10454")
    positions = [html.find(f"search-group search-{key}") for key in ("tickets", "messages", "contacts", "payments")]
    assert positions[1] > 0 and positions[3] > positions[1]
    assert 'src="/static/search.js"' in html and "data-search-results" in html
    assert "<script>" not in html  # the CSP allows no inline script


def test_newest_first(client, agent, shop):
    older = factories.MessageFactory(ticket=shop["ticket"], body_text="older dripper words")
    type(older).objects.filter(pk=older.pk).update(created=older.created.replace(year=2020))
    messages = group(page(client, agent, "dripper"), "messages")
    assert messages.index("ceramic") < messages.index("older")


def test_highlighting_escapes_the_matched_text(client, agent, shop):
    factories.MessageFactory(ticket=shop["ticket"], body_text="<script>alert(1)</script> & <b>dripper</b>")
    messages = group(page(client, agent, "<b>dripper"), "messages")
    assert "<mark>&lt;b&gt;dripper</mark>&lt;/b&gt;" in messages and "<script>alert" not in messages
    assert "&amp;" in messages


def test_highlight_wraps_each_match_and_escapes_the_rest():
    assert str(finder.highlight("a<b A<B", "a<b")) == "<mark>a&lt;b</mark> <mark>A&lt;B</mark>"
    assert str(finder.highlight("R&D", "")) == "R&amp;D"


def test_nothing_found_says_what_was_searched(client, agent, finance):
    html = page(client, agent, "nobody at all")
    assert "Nothing found for “nobody at all”" in html
    for label in ("Tickets", "Messages", "Contacts", "Payments", "Stripe customers"):
        assert f"<li>{label}</li>" in html


def test_the_htmx_request_gets_the_results_alone(client, agent, shop):
    client.force_login(agent)
    response = go(client, "dripper", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "data-search-results" in html and "<html" not in html


# --- who sees what ----------------------------------------------------------------------------------


def test_payments_only_for_those_who_may_view_charges(client, agent, shop):
    from django.contrib.auth.models import Permission

    for user_perm in ("view_charge", "view_customer"):
        agent.groups.first().permissions.remove(Permission.objects.get(codename=user_perm, content_type__app_label="payments"))
    agent = type(agent).objects.get(pk=agent.pk)  # permissions are cached on the user
    html = page(client, agent, "KR-10454")
    assert group(html, "payments") == "" and shop["ch"]["id"] not in html
    assert group(html, "messages")
    assert "<li>Payments</li>" not in page(client, agent, "nobody at all")


@pytest.mark.parametrize("role", ["finance", "admin_user"])
def test_finance_and_admin_find_payments_and_messages(client, request, shop, role):
    html = page(client, request.getfixturevalue(role), "KR-10454")
    assert shop["ch"]["id"] in group(html, "payments") and group(html, "messages")


def test_no_role_is_refused(client, no_role, shop):
    client.force_login(no_role)
    for q in ("KR-10454", "#4", shop["ch"]["id"], ""):
        assert go(client, q).status_code == 403


def test_anonymous_is_sent_to_log_in(client):
    assert go(client, "mika")["Location"].startswith("/login/")


@pytest.mark.parametrize("q", ["²", "#²", "¹²³", "٣", "#٣", "１２３", "#99999999999999999999999", "#-1"])
def test_digits_that_are_not_ascii_are_not_ticket_numbers(client, agent, shop, q):
    """str.isdigit() accepts "²", which int() refuses: such a query is searched as text."""
    client.force_login(agent)
    assert go(client, q).status_code == 200


# --- words of one or two characters (the short-gram index of tickets/0009) -------------------------


@pytest.mark.parametrize("probe", [True, False])
def test_a_short_word_finds_the_newest_matches_first_by_either_path(probe, monkeypatch):
    import datetime as dt

    from django.utils import timezone

    from tickets.models import Message

    ticket = factories.TicketFactory()
    start = timezone.now() - dt.timedelta(days=1)
    matching = []
    for i in range(finder.GROUP_LIMIT + 5):
        m = factories.MessageFactory(ticket=ticket, body_text=f"{i} 件の返金をお願いします" if i % 2 else f"{i} shipping")
        Message.objects.filter(pk=m.pk).update(created=start + dt.timedelta(minutes=i))
        if i % 2:
            matching.append(m.pk)
    if not probe:  # the probe finds too few among the newest rows: every match through the index
        monkeypatch.setattr(finder, "SHORT_PROBE", 1)
    newest_first = list(reversed(matching))[: finder.GROUP_LIMIT]
    assert finder.short_ids(Message, "body_text", "返金") == newest_first
    assert finder.short_ids(Message, "body_text", "返") == newest_first  # one character
    assert finder.short_ids(Message, "body_text", "銀河") == []


def test_a_short_word_with_like_wildcards_matches_them_literally():
    from tickets.models import Message

    ticket = factories.TicketFactory()
    literal = factories.MessageFactory(ticket=ticket, body_text="割引は５%で")
    factories.MessageFactory(ticket=ticket, body_text="割引は５０で")
    assert finder.short_ids(Message, "body_text", "５%") == [literal.pk]


def test_a_short_word_finds_ticket_subjects_and_contact_names(client, agent, shop):
    html = page(client, agent, "二重")
    assert reverse("ticket", args=[shop["ja_ticket"].number]) in group(html, "tickets")
    contact = factories.ContactFactory(name="田中 美香")
    assert reverse("customer", args=[contact.pk]) in group(page(client, agent, "田中"), "contacts")


def test_a_short_word_finds_every_payment_and_stripe_customer_not_only_recent_ones(client, finance):
    """payments 0009: a one- or two-character word goes by the short-gram indexes on a charge's
    description and metadata and a Stripe customer's name, however old the row."""
    old = factories.ChargeFactory(description="煎茶 200g", amount=1200, currency="jpy", created=NOW - 10**7)
    deliver("charge.succeeded", old, created=NOW - 10**7)
    tagged = factories.ChargeFactory(description="Order KR-1", amount=1300, currency="jpy", created=NOW - 10,
                                     metadata={"gift_note": "お茶の詰め合わせ"})
    deliver("charge.succeeded", tagged, created=NOW - 10)
    other = factories.ChargeFactory(description="Coffee beans", amount=1400, currency="jpy", created=NOW - 5)
    deliver("charge.succeeded", other, created=NOW - 5)
    payments = group(page(client, finance, "煎茶"), "payments")
    assert old["id"] in payments and other["id"] not in payments
    assert "<mark>煎茶</mark>" in payments
    assert tagged["id"] in group(page(client, finance, "お茶"), "payments")  # found in the metadata
    customer = factories.CustomerFactory(name="山田 花子", created=NOW - 10**7)
    deliver("customer.created", customer, created=NOW - 10**7)
    assert customer["id"] in group(page(client, finance, "山田"), "customers")
    # Three characters or more: the trigram index, as before.
    assert old["id"] in group(page(client, finance, "煎茶 2"), "payments")


# --- phones stored as E.164 -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["090-8628-8424", "09086288424", "+81 90 8628 8424", "+81-90-8628-8424"])
def test_a_new_phone_identity_is_stored_as_e164(raw, agent):
    contact = factories.ContactFactory()
    ticket_actions.link_identity(actor=agent, contact=contact, kind="phone", value=raw)
    assert Identity.objects.get(contact=contact, kind="phone").value == "+819086288424"


def test_phone_region_comes_from_the_setting(settings):
    from tickets.identity import normalise_phone

    settings.PHONE_DEFAULT_REGION = "US"
    assert normalise_phone("(415) 555-2671") == "+14155552671"
    settings.PHONE_DEFAULT_REGION = "JP"
    assert normalise_phone("03-1234-5678") == "+81312345678"


def test_a_phone_reads_internationally_where_a_contact_has_nothing_else():
    from tickets.identity import contact_display_name, format_phone

    assert format_phone("+819086288424") == "+81 90-8628-8424"
    assert format_phone("12345") == "12345"
    assert contact_display_name("", "", [("phone", "+819086288424")]) == "+81 90-8628-8424"


@pytest.mark.parametrize("q", ["090-8628-8424", "+819086288424"])
def test_phones_stored_either_way_are_both_found(client, agent, q):
    e164 = factories.IdentityFactory(kind="phone", value="+819086288424")
    national = factories.IdentityFactory(kind="phone", value="08011112222")  # stored before E.164
    assert reverse("customer", args=[e164.contact_id]) in group(page(client, agent, q), "contacts")
    assert reverse("customer", args=[national.contact_id]) in group(page(client, agent, "+81 80-1111-2222"),
                                                                    "contacts")


def test_the_migration_rewrites_stored_phones_to_e164_unless_taken():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("tickets.migrations.0009_search_short_grams_phone_e164")
    national = factories.IdentityFactory(kind="phone", value="09011112222")
    clash = factories.IdentityFactory(kind="phone", value="08033334444")
    factories.IdentityFactory(kind="phone", value="+818033334444")
    odd = factories.IdentityFactory(kind="phone", value="123456")
    migration.phones_to_e164(apps, None)
    migration.phones_to_e164(apps, None)  # again: nothing changes
    national.refresh_from_db(), clash.refresh_from_db(), odd.refresh_from_db()
    assert (national.value, clash.value) == ("+819011112222", "08033334444")
    assert odd.value == "123456"  # not a possible number: kept as it was


def test_the_search_box_says_what_can_be_searched(client, agent):
    client.force_login(agent)
    html = client.get(reverse("search"), {"q": "x"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'placeholder="Search tickets, messages, customers, orders, phones…"' in html
