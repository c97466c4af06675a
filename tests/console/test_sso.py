"""Sign-in with the company's identity provider (OpenID Connect, console/sso.py, mozilla-django-oidc).

A tiny real provider runs in this process (a threading HTTPServer on 127.0.0.1): /authorize
sends the browser back with a code, /token answers an RS256-signed ID token (PyJWT, as the
library verifies it) and an access token, /userinfo and /jwks answer as a provider does. The
library talks to it over HTTP; nothing of the library is mocked.

Sign-in is off unless configured; the tests turn it on with pytest-django's `settings` (undone
after each test) and this module as ROOT_URLCONF: console's URLs with the /oidc/ ones that
console/urls.py adds when OIDC_ENABLED is set at start-up.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
import requests
from axes.models import AccessAttempt
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import NoReverseMatch, reverse

from audit.models import AuditAction, AuditEntry
from console import sso
from console import urls as console_urls
from tests import factories
from tests.console.test_settings_env import GOOD, ROOT

pytestmark = pytest.mark.django_db

# This module is the URLconf of the tests that turn sign-in on.
urlpatterns = [*sso.urls(enabled_=True), *console_urls.urlpatterns]

CLIENT_ID = "paydesk-console"
CLIENT_SECRET = "oidc-client-secret-never-shown-4242"
PASSWORD = "correct horse battery"


class Provider:
    """The provider's state: the claims of whoever signs in next, codes and tokens issued."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.claims: dict = {}
        self.id_token_extra: dict = {}
        self.codes: dict = {}
        self.tokens: dict = {}
        self.token_calls = 0
        self.issued: list[str] = []  # every token handed out, to check none is stored or logged
        self.url = ""

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}


def _handler(provider: Provider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _json(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/authorize":
                if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                    return self._json(400, {"error": "invalid_request"})
                code = secrets.token_urlsafe(16)
                provider.codes[code] = {"nonce": query.get("nonce"), "redirect_uri": query["redirect_uri"],
                                        "challenge": query.get("code_challenge"), "claims": dict(provider.claims)}
                self.send_response(302)
                self.send_header("Location", query["redirect_uri"] + "?" + urlencode({"code": code,
                                                                                      "state": query["state"]}))
                self.end_headers()
            elif url.path == "/userinfo":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token not in provider.tokens:
                    return self._json(401, {"error": "invalid_token"})
                self._json(200, provider.tokens[token])
            elif url.path == "/jwks":
                self._json(200, provider.jwks())
            elif url.path == "/.well-known/openid-configuration":
                self._json(200, {"issuer": provider.url, "authorization_endpoint": f"{provider.url}/authorize",
                                 "token_endpoint": f"{provider.url}/token",
                                 "userinfo_endpoint": f"{provider.url}/userinfo",
                                 "jwks_uri": f"{provider.url}/jwks", "id_token_signing_alg_values_supported": ["RS256"],
                                 "code_challenge_methods_supported": ["S256"]})
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self):
            provider.token_calls += 1
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            grant = provider.codes.pop(form.get("code"), None)
            if (urlparse(self.path).path != "/token" or grant is None or form.get("client_id") != CLIENT_ID
                    or form.get("client_secret") != CLIENT_SECRET or form.get("redirect_uri") != grant["redirect_uri"]):
                return self._json(400, {"error": "invalid_grant"})
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if grant["challenge"] != challenge:
                return self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
            claims = grant["claims"]
            now = int(time.time())
            id_claims = {"iss": provider.url, "sub": claims["sub"], "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                         "nonce": grant["nonce"], **provider.id_token_extra}
            id_token = jwt.encode(id_claims, provider.key, algorithm="RS256", headers={"kid": provider.kid})
            access_token = secrets.token_urlsafe(24)
            provider.tokens[access_token] = claims
            provider.issued += [id_token, access_token]
            self._json(200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                             "id_token": id_token})

    return Handler



@pytest.fixture(scope="module")
def provider():
    state = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def sso_on(settings, provider):
    """Sign-in with the provider turned on, as console/settings.py does from the environment."""
    provider.claims, provider.id_token_extra = {}, {}
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_PROVIDER_NAME = "Okta"
    settings.OIDC_OP_ISSUER = provider.url
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{provider.url}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{provider.url}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{provider.url}/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{provider.url}/jwks"
    settings.OIDC_CREATE_USERS = False
    settings.OIDC_ALLOWED_DOMAINS = []
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "console.sso.PaydeskOIDCBackend"]
    settings.ROOT_URLCONF = __name__
    return settings


