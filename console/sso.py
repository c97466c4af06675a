"""Sign-in with the company's identity provider (OpenID Connect), through mozilla-django-oidc.

Off unless settings.OIDC_ENABLED (OIDC_RP_CLIENT_ID and the provider's endpoints are set):
then `urls()` adds /oidc/authenticate/ (to the provider) and /oidc/callback/ (back from it),
the login page shows "Sign in with …" above the password form, and PaydeskOIDCBackend is the
last of AUTHENTICATION_BACKENDS.

Who may sign in: the one active person whose email is the provider's verified email
(case-insensitive), inside OIDC_ALLOWED_DOMAINS when set. Nobody is created unless
OIDC_CREATE_USERS, and then with no role (they see nothing until an admin gives one).
Deactivated people are refused. Every sign-in is audited with the provider's issuer and
subject (never a token); a refusal is the login page saying why, never an error page.

django-axes: a sign-in at the provider is not a password guess. `axes_skips` tells axes not to
count or lock the callback (the provider has its own lockouts; counting refusals by address
would lock out an office behind one address), and a password lockout doesn't stop someone the
provider vouches for. A successful sign-in resets nothing but that person's own attempts from
their own address (AXES_RESET_ON_SUCCESS), so an attacker's lockout elsewhere stays.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path, reverse
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from .people import actions as people_actions
from .roles import WORKFLOW_ROLE

log = logging.getLogger(__name__)


def enabled() -> bool:
    return bool(getattr(settings, "OIDC_ENABLED", False))


def provider_name() -> str:
    return getattr(settings, "OIDC_PROVIDER_NAME", "") or _("your identity provider")


def sign_in_url(next_url: str = "") -> str:
    url = reverse("oidc_authentication_init")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def callback_url(request: HttpRequest) -> str:
    """Where the provider sends people back: under CONSOLE_BASE_URL when set (behind a proxy that
    ends TLS the request alone would say http://), else the request's own address."""
    path_ = reverse("oidc_authentication_callback")
    base = getattr(settings, "CONSOLE_BASE_URL", "")
    return f"{base}{path_}" if base else request.build_absolute_uri(path_)


def axes_skips(request, credentials=None) -> bool:
    """AXES_WHITELIST_CALLABLE: True only for the provider's callback (no username, no password)."""
    return bool(getattr(request, "paydesk_sso_callback", False)) and not (credentials or {}).get("username")


class Refused(Exception):
    """The provider vouched for someone Paydesk won't sign in; `message` is for them."""

    def __init__(self, code: str, message: str):
        super().__init__(code)
        self.code, self.message = code, message


def _verified(value) -> bool:
    # Most providers send a JSON boolean; a few (Cognito) send the string "true".
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


class PaydeskOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, matching people by verified email (see the module)."""

    def authenticate(self, request, **kwargs):
        # Only the callback view's call (it passes the nonce): a password login never reaches
        # the provider, even with ?code=&state= in its URL.
        if request is None or "nonce" not in kwargs or "username" in kwargs or "password" in kwargs:
            return None
        if not enabled():
            return None
        return super().authenticate(request, **kwargs)

    def get_token(self, payload):
        payload["redirect_uri"] = callback_url(self.request)  # the one the provider was given
        return super().get_token(payload)

    def get_user(self, user_id):
        # ModelBackend's: a session of someone deactivated since is no longer theirs.
        return ModelBackend.get_user(self, user_id)

    def get_or_create_user(self, access_token, id_token, payload):
        request = self.request
        issuer, subject = str(payload.get("iss", "")), str(payload.get("sub", ""))
        try:
            self._check_token(payload)
            claims = {**payload, **self.get_userinfo(access_token, id_token, payload)}
            if str(claims.get("sub", "")) != subject or not subject:
                raise Refused("subject", _("%(provider)s's answer didn't match the sign-in. Try again.")
                              % {"provider": provider_name()})
            user = self._person(claims, issuer=issuer, subject=subject)
        except Refused as refusal:
            request.sso_refusal = refusal.message
            log.info("SSO sign-in refused (%s) for issuer %s subject %s", refusal.code, issuer, subject)
            return None
        people_actions.record_sso_sign_in(user=user, issuer=issuer, subject=subject)
        return user

    def _check_token(self, payload) -> None:
        """What the library leaves to us: the ID token is for this client, from this issuer."""
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        expected_issuer = getattr(settings, "OIDC_OP_ISSUER", "")
        if self.OIDC_RP_CLIENT_ID not in audiences or (expected_issuer and payload.get("iss") != expected_issuer):
            raise Refused("token", _("%(provider)s's answer wasn't meant for Paydesk. Ask an admin to check the "
                                     "sign-in settings.") % {"provider": provider_name()})

    def _person(self, claims: dict, *, issuer: str, subject: str):
        provider = provider_name()
        email = str(claims.get("email") or "").strip()
        if not email or "@" not in email:
            raise Refused("no_email", _("%(provider)s didn't share your email address, so Paydesk can't tell who "
                                        "you are.") % {"provider": provider})
        if "email_verified" in claims and not _verified(claims["email_verified"]):
            raise Refused("unverified", _("%(provider)s hasn't verified your email address %(email)s. Verify it "
                                          "there, then try again.") % {"provider": provider, "email": email})
        domain = email.rsplit("@", 1)[1].lower()
        allowed = getattr(settings, "OIDC_ALLOWED_DOMAINS", [])
        if allowed and domain not in allowed:
            raise Refused("domain", _("Accounts at %(domain)s can't sign in to Paydesk.") % {"domain": domain})
        matches = list(get_user_model().objects.filter(email__iexact=email).exclude(groups__name=WORKFLOW_ROLE))
        active = [user for user in matches if user.is_active]
        if len(active) == 1:
            return active[0]
        if len(active) > 1:
            raise Refused("ambiguous", _("More than one Paydesk account has the email address %(email)s. Ask an "
                                         "admin to fix that.") % {"email": email})
        if matches:
            raise Refused("deactivated", _("Your Paydesk account is deactivated. Ask an admin to reactivate it."))
        if not getattr(settings, "OIDC_CREATE_USERS", False):
            raise Refused("unknown", _("There's no Paydesk account for %(email)s. Ask an admin to add you.")
                          % {"email": email})
        try:
            return people_actions.create_person_from_sso(
                email=email, first_name=str(claims.get("given_name") or ""),
                last_name=str(claims.get("family_name") or ""), issuer=issuer, subject=subject)
        except ValidationError:
            raise Refused("invalid", _("Paydesk couldn't make an account for %(email)s. Ask an admin to add you.")
                          % {"email": email}) from None


def refuse(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """The login page again, saying why (the password form stays)."""
    session = getattr(request, "session", None)
    target = (session.get("oidc_login_next") if session is not None else None) or ""
    return render(request, "registration/login.html", {"sso_refusal": message, "next": target}, status=status)


class AuthenticateView(OIDCAuthenticationRequestView):
    """/oidc/authenticate/: off to the provider (state, nonce and PKCE kept in the session)."""

    def dispatch(self, request, *args, **kwargs):
        if not enabled():
            raise Http404
        return super().dispatch(request, *args, **kwargs)

    def get_extra_params(self, request):
        return {**super().get_extra_params(request), "redirect_uri": callback_url(request)}


class CallbackView(OIDCAuthenticationCallbackView):
    """/oidc/callback/: back from the provider. Signed in, or the login page saying why."""

    def dispatch(self, request, *args, **kwargs):
        if not enabled():
            raise Http404
        request.paydesk_sso_callback = True  # axes_skips
        try:
            return super().dispatch(request, *args, **kwargs)
        except SuspiciousOperation as exc:
            # An unknown or reused state, a token that fails its signature or nonce check.
            log.warning("SSO sign-in failed: %s", exc)
            return refuse(request, _("That sign-in didn't complete (it may have expired or been used already). "
                                     "Try again."), status=400)
        except (requests.RequestException, jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            # The provider unreachable, or an answer the library can't read. Only the kind of
            # error is logged: the library's message may quote the provider's response.
            log.warning("SSO sign-in failed talking to the provider: %s", type(exc).__name__)
            return refuse(request, _("Paydesk couldn't complete the sign-in with %(provider)s. Try again in a "
                                     "moment.") % {"provider": provider_name()}, status=400)

    def login_failure(self):
        request = self.request
        refusal = getattr(request, "sso_refusal", None)
        if refusal:
            return refuse(request, refusal, status=403)
        if request.GET.get("error"):
            return refuse(request, _("The sign-in with %(provider)s was cancelled or refused there.")
                          % {"provider": provider_name()}, status=400)
        return refuse(request, _("That sign-in didn't complete (it may have expired or been used already). "
                                 "Try again."), status=400)


def urls(enabled_: bool | None = None) -> list:
    """The /oidc/ URLs when sign-in with the provider is on; none otherwise."""
    if not (enabled() if enabled_ is None else enabled_):
        return []
    return [path("oidc/", include([
        path("authenticate/", login_not_required(AuthenticateView.as_view()), name="oidc_authentication_init"),
        path("callback/", login_not_required(CallbackView.as_view()), name="oidc_authentication_callback"),
    ]))]
