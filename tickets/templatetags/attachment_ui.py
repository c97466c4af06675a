"""How the thread shows an attachment: a thumbnail for a picture the console may show inline."""

from django import template

from ..attachment_scan import PREVIEWABLE

register = template.Library()


@register.filter
def is_thumbnail(attachment) -> bool:
    """A stored picture whose type (sniffed from its bytes when it was stored) browsers show:
    the download view serves it inline only when the bytes still say so."""
    return bool(attachment.file) and not attachment.refused and attachment.content_type in PREVIEWABLE
