"""The images of LINE replies, where LINE's servers fetch them.

LINE's push API takes an image only as a public https URL (originalContentUrl, and a
previewImageUrl of at most 1 MB). Each image of an outbound LINE reply gets a URL under
PAYDESK_PUBLIC_URL carrying a signed, expiring token (django.core.signing with its own salt):
unguessable, valid TICKETS_LINE_IMAGE_URL_MAX_AGE_DAYS, and only for attachments of outbound
LINE messages. No login (LINE's fetcher has none); anything else is a 404.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from . import attachment_scan
from .models import Attachment, Channel, Message

SALT = "tickets.line_media.image"
PREVIEW_SIDE = 240  # px: LINE shows the preview in the chat; at most 1 MB


def signed_url(attachment: Attachment, *, preview: bool = False) -> str:
    token = signing.dumps({"a": attachment.pk, "p": int(preview)}, salt=SALT, compress=False)
    return f"{settings.PAYDESK_PUBLIC_URL.rstrip('/')}{reverse('line_image', args=[token])}"


def _attachment(token: str) -> tuple[Attachment, bool]:
    max_age = settings.TICKETS_LINE_IMAGE_URL_MAX_AGE_DAYS * 24 * 3600
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
        pk, preview = int(data["a"]), bool(data.get("p"))
    except (signing.BadSignature, KeyError, TypeError, ValueError, OverflowError):
        # A tampered, foreign or expired token (SignatureExpired is a BadSignature).
        raise Http404("No such image") from None
    attachment = Attachment.objects.filter(
        pk=pk, refused=False, message__kind=Message.Kind.OUTBOUND, message__channel=Channel.LINE,
    ).exclude(file="").first()
    if attachment is None:
        raise Http404("No such image")
    return attachment, preview


def _preview(fh) -> bytes | None:
    """A JPEG at most PREVIEW_SIDE px wide or high, or None when Pillow cannot read the image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(fh) as image:
            image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


@login_not_required
@require_GET
def line_image(request: HttpRequest, token: str) -> HttpResponse:
    attachment, preview = _attachment(token)
    try:
        fh = attachment.file.open("rb")
    except OSError:  # the file is gone from storage
        raise Http404("No such image") from None
    head = fh.read(8192)
    fh.seek(0)
    kind = attachment_scan.sniff(head)
    if kind not in attachment_scan.LINE_IMAGE_TYPES:
        fh.close()
        raise Http404("No such image")
    if preview:
        with fh:
            small = _preview(fh)
        if small is None:
            raise Http404("No such image")
        response = HttpResponse(small, content_type="image/jpeg")
    else:
        response = FileResponse(fh, content_type=kind)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Robots-Tag"] = "noindex"
    response["Cache-Control"] = "private, max-age=3600"
    return response
