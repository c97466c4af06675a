"""The customer's conversations with support as a PDF, for a dispute's `customer_communication`
evidence: every email and LINE message to and from the customer (internal notes never), in
order, Japanese included (a CJK font is embedded, subset), under Stripe's 5 MB file limit.

The labels are English: the reader is the card network's reviewer. The messages are as the
customer and the agents wrote them."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

MAX_BYTES = 5 * 1024 * 1024  # Stripe's limit for a dispute evidence file
MAX_MESSAGE_CHARS = 20_000  # one very long email is cut, saying so


class PdfUnavailable(Exception):
    """No font that can write the conversation (say which setting or package fixes it)."""


@dataclass(frozen=True)
class Line:
    """One message as the PDF shows it."""

    at: dt.datetime
    who: str  # "Customer" / "Support (Aiko Mori)"
    channel: str  # "email" / "LINE"
    subject: str
    text: str


def _font() -> tuple[str, int]:
    path = settings.DISPUTES_PDF_FONT
    if not path or not Path(path).is_file():
        raise PdfUnavailable(
            f"The conversation PDF needs a font with Japanese: install Debian's fonts-noto-cjk or set "
            f"DISPUTES_PDF_FONT (now {path or 'unset'}).")
    return path, settings.DISPUTES_PDF_FONT_INDEX


def render(*, title: str, facts: list[tuple[str, str]], lines: list[Line]) -> bytes:
    """The PDF's bytes: a title, the facts (dispute, charge, customer), then each message."""
    from fpdf import FPDF

    path, index = _font()
    zone = zoneinfo.ZoneInfo(settings.SHOP_TIME_ZONE)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(title)
    pdf.set_creator("Paydesk")
    kwargs = {"collection_font_number": index} if path.endswith(".ttc") else {}
    pdf.add_font("Body", fname=path, **kwargs)
    pdf.add_page()
    pdf.set_font("Body", size=14)
    pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Body", size=9)
    for label, value in facts:
        pdf.multi_cell(0, 5, f"{label}: {value}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for line in lines:
        when = line.at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        pdf.set_font("Body", size=8)
        pdf.set_text_color(90, 90, 110)
        head = f"{when} · {line.who} · {line.channel}" + (f" · {line.subject}" if line.subject else "")
        pdf.multi_cell(0, 4.5, head, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(20, 20, 30)
        pdf.set_font("Body", size=10)
        text = line.text if len(line.text) <= MAX_MESSAGE_CHARS else (
            line.text[:MAX_MESSAGE_CHARS] + f"\n[… {len(line.text) - MAX_MESSAGE_CHARS} more characters not shown]")
        pdf.multi_cell(0, 5.5, text or "(no text)", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2.5)
    data = bytes(pdf.output())
    if len(data) > MAX_BYTES:
        raise ValueError("The conversation is larger than Stripe's 5 MB file limit.")
    return data
