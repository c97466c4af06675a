"""The integration API: link or unlink a contact's identities (a shop's LINE connect flow).

Who acts: Paydesk itself (actor None, reason "api" in the audit log). The API is a channel
like LINE's webhook: the bearer token authenticates the shop's site, which relays what the
shopper did on it (connected or disconnected their LINE account); no agent decided it, and
the token is no person's. So it calls the two actions Paydesk may run on its own word,
link_identity_to and disconnect_identity, never an agent's link or unlink. A per-integration
service user would only be needed if several integrations had to be told apart.

POST /api/contacts/link    {"contact": {"kind": "email", "value": "a@b.jp"},
                            "identity": {"kind": "line", "value": "U…"}, "name": "…"}
POST /api/contacts/unlink  {"kind": "line", "value": "U…"}
Authorization: Bearer <TICKETS_API_TOKEN>
"""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from . import identity as identity_rules
from .actions.contacts import disconnect_identity, link_identity_to
from .actions.errors import ActionError
from .models import Identity

MAX_BODY = 64 * 1024


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@sensitive_variables("token", "header")
def _authorised(request) -> bool:
    token = settings.TICKETS_API_TOKEN
    header = request.headers.get("Authorization", "")
    if not token or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())


def _json(request) -> dict:
    if len(request.body) > MAX_BODY:
        raise ValueError("body too large")
    data = json.loads(request.body.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _pair(data, where: str) -> tuple[str, str]:
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or not isinstance(data.get("value"), str):
        raise ValueError(f"{where} must be {{\"kind\": ..., \"value\": ...}}")
    if data["kind"] not in Identity.Kind.values:
        raise ValueError(f"{where}.kind must be one of {', '.join(Identity.Kind.values)}")
    return data["kind"], data["value"]


def _guard(view):
    def wrapped(request):
        if not settings.TICKETS_API_TOKEN:
            return _error(404, "the contacts API is not enabled")
        if not _authorised(request):
            return _error(401, "missing or wrong bearer token")
        try:
            data = _json(request)
            return view(request, data)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, str(exc))
        except ValidationError as exc:
            return _error(400, "; ".join(exc.messages))

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return login_not_required(csrf_exempt(require_POST(wrapped)))


@_guard
def link(request, data):
    """Link an identity to the contact found by another identity (created if nobody has it);
    if the identity belongs to someone else, the two contacts are merged."""
    anchor_kind, anchor_value = _pair(data.get("contact"), "contact")
    kind, value = _pair(data.get("identity"), "identity")
    name = data.get("name") if isinstance(data.get("name"), str) else ""
    result = link_identity_to(
        actor=None, anchor_kind=anchor_kind, anchor_value=anchor_value, kind=kind, value=value,
        name=name, reason="api",
    )
    return JsonResponse({
        "contact": result.identity.contact_id,
        "identity": {"kind": result.identity.kind, "value": result.identity.value},
        "created": result.created,
        "merge": result.merge.pk if result.merge else None,
    })


@_guard
def unlink(request, data):
    """Remove an identity (the shopper disconnected LINE); later messages start a new contact."""
    kind, value = _pair(data, "body")
    value = identity_rules.normalise(kind, value)
    try:
        contact = disconnect_identity(actor=None, kind=kind, value=value, reason="api")
    except ActionError as exc:
        if exc.code == "not_found":
            return _error(404, "; ".join(exc.messages))
        raise
    return JsonResponse({"contact": contact.pk, "unlinked": {"kind": kind, "value": value}})
