"""After "Solve" (the button, and its shortcut e, which clicks it): the person's setting says
whether they go on to the next ticket of the view they came from, or stay on the ticket."""

from __future__ import annotations

import pytest

from console.models import UserPreference
from tickets import actions, selectors
from tickets.models import Ticket
from tests import factories

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def inbound(n: int) -> Ticket:
    return actions.receive_message(channel="email", sender=f"c{n}@example.com", subject=f"Question {n}",
                                   body_text="Hello", channel_message_id=f"{factories.stripe_id('m')}@x").message.ticket


@pytest.fixture
def three(db):
    return [inbound(n) for n in range(3)]


def solve(client, ticket, *, advance=True, htmx=True, view="all"):
    data = {"field": "status", "value": "solved", "from": view, "version": ticket.version}
    if advance:
        data["advance"] = "1"
    return client.post(f"/tickets/{ticket.number}/update/", data, **(HX if htmx else {}))


def prefer(user, value):
    UserPreference.objects.update_or_create(user=user, defaults={"after_solve": value})


# --- the selector ---------------------------------------------------------------------------------


def test_next_in_view_is_the_following_ticket_in_the_views_order(three, agent):
    first, middle, last = three
    assert selectors.next_in_view(agent, "all", middle) == last.number
    assert selectors.next_in_view(agent, "all", first) == middle.number


def test_the_last_ticket_goes_round_to_the_first(three, agent):
    assert selectors.next_in_view(agent, "all", three[-1]) == three[0].number


def test_a_view_with_no_other_ticket_has_no_next(agent):
    only = inbound(9)
    assert selectors.next_in_view(agent, "all", only) is None
    assert selectors.next_in_view(agent, "mine", only) is None  # nothing is assigned to the agent
    assert selectors.next_in_view(agent, "no-such-view", only) is None


def test_next_in_view_keeps_to_the_view(three, agent):
    actions.assign(actor=agent, ticket=three[0], assignee=agent)
    actions.assign(actor=agent, ticket=three[2], assignee=agent)
    assert selectors.next_in_view(agent, "mine", three[0]) == three[2].number
    assert selectors.next_in_view(agent, "unassigned", three[0]) == three[1].number


# --- solving, with each setting -----------------------------------------------------------------


def test_solving_goes_to_the_next_ticket_by_default(client, three, agent):
    client.force_login(agent)
    response = solve(client, three[1])
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/tickets/{three[2].number}/?from=all"
    assert Ticket.objects.get(pk=three[1].pk).status == "solved"


def test_solving_without_htmx_redirects_to_the_next_ticket(client, three, agent):
    client.force_login(agent)
    response = solve(client, three[1], htmx=False)
    assert response.status_code == 302 and response["Location"] == f"/tickets/{three[2].number}/?from=all"


def test_the_last_ticket_of_a_view_goes_back_to_the_list(client, agent):
    only = inbound(5)
    client.force_login(agent)
    response = solve(client, only)
    assert response["HX-Redirect"] == "/tickets/all/"


def test_stay_keeps_the_agent_on_the_ticket(client, three, agent):
    prefer(agent, "stay")
    client.force_login(agent)
    response = solve(client, three[1])
    assert response.status_code == 200 and "HX-Redirect" not in response
    assert 'id="props"' in response.content.decode()
    assert Ticket.objects.get(pk=three[1].pk).status == "solved"


def test_the_status_select_never_moves_on(client, three, agent):
    client.force_login(agent)
    response = solve(client, three[1], advance=False)
    assert response.status_code == 200 and "HX-Redirect" not in response


@pytest.mark.parametrize("role", ["finance", "admin_user"])
def test_other_ticket_roles_move_on_too(client, three, role, request):
    client.force_login(request.getfixturevalue(role))
    assert solve(client, three[0])["HX-Redirect"] == f"/tickets/{three[1].number}/?from=all"


def test_a_user_without_a_tickets_role_cannot_solve(client, three, no_role):
    client.force_login(no_role)
    assert solve(client, three[0]).status_code == 403
    assert Ticket.objects.get(pk=three[0].pk).status == "open"


def test_anonymous_is_sent_to_login(client, three):
    response = solve(client, three[0], htmx=False)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_solve_button_asks_to_move_on(client, three, agent):
    client.force_login(agent)
    html = client.get(f"/tickets/{three[0].number}/?from=all").content.decode()
    assert '"advance": "1"' in html and 'data-shortcut="solve"' in html