def person_claims(email="keiko@example.com", verified=True, sub="00u-keiko", **extra) -> dict:
    claims = {"sub": sub, "email": email, **extra}
    if verified is not None:
        claims["email_verified"] = verified
    return claims


def sign_in(client, provider, claims: dict | None, next_url: str = ""):
    """The browser's trip: Paydesk → the provider → back to Paydesk's callback."""
    if claims is not None:
        provider.claims = claims
    start = client.get("/oidc/authenticate/" + (f"?{urlencode({'next': next_url})}" if next_url else ""))
    assert start.status_code == 302 and start["Location"].startswith(f"{provider.url}/authorize?"), start
    query = parse_qs(urlparse(start["Location"]).query)
    assert query["client_id"] == [CLIENT_ID] and "client_secret" not in query and query["code_challenge"]
    back = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302
    callback = urlparse(back.headers["Location"])
    assert callback.path == "/oidc/callback/"
    return client.get(f"{callback.path}?{callback.query}")


def signed_in_as(client):
    return client.session.get("_auth_user_id")


# --- off by default ---------------------------------------------------------------------------


def test_off_by_default_no_url_no_backend_no_button(client, settings):
    assert settings.OIDC_ENABLED is False
    assert sso.urls() == []
    assert "console.sso.PaydeskOIDCBackend" not in settings.AUTHENTICATION_BACKENDS
    assert "mozilla_django_oidc" not in settings.INSTALLED_APPS
    with pytest.raises(NoReverseMatch):
        reverse("oidc_authentication_init")
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    page = client.get("/login/").content.decode()
    assert "Sign in with" not in page and "/oidc/" not in page and 'name="password"' in page


def test_urls_follow_the_setting(settings):
    settings.OIDC_ENABLED = True
    assert [p.pattern.regex.pattern for p in sso.urls()] == ["^oidc/"]


ENV_ON = {
    "OIDC_RP_CLIENT_ID": CLIENT_ID, "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET, "OIDC_PROVIDER_NAME": "Okta",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://idp.example/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://idp.example/token",
    "OIDC_OP_USER_ENDPOINT": "https://idp.example/userinfo", "OIDC_OP_JWKS_ENDPOINT": "https://idp.example/jwks",
}


def start_with(env: dict, code: str) -> subprocess.CompletedProcess:
    """A fresh Python reading its settings from `env` (as manage.py and gunicorn do)."""
    full = {**GOOD, **env}
    return subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=120)


def test_the_environment_turns_it_on_without_fetching_anything():
    code = ("from django.conf import settings; from django.urls import reverse; "
            "print(settings.OIDC_ENABLED, settings.AUTHENTICATION_BACKENDS[0], settings.AUTHENTICATION_BACKENDS[-1], "
            "'mozilla_django_oidc' in settings.INSTALLED_APPS, reverse('oidc_authentication_init'))")
    result = start_with(ENV_ON, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "axes.backends.AxesStandaloneBackend", "console.sso.PaydeskOIDCBackend",
                                     "True", "/oidc/authenticate/"]


def test_a_client_id_without_the_endpoints_stops_start_up_naming_them():
    env = {**ENV_ON, "OIDC_OP_JWKS_ENDPOINT": "", "OIDC_OP_TOKEN_ENDPOINT": ""}
    result = start_with(env, "")
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "ImproperlyConfigured" in last_line
    assert "OIDC_OP_TOKEN_ENDPOINT" in last_line and "OIDC_OP_JWKS_ENDPOINT" in last_line
    assert CLIENT_SECRET not in result.stdout + result.stderr


def test_an_operator_reads_the_endpoints_from_the_discovery_document_once(provider):
    out = io.StringIO()
    call_command("oidc_endpoints", provider.url + "/", stdout=out)
    assert out.getvalue().splitlines() == [
        f"OIDC_OP_ISSUER={provider.url}", f"OIDC_OP_AUTHORIZATION_ENDPOINT={provider.url}/authorize",
        f"OIDC_OP_TOKEN_ENDPOINT={provider.url}/token", f"OIDC_OP_USER_ENDPOINT={provider.url}/userinfo",
        f"OIDC_OP_JWKS_ENDPOINT={provider.url}/jwks"]
    with pytest.raises(CommandError, match="Could not read"):
        call_command("oidc_endpoints", "http://127.0.0.1:9", stdout=io.StringIO())
    with pytest.raises(CommandError, match="Could not read"):
        call_command("oidc_endpoints", provider.url + "/nothing-here", stdout=io.StringIO())


# --- on ---------------------------------------------------------------------------------------


