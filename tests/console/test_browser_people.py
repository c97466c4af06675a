"""In a real browser: an admin adds a person from /people/ (role and team chosen there, not in
Django admin); the emailed link lets the new agent set a password and sign in, and the agent's
home is their queue. Then the admin deactivates them and the open session ends. Screenshots
go to screenshots/ (not in git)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import mail

from tests import factories
from tests.helpers import chromium_tab, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture
def team(settings, eager_tasks):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http on loopback
    settings.DEBUG = True
    factories.UserFactory(username="yui", role="admin", first_name="Yui", last_name="Tanaka")
    return factories.TeamFactory(name="Japan", slug="japan")


@pytest.fixture
def browser_pages(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium_tab(1440, 900) as admin_tab:
        # A second browser context: the new person's own cookies, beside the admin's.
        person_tab = admin_tab.context.browser.new_page(viewport={"width": 1440, "height": 900})
        person_tab.errors = []
        person_tab.on("pageerror", lambda exc: person_tab.errors.append(str(exc)))
        yield admin_tab, person_tab


def test_an_admin_adds_a_person_who_signs_in_and_is_later_deactivated(live_server, browser_pages, team):
    from playwright.sync_api import expect

    SHOTS.mkdir(exist_ok=True)
    admin, person = browser_pages
    sign_in(admin, live_server.url, "yui", "/people/")
    admin.get_by_role("link", name="Add a person").click()
    admin.fill("input[name=username]", "haruka")
    admin.fill("input[name=first_name]", "Haruka")
    admin.fill("input[name=last_name]", "Kimura")
    admin.fill("input[name=email]", "haruka@example.jp")
    admin.select_option("select[name=role]", "agent")
    admin.get_by_label("Japan").check()
    admin.get_by_role("button", name="Add and send the link").click()
    expect(admin.locator(".flash, .messages").first).to_contain_text("haruka was added")
    admin.screenshot(path=str(SHOTS / "person-added.png"))
    admin.goto(f"{live_server.url}/people/")
    row = admin.locator("tr", has_text="haruka@example.jp")
    expect(row).to_contain_text("Japan")
    admin.screenshot(path=str(SHOTS / "people.png"))

    # Haruka follows the emailed link, sets a password, signs in: her home is her queue.
    [email] = mail.outbox
    link = re.search(r"https?://\S+/account/password/\S+/", email.body).group(0)
    person.goto(live_server.url + "/" + link.split("://", 1)[1].split("/", 1)[1])
    person.fill("input[name=new_password1]", "A-long-passphrase-2026")
    person.fill("input[name=new_password2]", "A-long-passphrase-2026")
    person.get_by_role("button", name="Set password").click()
    sign_in(person, live_server.url, "haruka", password="A-long-passphrase-2026")
    expect(person.locator(".user-role, .topbar")).to_contain_text("Haruka Kimura")

    # Deactivated by the admin: her open session ends at the next click.
    admin.locator("tr", has_text="haruka@example.jp").get_by_role("link").first.click()
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.get_by_role("button", name=re.compile("Deactivate")).click()
    expect(admin.locator(".subtitle")).to_contain_text("Deactivated")
    person.reload()
    assert "/login/" in person.url
    assert admin.errors == [] and admin.csp == [] and person.errors == []
