"""The inbox list: views (mine, unassigned, team, all), filters, SLA order, keyset pages,
navigation counts, HTMX fragments and bulk actions. Each view is checked for an agent, the
roles the role table lets in (finance, admin), a user without a tickets role, and anonymous.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEntry
from tickets.models import Ticket
from tests import factories

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def visitor(db):
    """Logged in, in no role: the wrong role for every tickets page."""
    return factories.UserFactory(username="visitor")


@pytest.fixture
def world(agent):
    """Two teams and tickets spread over the views, with SLA deadlines an hour apart."""
    now = timezone.now()
    support = factories.TeamFactory(name="Support", slug="support")
    billing = factories.TeamFactory(name="Billing", slug="billing")
    ken = factories.UserFactory(username="ken", role="agent", first_name="Ken")

    def ticket(subject, hours, **kw):
        return factories.TicketFactory(subject=subject, sla_due=now + dt.timedelta(hours=hours), **kw)

    t = {
        "mine_late": ticket("Mine, overdue", -2, assignee=agent, team=support, priority="urgent"),
        "mine": ticket("Mine, later", 5, assignee=agent, channel="line", tags=["vip"]),
        "free_soon": ticket("Unassigned, soon", 1, team=billing, priority="high", tags=["billing"]),
        "free_later": ticket("Unassigned, later", 30, channel="line"),
        "kens": ticket("Ken's", 3, assignee=ken, team=support),
        "pending": ticket("Waiting on customer", 8, status="pending"),
        "solved": factories.TicketFactory(subject="Solved one", status="solved", sla_due=None),
    }
    return {"tickets": t, "support": support, "billing": billing, "ken": ken}


def subjects(response) -> list[str]:
    return re.findall(r'class="subject"[^>]*>([^<]+)</a>', response.content.decode().replace("&#x27;", "'"))


# --- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/tickets/", "/tickets/mine/", "/tickets/unassigned/", "/tickets/all/",
                                  "/tickets/team-support/"])
def test_anonymous_is_sent_to_login(client, world, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("path", ["/tickets/", "/tickets/mine/", "/tickets/all/", "/tickets/team-support/"])
def test_a_user_without_a_tickets_role_is_refused(client, world, visitor, path):
    client.force_login(visitor)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("role", ["agent", "finance", "admin_user"])
def test_roles_that_work_tickets_see_the_inbox(client, world, role, request):
    client.force_login(request.getfixturevalue(role))
    response = client.get("/tickets/all/")
    assert response.status_code == 200
    assert "Unassigned, soon" in subjects(response)


def test_inbox_home_goes_to_my_tickets(client, agent):
    client.force_login(agent)
    response = client.get("/tickets/")
    assert response.status_code == 302 and response["Location"] == "/tickets/mine/"


def test_unknown_view_is_404(client, world, agent):
    client.force_login(agent)
    assert client.get("/tickets/team-nobody/").status_code == 404
    assert client.get("/tickets/everything/").status_code == 404


def test_the_shell_links_the_inbox_only_for_ticket_roles(client, world, agent, visitor):
    client.force_login(agent)
    assert 'href="/tickets/mine/"' in client.get("/").content.decode()
    client.force_login(visitor)
    assert 'href="/tickets/mine/"' not in client.get("/").content.decode()


# --- what each view holds, in SLA order --------------------------------------------------------


def test_views_hold_their_tickets_soonest_deadline_first(client, world, agent):
    client.force_login(agent)
    assert subjects(client.get("/tickets/mine/")) == ["Mine, overdue", "Mine, later"]
    assert subjects(client.get("/tickets/unassigned/")) == ["Unassigned, soon", "Waiting on customer", "Unassigned, later"]
    assert subjects(client.get("/tickets/team-support/")) == ["Mine, overdue", "Ken's"]
    assert subjects(client.get("/tickets/all/")) == [
        "Mine, overdue", "Unassigned, soon", "Ken's", "Mine, later", "Waiting on customer", "Unassigned, later",
    ]


def test_overdue_and_soon_deadlines_are_marked(client, world, agent):
    client.force_login(agent)
    html = client.get("/tickets/all/").content.decode()
    assert re.search(r'class="due due-late"[^>]*>2h late<', html) or re.search(r'class="due due-late"[^>]*>1h 59m late<', html)
    assert 'class="due due-soon"' in html  # due within the hour


def test_filters_by_status_channel_priority_and_tag(client, world, agent):
    client.force_login(agent)
    assert subjects(client.get("/tickets/all/?status=pending")) == ["Waiting on customer"]
    assert subjects(client.get("/tickets/all/?status=solved")) == ["Solved one"]
    assert len(subjects(client.get("/tickets/all/?status=any"))) == 7
    assert subjects(client.get("/tickets/all/?channel=line")) == ["Mine, later", "Unassigned, later"]
    assert subjects(client.get("/tickets/all/?priority=urgent")) == ["Mine, overdue"]
    assert subjects(client.get("/tickets/all/?tag=billing")) == ["Unassigned, soon"]
    assert subjects(client.get("/tickets/mine/?channel=line&tag=vip")) == ["Mine, later"]
    # Nonsense values fall back to the defaults instead of failing.
    assert len(subjects(client.get("/tickets/all/?status=bogus&channel=fax&priority=9"))) == 6


def test_sort_by_recently_updated(client, world, agent):
    client.force_login(agent)
    newest = world["tickets"]["free_later"]
    Ticket.objects.filter(pk=newest.pk).update(updated=timezone.now() + dt.timedelta(minutes=5))
    assert subjects(client.get("/tickets/all/?sort=updated"))[0] == "Unassigned, later"


def test_navigation_counts_unsolved_tickets_per_view(client, world, agent):
    client.force_login(agent)
    html = client.get("/tickets/all/").content.decode()
    counts = dict(re.findall(r'<span>([^<]+)</span><span class="count"[^>]*>(\d+)</span>', html))
    assert counts == {"My tickets": "2", "Unassigned": "3", "Billing": "1", "Support": "2", "All tickets": "6"}


def test_tickets_without_a_deadline_come_last(client, world, agent):
    factories.TicketFactory(subject="No deadline", sla_due=None, first_response_due=None)
    Ticket.objects.filter(subject="No deadline").update(sla_due=None)
    client.force_login(agent)
    assert subjects(client.get("/tickets/unassigned/"))[-1] == "No deadline"


# --- pages and fragments ------------------------------------------------------------------------


def _next_url(html: str) -> str:
    match = re.search(r'<tr class="more" hx-get="([^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else ""


@pytest.mark.parametrize("sort", ["due", "updated"])
def test_keyset_pages_cover_every_ticket_once(client, agent, sort):
    now = timezone.now()
    # Ties on the deadline (five share each hour) and some without one: the id breaks ties.
    for i in range(60):
        factories.TicketFactory(subject=f"T{i:02d}", sla_due=None if i % 13 == 0 else now + dt.timedelta(hours=i // 5))
    Ticket.objects.filter(subject__in=[f"T{i:02d}" for i in range(0, 60, 13)]).update(sla_due=None)
    client.force_login(agent)
    seen, pages = [], 0
    response = client.get(f"/tickets/all/?n=25&sort={sort}")
    seen += subjects(response)
    url = _next_url(response.content.decode())
    while url:
        pages += 1
        response = client.get(url, **HX)
        html = response.content.decode()
        assert "<html" not in html and "<tr" in html  # the rows only
        seen += subjects(response)
        url = _next_url(html)
    assert pages == 2
    assert sorted(seen) == sorted(f"T{i:02d}" for i in range(60))
    assert len(seen) == len(set(seen))


def test_a_tampered_cursor_is_ignored(client, world, agent):
    client.force_login(agent)
    response = client.get("/tickets/all/?after=not-a-cursor!!")
    assert response.status_code == 200 and len(subjects(response)) == 6


def test_filter_form_gets_the_table_fragment(client, world, agent):
    client.force_login(agent)
    response = client.get("/tickets/all/?channel=line", HTTP_HX_TARGET="inbox-table", **HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="inbox-table"')
    assert "<html" not in html
    assert subjects(response) == ["Mine, later", "Unassigned, later"]


def test_queries_do_not_grow_with_the_page_size(client, agent):
    support = factories.TeamFactory(name="Support", slug="support")
    for i in range(110):
        contact = factories.ContactFactory(name="" if i % 2 else f"Person {i}")
        factories.IdentityFactory(contact=contact)
        factories.TicketFactory(subject=f"Q{i}", requester=contact, assignee=agent if i % 3 else None,
                                team=support if i % 4 else None, tags=["a", "b"] if i % 5 else [])
    client.force_login(agent)
    client.get("/tickets/all/")  # the shared navigation counts are counted once, then cached
    counts = {}
    for size in (25, 50, 100):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/tickets/all/?n={size}")
        assert len(subjects(response)) == size
        counts[size] = len(queries)
    assert counts[25] == counts[50] == counts[100], counts
    with CaptureQueriesContext(connection) as queries:
        client.get(_next_url(response.content.decode()), **HX)
    assert len(queries) < counts[100]  # the scroll fragment skips the navigation and filters


# --- bulk actions ---------------------------------------------------------------------------------


def _bulk(client, tickets, op, **data):
    return client.post("/tickets/bulk/", {"view": "all", "ticket": [t.pk for t in tickets], "op": op, **data}, **HX)


def test_bulk_assign_to_me_moves_tickets_and_updates_counts(client, world, agent):
    client.force_login(agent)
    free = [world["tickets"]["free_soon"], world["tickets"]["free_later"]]
    response = _bulk(client, free, "assign", assign_to="me")
    assert response.status_code == 200
    assert set(Ticket.objects.filter(pk__in=[t.pk for t in free]).values_list("assignee", flat=True)) == {agent.pk}
    html = response.content.decode()
    assert "Assigned 2 tickets." in html
    assert 'id="inbox-nav" hx-swap-oob="true"' in html
    assert re.search(r"<span>My tickets</span><span[^>]*>4</span>", html)
    assert re.search(r"<span>Unassigned</span><span[^>]*>1</span>", html)  # the shared counts too
    assert AuditEntry.objects.filter(action="ticket.assign", actor=agent).count() == 2


def test_bulk_assign_to_another_agent_and_to_a_team(client, world, agent):
    client.force_login(agent)
    ken, billing = world["ken"], world["billing"]
    t = world["tickets"]["free_later"]
    _bulk(client, [t], "assign", assign_to=str(ken.pk))
    _bulk(client, [t], "team", team=str(billing.pk))
    t.refresh_from_db()
    assert (t.assignee_id, t.team_id) == (ken.pk, billing.pk)


def test_bulk_tag_and_solve_and_close(client, world, agent):
    client.force_login(agent)
    a, b = world["tickets"]["free_soon"], world["tickets"]["kens"]
    _bulk(client, [a, b], "tag", add_tag="Refund request")
    assert set(a.tags.values_list("name", flat=True)) == {"billing", "refund-request"}
    _bulk(client, [a], "solved")
    _bulk(client, [b], "closed")
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.status, b.status) == ("solved", "closed")
    assert a.sla_due is None


def test_bulk_errors_are_shown_and_nothing_changes(client, world, agent):
    client.force_login(agent)
    open_one = world["tickets"]["free_soon"]
    response = _bulk(client, [open_one], "tag", add_tag="")
    assert "Type a tag to add." in response.content.decode()
    response = _bulk(client, [], "solved")
    assert "Select some tickets first." in response.content.decode()
    assert _bulk(client, [open_one], "explode").status_code == 400


def test_bulk_reopening_a_closed_ticket_changes_nothing(client, world, agent):
    client.force_login(agent)
    closed = factories.TicketFactory(subject="Closed", status="closed", sla_due=None)
    open_one = world["tickets"]["free_soon"]
    response = _bulk(client, [open_one, closed], "solved")
    assert "closed and cannot be reopened" in response.content.decode()
    open_one.refresh_from_db()
    assert open_one.status == "open"  # one transaction: all or nothing


def test_bulk_without_htmx_redirects_back_with_the_filters(client, world, agent):
    client.force_login(agent)
    response = client.post("/tickets/bulk/", {"view": "unassigned", "channel": "line", "op": "solved",
                                              "ticket": [world["tickets"]["free_later"].pk]})
    assert response.status_code == 302 and response["Location"] == "/tickets/unassigned/?channel=line"


def test_bulk_refuses_the_wrong_role_and_anonymous(client, world, visitor):
    t = world["tickets"]["free_soon"]
    response = client.post("/tickets/bulk/", {"view": "all", "ticket": [t.pk], "op": "solved"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    client.force_login(visitor)
    assert _bulk(client, [t], "solved").status_code == 403
    t.refresh_from_db()
    assert t.status == "open"


def test_finance_may_bulk_assign(client, world, finance):
    """The role table gives finance ticket work (dispute tickets) except merging contacts."""
    client.force_login(finance)
    t = world["tickets"]["free_soon"]
    assert _bulk(client, [t], "assign", assign_to="me").status_code == 200
    t.refresh_from_db()
    assert t.assignee_id == finance.pk


def _b64(value) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("after", [
    _b64(["2024-02-30T00:00:00+00:00", 1]), _b64(["0001-01-01T00:00:00+14:00", 1]),
    _b64(["9999-12-31T23:59:59-12:00", 1]), _b64([None, 1]), _b64(["2024-01-01T00:00:00+00:00", 2**70]),
    _b64(["2024-01-01T00:00:00+00:00", "1"]), _b64("[[[["), "2024-02-30T00:00:00|1",
])
@pytest.mark.parametrize("view", ["all", "mine", "unassigned", "team-support"])
@pytest.mark.parametrize("sort", ["due", "updated"])
def test_a_cursor_naming_an_impossible_date_is_the_first_page(client, world, agent, visitor, after, view, sort):
    assert client.get(f"/tickets/{view}/", {"after": after})["Location"].startswith("/login/")
    client.force_login(visitor)
    assert client.get(f"/tickets/{view}/", {"after": after}).status_code == 403
    client.force_login(agent)
    for extra in ({}, HX):
        response = client.get(f"/tickets/{view}/", {"after": after, "sort": sort}, **extra)
        assert response.status_code == 200
