"""The login page's "Sign in with …" button (console/sso.py), when sign-in with the company's
identity provider is configured; nothing otherwise."""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch

from .. import sso

register = template.Library()


@register.inclusion_tag("registration/_sso_button.html", takes_context=True)
def sso_button(context) -> dict:
    if not sso.enabled():
        return {"sso_url": ""}
    try:
        url = sso.sign_in_url(context.get("next") or "")
    except NoReverseMatch:  # on, but this URLconf has no /oidc/ (console/urls.py adds it at start-up)
        return {"sso_url": ""}
    return {"sso_url": url, "provider": sso.provider_name()}