def test_login_page_shows_the_button_above_the_password_form(client, sso_on):
    page = client.get("/login/?next=/tickets/").content.decode()
    assert "Sign in with Okta" in page
    assert page.index("Sign in with Okta") < page.index('name="password"')
    assert '/oidc/authenticate/?next=%2Ftickets%2F' in page
    assert CLIENT_SECRET not in page and CLIENT_ID not in page


@pytest.mark.parametrize("role", ["agent", "finance", "admin"])
def test_an_existing_person_signs_in_by_verified_email_and_it_is_audited(client, sso_on, provider, role):
    keiko = factories.UserFactory(username="keiko", email="Keiko@Example.com", role=role)
    response = sign_in(client, provider, person_claims(email="keiko@example.COM"), next_url="/tickets/")
    assert response.status_code == 302 and response["Location"] == "/tickets/"
    assert signed_in_as(client) == str(keiko.pk)
    entry = AuditEntry.objects.get(action=AuditAction.PERSON_SSO_SIGN_IN)
    assert entry.actor == keiko and entry.target == f"user:{keiko.pk}"
    assert entry.details == {"username": "keiko", "issuer": provider.url, "subject": "00u-keiko"}
    stored = json.dumps(entry.details) + json.dumps(dict(client.session.items()))
    assert not any(token in stored for token in provider.issued)  # no token kept anywhere
    assert client.get("/").status_code == 200


def test_behind_a_proxy_the_provider_is_given_the_console_base_url(client, sso_on, provider):
    sso_on.CONSOLE_BASE_URL = "https://paydesk.example"
    keiko = factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    start = client.get("/oidc/authenticate/")
    assert parse_qs(urlparse(start["Location"]).query)["redirect_uri"] == ["https://paydesk.example/oidc/callback/"]
    response = sign_in(client, provider, person_claims())  # the token request repeats the same redirect_uri
    assert response.status_code == 302 and signed_in_as(client) == str(keiko.pk)


def test_signing_in_without_next_lands_home(client, sso_on, provider):
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    response = sign_in(client, provider, person_claims())
    assert response.status_code == 302 and response["Location"] == "/"


def refused(response, text: str, status: int = 403):
    html = response.content.decode()
    assert response.status_code == status, response.status_code
    assert text in html, html
    assert 'name="password"' in html and "Sign in with Okta" in html  # the login page, calm
    return html


def test_an_unverified_email_is_refused(client, sso_on, provider):
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    response = sign_in(client, provider, person_claims(verified=False))
    refused(response, "hasn&#x27;t verified your email address keiko@example.com")
    assert signed_in_as(client) is None
    assert not AuditEntry.objects.filter(action=AuditAction.PERSON_SSO_SIGN_IN).exists()


def test_email_verified_as_the_string_true_counts_and_a_missing_claim_is_accepted(client, sso_on, provider):
    keiko = factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    assert sign_in(client, provider, person_claims(verified="true")).status_code == 302
    assert signed_in_as(client) == str(keiko.pk)
    client.logout()
    assert sign_in(client, provider, person_claims(verified=None)).status_code == 302
    assert signed_in_as(client) == str(keiko.pk)


def test_an_unknown_email_is_refused_and_nobody_is_created(client, sso_on, provider):
    before = get_user_model().objects.count()
    response = sign_in(client, provider, person_claims(email="stranger@example.com"))
    refused(response, "no Paydesk account for stranger@example.com")
    assert get_user_model().objects.count() == before and signed_in_as(client) is None


def test_with_create_users_an_unknown_person_is_created_without_a_role(client, sso_on, provider):
    sso_on.OIDC_CREATE_USERS = True
    response = sign_in(client, provider, person_claims(email="New.Person@example.com", sub="00u-new",
                                                       given_name="New", family_name="Person"))
    assert response.status_code == 302
    user = get_user_model().objects.get(email="New.Person@example.com")
    assert signed_in_as(client) == str(user.pk)
    assert user.username == "new.person@example.com" and not user.groups.exists() and not user.is_superuser
    assert not user.has_usable_password() and (user.first_name, user.last_name) == ("New", "Person")
    created = AuditEntry.objects.get(action=AuditAction.PERSON_CREATE, target=f"user:{user.pk}")
    assert created.actor is None and created.details["via"] == "sso" and created.details["subject"] == "00u-new"
    assert created.details["role"] == ""
    assert AuditEntry.objects.filter(action=AuditAction.PERSON_SSO_SIGN_IN, actor=user).count() == 1
    # No role: nothing to see until an admin gives one.
    assert client.get("/people/").status_code == 403
    assert client.get("/workflows/runs/").status_code == 403
    # The second time, the same account.
    client.logout()
    sign_in(client, provider, None)
    assert signed_in_as(client) == str(user.pk)
    assert get_user_model().objects.filter(email__iexact=user.email).count() == 1


