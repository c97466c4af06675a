"""The notifications page (console/views/notifications.py) and the bell in the top bar:
everyone signed in reads and marks read their own, nobody sees another's, anonymous visitors
are sent to log in."""

import re
from urllib.parse import unquote

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from console import actions
from console.models import Notification, UserPreference
from tests import factories
from tests.conftest import ROLE_FIXTURES

pytestmark = pytest.mark.django_db


def _notify(user, text, link=""):
    return actions.notify_people(actor=None, users=[user], text=text, link=link)


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(reverse("notifications"))
    assert response.status_code == 302 and response["Location"] == "/login/?next=/notifications/"
    response = client.post(reverse("notifications_read"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("role", [*ROLE_FIXTURES, "no_role"])
def test_everyone_reads_their_own_and_nobody_elses(request, client, role):
    user = request.getfixturevalue(role)
    other = factories.UserFactory(username="someone-else")
    _notify(user, "Yours: charge ch_1 was disputed", link="/tickets/12/")
    _notify(other, "Not yours: a secret")
    client.force_login(user)
    response = client.get(reverse("notifications"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Yours: charge ch_1 was disputed" in html and 'href="/tickets/12/"' in html
    assert "Not yours" not in html
    assert "1 unread" in html and "Mark all read" in html


def test_newest_first_unread_marked_with_their_time(client, agent):
    _notify(agent, "Older")
    actions.mark_notifications_read(actor=agent, user=agent)
    _notify(agent, "Newer")
    client.force_login(agent)
    html = client.get(reverse("notifications")).content.decode()
    assert html.index("Newer") < html.index("Older")
    assert html.count('<tr class="unread">') == 1 and html.index('<tr class="unread">') < html.index("Newer")
    assert html.count("<time datetime=") == 2


def test_times_are_in_the_readers_language_and_zone(client, agent):
    UserPreference.objects.create(user=agent, language="ja", time_zone="Asia/Tokyo")
    _notify(agent, "Hello")
    client.force_login(agent)
    html = client.get(reverse("notifications")).content.decode()
    assert "日" in html.split("<time", 1)[1].split("</time>", 1)[0]  # 12月3日 9:48
    assert "JST" in html.split("<time", 1)[1].split(">", 1)[0]  # the tooltip names the zone


def test_htmx_gets_the_list_and_scrolling_gets_the_next_rows(client, agent):
    for n in range(51):
        Notification.objects.create(recipient=agent, text=f"Note {n:02d}")
    client.force_login(agent)
    page = client.get(reverse("notifications"), HTTP_HX_REQUEST="true")
    html = page.content.decode()
    assert page.status_code == 200 and "<html" not in html and 'id="notification-list"' in html
    assert html.count("<tr class=\"unread\">") == 50 and "Note 50" in html and "Note 00" not in html
    cursor = unquote(re.search(r'href="/notifications/\?after=([^"]+)"', html).group(1))
    more = client.get(reverse("notifications"), {"after": cursor}, HTTP_HX_REQUEST="true").content.decode()
    assert "Note 00" in more and "Note 01" not in more and 'id="notification-list"' not in more
    # A cursor that isn't one: no rows, no error.
    assert client.get(reverse("notifications"), {"after": "garbage"}).status_code == 200


def test_mark_all_read_marks_only_ones_own(client, agent, finance):
    _notify(agent, "One")
    _notify(agent, "Two")
    _notify(finance, "Finance's")
    client.force_login(agent)
    response = client.post(reverse("notifications_read"))
    assert response.status_code == 302 and response["Location"] == reverse("notifications")
    assert not Notification.objects.filter(recipient=agent, read_at__isnull=True).exists()
    assert Notification.objects.get(recipient=finance).read_at is None
    assert AuditEntry.objects.get(action="notifications.read").actor == agent
    html = client.get(reverse("notifications")).content.decode()
    assert "Marked 2 notifications read." in html and "All read" in html and "Mark all read" not in html


def test_mark_all_read_is_post_only(client, agent):
    _notify(agent, "One")
    client.force_login(agent)
    assert client.get(reverse("notifications_read")).status_code == 405
    assert Notification.objects.get().read_at is None


def test_mark_all_read_needs_the_csrf_token(agent):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent)
    _notify(agent, "One")
    assert strict.post(reverse("notifications_read")).status_code == 403
    assert Notification.objects.get().read_at is None


@pytest.mark.parametrize("role", [*ROLE_FIXTURES, "no_role"])
def test_the_bell_counts_ones_own_unread(request, client, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    html = client.get(reverse("account")).content.decode()
    assert 'class="bell"' in html and "bell-count" not in html  # nothing unread: no count
    _notify(user, "One")
    _notify(user, "Two")
    _notify(factories.UserFactory(username="someone-else"), "Not counted")
    html = client.get(reverse("account")).content.decode()
    assert '<span class="bell-count" aria-hidden="true">2</span>' in html
    assert 'aria-label="Notifications: 2 unread"' in html
    client.post(reverse("notifications_read"))
    assert "bell-count" not in client.get(reverse("account")).content.decode()


def test_the_bell_is_one_query(client, agent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _notify(agent, "One")
    client.force_login(agent)
    client.get(reverse("account"))  # the session's preferences are cached from here on
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("account"))
    counts = [q["sql"] for q in queries if "console_notification" in q["sql"]]
    assert len(counts) == 1 and "COUNT(" in counts[0].upper()


def test_the_bell_shows_99_plus(client, agent):
    Notification.objects.bulk_create([Notification(recipient=agent, text="x") for _ in range(120)])
    client.force_login(agent)
    assert '<span class="bell-count" aria-hidden="true">99+</span>' in client.get(reverse("account")).content.decode()


def test_a_link_says_what_it_opens(client, agent):
    _notify(agent, "New chargeback", link="/tickets/17/")
    _notify(agent, "Weekly digest", link="/workflows/runs/")
    client.force_login(agent)
    html = client.get(reverse("notifications")).content.decode()
    assert '<a href="/tickets/17/">Ticket #17</a>' in html and '<a href="/workflows/runs/">Open</a>' in html
