"""`manage.py oidc_endpoints https://example.okta.com`: reads the identity provider's discovery
document (<issuer>/.well-known/openid-configuration) once, when an operator asks, and prints the
OIDC_OP_* lines to put in the environment. Paydesk itself never fetches it: at start-up it
takes the endpoints as given (console/settings.py, console/sso.py)."""

from __future__ import annotations

import requests
from django.core.management.base import BaseCommand, CommandError

WELL_KNOWN = "/.well-known/openid-configuration"
FIELDS = [
    ("OIDC_OP_ISSUER", "issuer"),
    ("OIDC_OP_AUTHORIZATION_ENDPOINT", "authorization_endpoint"),
    ("OIDC_OP_TOKEN_ENDPOINT", "token_endpoint"),
    ("OIDC_OP_USER_ENDPOINT", "userinfo_endpoint"),
    ("OIDC_OP_JWKS_ENDPOINT", "jwks_uri"),
]


class Command(BaseCommand):
    help = "Print the OIDC_OP_* settings for an identity provider, from its discovery document."

    def add_arguments(self, parser):
        parser.add_argument("issuer", help="the provider's issuer URL, or its discovery document's URL")

    def handle(self, *args, issuer: str, **options):
        url = issuer.rstrip("/")
        if not url.endswith(WELL_KNOWN):
            url += WELL_KNOWN
        if not url.startswith(("https://", "http://")):
            raise CommandError("The issuer must be an https:// URL")
        try:
            response = requests.get(url, timeout=10)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise CommandError(f"Could not read {url}: {type(exc).__name__}") from None
        if not isinstance(document, dict):
            raise CommandError(f"{url} is not a discovery document")
        missing = [key for _, key in FIELDS if not document.get(key)]
        if missing:
            raise CommandError(f"{url} has no {', '.join(missing)}")
        for name, key in FIELDS:
            self.stdout.write(f"{name}={document[key]}")
        algorithms = document.get("id_token_signing_alg_values_supported") or []
        if algorithms and "RS256" not in algorithms:
            self.stdout.write(f"OIDC_RP_SIGN_ALGO={algorithms[0]}")
        if "S256" not in (document.get("code_challenge_methods_supported") or ["S256"]):
            self.stdout.write("OIDC_USE_PKCE=false")