def test_a_session_from_the_provider_ends_when_the_person_is_deactivated(client, sso_on, provider):
    keiko = factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    sign_in(client, provider, person_claims())
    assert client.session["_auth_user_backend"] == "console.sso.PaydeskOIDCBackend"
    assert client.get("/").status_code == 200
    get_user_model().objects.filter(pk=keiko.pk).update(is_active=False)
    assert client.get("/")["Location"].startswith("/login/")


def test_a_deactivated_person_is_refused(client, sso_on, provider):
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent", is_active=False)
    refused(sign_in(client, provider, person_claims()), "Your Paydesk account is deactivated")
    assert signed_in_as(client) is None
    sso_on.OIDC_CREATE_USERS = True  # and no second account is made for them
    refused(sign_in(client, provider, person_claims()), "Your Paydesk account is deactivated")
    assert get_user_model().objects.filter(email__iexact="keiko@example.com").count() == 1


def test_a_disallowed_domain_is_refused(client, sso_on, provider):
    sso_on.OIDC_ALLOWED_DOMAINS = ["paydesk.example"]
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    refused(sign_in(client, provider, person_claims()), "Accounts at example.com can&#x27;t sign in")
    assert signed_in_as(client) is None
    allowed = factories.UserFactory(username="aiko", email="aiko@paydesk.example", role="agent")
    sign_in(client, provider, person_claims(email="aiko@paydesk.example", sub="00u-aiko"))
    assert signed_in_as(client) == str(allowed.pk)


def test_two_active_accounts_with_the_email_are_refused_and_the_service_user_never_matches(client, sso_on, provider):
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    factories.UserFactory(username="keiko2", email="KEIKO@example.com", role="agent")
    refused(sign_in(client, provider, person_claims()), "More than one Paydesk account")
    factories.UserFactory(username="workflows", email="bot@example.com", role="workflow")
    refused(sign_in(client, provider, person_claims(email="bot@example.com", sub="bot")), "no Paydesk account")
    assert signed_in_as(client) is None


def test_an_id_token_for_another_client_or_from_another_issuer_is_refused(client, sso_on, provider):
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    provider.id_token_extra = {"aud": "some-other-app"}
    refused(sign_in(client, provider, person_claims()), "wasn&#x27;t meant for Paydesk")
    provider.id_token_extra = {"iss": "https://evil.example"}
    refused(sign_in(client, provider, person_claims()), "wasn&#x27;t meant for Paydesk")
    assert signed_in_as(client) is None


def test_userinfo_for_another_subject_is_refused(client, sso_on, provider):
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    provider.id_token_extra = {"sub": "00u-someone-else"}
    refused(sign_in(client, provider, person_claims()), "didn&#x27;t match the sign-in")
    assert signed_in_as(client) is None


@pytest.mark.parametrize("query", [
    "", "code=x", "code=x&state=y", "error=access_denied&state=y", "code=%00&state=%00",
    "code=" + "a" * 5000 + "&state=b",
])
def test_a_broken_or_forged_callback_is_the_login_page_never_an_error(client, sso_on, query):
    response = client.get(f"/oidc/callback/?{query}")
    assert response.status_code == 400
    if "%00" not in query:  # console.middleware.RejectNulMiddleware answers NULs before any view
        assert 'name="password"' in response.content.decode()
    assert signed_in_as(client) is None


