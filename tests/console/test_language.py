"""The console's language per person: chosen at /account/, the browser's until chosen,
audited, kept with the time zone, and never another person's to change."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from audit.models import AuditEntry
from console import actions
from console.models import UserPreference
from tests.conftest import ROLE_FIXTURES

pytestmark = pytest.mark.django_db


def _lang(response) -> str:
    return response["Content-Language"]


def test_anonymous_reads_the_login_page_in_the_browsers_language(client):
    assert _lang(client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5")) == "ja"
    assert _lang(client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")) == "en"
    # A language the console does not speak falls back to English.
    assert _lang(client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr-FR")) == "en"
    response = client.post(reverse("account"), {"language": "ja"})
    assert response.status_code == 302 and not UserPreference.objects.exists()


@pytest.mark.parametrize("role", [*ROLE_FIXTURES, "no_role"])
def test_everyone_chooses_their_own_language_and_it_is_audited(request, client, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    page = client.get(reverse("account"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and "Your browser's language (English)" in page.content.decode()
    response = client.post(reverse("account"), {"language": "ja"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert UserPreference.objects.get(user=user).language == "ja"
    audit = AuditEntry.objects.get(action="user.language")
    assert audit.actor == user and audit.details == {"language": "ja", "previous": ""}
    # The next page is Japanese at once, whatever the browser says, and says so in Japanese.
    page = client.get(reverse("account"), HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert _lang(page) == "ja" and "<html lang=\"ja\"" in html
    assert "コンソールの表示を日本語に切り替えました。" in html and "言語" in html


def test_the_choice_follows_the_person_to_a_new_session(client, agent):
    UserPreference.objects.create(user=agent, language="ja", time_zone="Asia/Tokyo")
    client.force_login(agent)
    assert _lang(client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-US")) == "ja"


def test_blank_follows_the_browser_again(client, agent):
    UserPreference.objects.create(user=agent, language="ja")
    client.force_login(agent)
    client.post(reverse("account"), {"language": ""})
    assert UserPreference.objects.get(user=agent).language == ""
    assert _lang(client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en")) == "en"
    assert _lang(client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="ja")) == "ja"


def test_language_and_zone_are_kept_together(client, agent):
    client.force_login(agent)
    client.post(reverse("account"), {"language": "ja"})
    client.post(reverse("account"), {"time_zone": "Asia/Tokyo"})
    pref = UserPreference.objects.get(user=agent)
    assert (pref.language, pref.time_zone) == ("ja", "Asia/Tokyo")


def test_unknown_language_is_a_400_and_saves_nothing(client, agent):
    client.force_login(agent)
    response = client.post(reverse("account"), {"language": "xx-evil"}, HTTP_ACCEPT_LANGUAGE="ja")
    assert response.status_code == 400
    assert "一覧から言語を選んでください。" in response.content.decode()
    assert not UserPreference.objects.exists() and not AuditEntry.objects.exists()


def test_saving_the_same_language_writes_no_audit_row(agent):
    actions.set_language(actor=agent, user=agent, language="ja")
    actions.set_language(actor=agent, user=agent, language="ja")
    assert AuditEntry.objects.filter(action="user.language").count() == 1
    with pytest.raises(ValidationError):
        actions.set_language(actor=agent, user=agent, language="de")


def test_nobody_sets_another_persons_language(agent, admin_user):
    with pytest.raises(PermissionDenied):
        actions.set_language(actor=admin_user, user=agent, language="ja")
    assert not UserPreference.objects.exists()
