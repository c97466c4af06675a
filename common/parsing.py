"""Reading numbers, times and keyset cursors from request input (query strings, forms, headers).

Each parser returns None for anything it can't read exactly; callers treat None as "not
given" or answer 400. Nothing here raises on input, however hostile.

- parse_int: ASCII digits only. str.isdigit() accepts "²", which int() refuses, and int()
  accepts "٣" and full-width "１２": neither belongs in an id or a count in a URL. Values
  outside a signed 64-bit integer (PostgreSQL's bigint) are refused too.
- parse_datetime: ISO 8601 (Django's parse_datetime), refusing well-formed but impossible
  dates (2024-02-30) and times that can't be moved to UTC or another zone (year 1 at +14:00).
- encode_cursor / decode_cursor: one opaque format for every keyset page (the inbox, the
  mirror's lists and event log, the customer timeline): base64url JSON [time or null, key].
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re

from django.utils import dateparse

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INT = re.compile(r"[+-]?[0-9]{1,19}")
# A day's margin at both ends, so converting to any time zone (±14 h) stays representable.
EARLIEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=2)
LATEST = dt.datetime.max.replace(tzinfo=dt.timezone.utc) - dt.timedelta(days=2)
CURSOR_MAX_LENGTH = 2048
CURSOR_KEY_MAX_LENGTH = 255


def parse_int(value, default: int | None = None, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int | None:
    """The integer `value` spells in ASCII digits (an optional sign, surrounding spaces
    allowed), if it lies within [minimum, maximum]; else `default`."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return default
    return number if minimum <= number <= maximum else default


def parse_datetime(value, default_tz: dt.tzinfo = dt.timezone.utc) -> dt.datetime | None:
    """An aware datetime from ISO 8601 text (a naive one is taken to be in `default_tz`), or
    None when the text isn't one, names a date that doesn't exist, or lies so near the ends
    of the calendar that a time-zone conversion would overflow."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        parsed = dateparse.parse_datetime(value.strip())
    except ValueError:  # well formed but impossible: 2024-02-30, 25:00, an offset of 99 hours
        return None
    if parsed is None:
        return None
    try:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=default_tz)
        in_utc = parsed.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):  # 0001-01-01T00:00:00+14:00 is in year 0 in UTC
        return None
    return parsed if EARLIEST <= in_utc <= LATEST else None


def encode_cursor(stamp: dt.datetime | None, key: int | str) -> str:
    """The position after (stamp, key): what decode_cursor reads back."""
    raw = json.dumps([stamp.isoformat() if stamp is not None else None, key], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(raw, *, key_type: type = int, allow_null_stamp: bool = False) -> tuple[dt.datetime | None, int | str] | None:
    """(stamp, key) from a cursor made by encode_cursor, or None for anything else: not
    base64, not JSON, the wrong shape, an impossible time, a key of the wrong type or size."""
    if not isinstance(raw, str) or not raw or len(raw) > CURSOR_MAX_LENGTH:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(values, list) or len(values) != 2:
        return None
    text, key = values
    if text is None and allow_null_stamp:
        stamp = None
    else:
        stamp = parse_datetime(text)
        if stamp is None or stamp.tzinfo is None:
            return None
    if key_type is int:
        key = parse_int(key) if isinstance(key, int) else None
        if key is None:
            return None
    elif not isinstance(key, str) or not key or len(key) > CURSOR_KEY_MAX_LENGTH or "\x00" in key:
        return None
    return stamp, key
