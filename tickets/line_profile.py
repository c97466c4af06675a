"""A LINE user's profile (display name, picture, language) on their contact.

Asked from Celery (tasks.line_profile_task) when a LINE user is first seen and again on a
later message once the stored profile is older than TICKETS_LINE_PROFILE_MAX_AGE_DAYS: LINE's
answer never holds up the conversation. 404 (the user blocked the account, or LINE no longer
knows them) changes nothing; 429 and 5xx raise line.Transient for the task to retry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from .actions.contacts import set_line_profile
from .actions.errors import ActionError, TicketsError
from .line import Transient, _error_detail
from .models import Contact, Identity


class ProfileUnavailable(TicketsError):
    """LINE refused for good (400, 401, 403): retrying would get the same answer."""


@dataclass(frozen=True)
class Profile:
    display_name: str
    picture_url: str
    language: str


def max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.TICKETS_LINE_PROFILE_MAX_AGE_DAYS)


def due(contact_pk: int) -> bool:
    """Whether the contact's LINE profile was never fetched or is stale."""
    fetched = Contact.objects.filter(pk=contact_pk).values_list("line_profile_at", flat=True).first()
    return fetched is None or fetched < timezone.now() - max_age()


def fetch(user_id: str) -> Profile | None:
    """GET /v2/bot/profile/{userId}; None when LINE answers 404. Raises Transient (429, 5xx,
    the network) or ProfileUnavailable."""
    from linebot.v3.messaging import ApiClient, ApiException, Configuration, MessagingApi

    config = Configuration(host=settings.LINE_API_BASE.rstrip("/"), access_token=settings.LINE_CHANNEL_ACCESS_TOKEN)
    config.retries = 0  # the task retries with backoff
    try:
        with ApiClient(config) as client:
            answer = MessagingApi(client).get_profile(user_id, _request_timeout=10)
    except ApiException as exc:
        status = exc.status or 0
        if status == 404:
            return None
        if status == 429 or status >= 500:
            raise Transient(f"LINE {status}: {_error_detail(exc)}") from None
        raise ProfileUnavailable(f"LINE refused the profile ({status}): {_error_detail(exc)}") from None
    except Exception as exc:  # connection refused, timeouts, TLS: worth another try
        raise Transient(f"{exc.__class__.__name__}: {str(exc)[:200]}") from None
    picture = getattr(answer, "picture_url", None) or ""
    language = getattr(answer, "language", None) or ""
    return Profile(
        display_name=str(getattr(answer, "display_name", "") or "")[:255],
        # Only an https URL is kept: it becomes an <img src> on agents' pages.
        picture_url=picture if isinstance(picture, str) and picture.startswith("https://") and len(picture) <= 1000
        else "",
        language=language if isinstance(language, str) else "",
    )


def refresh(user_id: str) -> str:
    """Fetch the profile of a LINE user and store it on whichever contact has their identity
    now (a merge may have moved it since the task was queued). Idempotent: a fresh profile
    is not asked again. Returns what happened."""
    if not settings.LINE_CHANNEL_ACCESS_TOKEN:
        return "no token"
    contact_pk = Identity.objects.filter(kind=Identity.Kind.LINE, value=user_id).values_list(
        "contact_id", flat=True).first()
    if contact_pk is None:
        return "no contact"
    if not due(contact_pk):
        return "fresh"
    try:
        profile = fetch(user_id)
    except ProfileUnavailable:
        return "refused"
    if profile is None:
        return "not found"
    try:
        set_line_profile(contact=contact_pk, display_name=profile.display_name, picture_url=profile.picture_url,
                         language=profile.language)
    except ActionError:
        return "no contact"
    return "stored"