def test_a_replayed_or_foreign_state_is_refused(client, sso_on, provider):
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    provider.claims = person_claims()
    client.get("/oidc/authenticate/")  # the session now holds a state
    response = client.get("/oidc/callback/?code=made-up&state=not-the-one")
    assert response.status_code == 400 and "Try again" in response.content.decode()
    # A real callback used twice: the second is refused (the state is spent).
    start = client.get("/oidc/authenticate/")
    back = urlparse(requests.get(start["Location"], allow_redirects=False, timeout=10).headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    client.logout()
    assert client.get(f"{back.path}?{back.query}").status_code == 400
    assert signed_in_as(client) is None


def test_the_provider_down_or_refusing_the_code_is_a_calm_page(client, sso_on, provider):
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    provider.claims = person_claims()
    start = client.get("/oidc/authenticate/")
    back = urlparse(requests.get(start["Location"], allow_redirects=False, timeout=10).headers["Location"])
    sso_on.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/token"  # nothing listens on the discard port
    response = client.get(f"{back.path}?{back.query}")
    refused(response, "couldn&#x27;t complete the sign-in with Okta", status=400)
    sso_on.OIDC_OP_TOKEN_ENDPOINT = f"{provider.url}/token"
    sso_on.OIDC_RP_CLIENT_SECRET = "wrong-secret-value-1234"  # the provider answers 400 invalid_grant
    response = sign_in(client, provider, person_claims())
    refused(response, "couldn&#x27;t complete the sign-in with Okta", status=400)
    assert signed_in_as(client) is None


def test_the_secret_is_never_logged_nor_shown(client, sso_on, provider, caplog):
    caplog.set_level("DEBUG")
    factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    sign_in(client, provider, person_claims())
    client.logout()
    sign_in(client, provider, person_claims(email="nobody@example.com"))
    sso_on.OIDC_RP_CLIENT_SECRET = "wrong-secret-value-1234"
    page = sign_in(client, provider, person_claims()).content.decode()
    assert CLIENT_SECRET not in caplog.text and "wrong-secret-value-1234" not in caplog.text
    assert not any(token in caplog.text for token in provider.issued)
    assert "wrong-secret-value-1234" not in page
    from console.reporting import configured_secrets

    assert "wrong-secret-value-1234" in configured_secrets()  # the error reports hide it too


# --- django-axes ------------------------------------------------------------------------------


def test_axes_neither_counts_nor_crashes_on_sign_ins_and_password_logins_still_work(client, sso_on, provider):
    sso_on.AXES_FAILURE_LIMIT = 2
    keiko = factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    for _ in range(3):  # refusals at the callback are not password guesses: no lockout by address
        refused(sign_in(client, provider, person_claims(email="nobody@example.com")), "no Paydesk account")
    assert not AccessAttempt.objects.exists()
    sign_in(client, provider, person_claims())
    assert signed_in_as(client) == str(keiko.pk)
    # The password form works as before, and a login URL carrying ?code=&state= never calls the provider.
    calls = provider.token_calls
    password_client = Client()
    response = password_client.post("/login/?code=abc&state=def", {"username": "keiko", "password": PASSWORD})
    assert response.status_code == 302 and password_client.session["_auth_user_id"] == str(keiko.pk)
    assert provider.token_calls == calls


def test_a_password_lockout_still_holds_for_passwords_and_the_provider_may_still_vouch(client, sso_on, provider):
    sso_on.AXES_FAILURE_LIMIT = 2
    keiko = factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    for _ in range(2):
        client.post("/login/", {"username": "keiko", "password": "wrong"})
    assert client.post("/login/", {"username": "keiko", "password": PASSWORD}).status_code == 429
    # Someone the provider vouches for is not guessing a password: signed in.
    assert sign_in(client, provider, person_claims()).status_code == 302
    assert signed_in_as(client) == str(keiko.pk)
    # The lockout of the password form from another address stays.
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(2):
        attacker.post("/login/", {"username": "keiko", "password": "wrong"})
    assert attacker.post("/login/", {"username": "keiko", "password": PASSWORD}).status_code == 429


# --- the people page --------------------------------------------------------------------------


def test_the_person_page_says_when_they_last_signed_in_with_the_provider(client, sso_on, provider, as_user,
                                                                          admin_user, agent):
    keiko = factories.UserFactory(username="keiko", email="keiko@example.com", role="agent")
    page = as_user(admin_user).get(f"/people/{keiko.pk}/").content.decode()
    assert "Hasn't signed in with Okta yet." in page
    client.logout()
    sign_in(client, provider, person_claims())
    client.logout()
    page = as_user(admin_user).get(f"/people/{keiko.pk}/").content.decode()
    assert "Signs in with Okta: last on" in page
    assert as_user(agent).get(f"/people/{keiko.pk}/").status_code == 403
    client.logout()
    assert client.get(f"/people/{keiko.pk}/")["Location"].startswith("/login/")


def test_the_person_page_says_nothing_of_the_provider_when_off(as_user, admin_user, agent):
    page = as_user(admin_user).get(f"/people/{agent.pk}/").content.decode()
    assert "signed in with" not in page.lower() and "Signs in with" not in page


def test_the_oidc_urls_are_public_and_answer_anyone(client, sso_on, provider, as_user, agent):
    assert client.get("/oidc/authenticate/")["Location"].startswith(provider.url)
    assert as_user(agent).get("/oidc/authenticate/")["Location"].startswith(provider.url)
    assert client.post("/oidc/authenticate/").status_code in (403, 405)  # GET only (CSRF first for a POST)
