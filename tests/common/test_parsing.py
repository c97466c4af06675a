"""common.parsing: integers, times and keyset cursors read from request input never raise,
and read back exactly what Paydesk itself wrote."""

import base64
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.parsing import (
    INT64_MAX, INT64_MIN, decode_cursor, encode_cursor, parse_datetime, parse_int,
)

UTC = dt.timezone.utc


def b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("raw, expected", [
    ("42", 42), (" 7 ", 7), ("-3", -3), ("0", 0), (str(INT64_MAX), INT64_MAX), (str(INT64_MIN), INT64_MIN),
    (5, 5), (None, None), ("", None), (" ", None), (True, None),
    ("²", None), ("1²", None), ("٣", None), ("１２", None), ("1.5", None), ("1e3", None), ("0x10", None),
    ("1_000", None), ("Infinity", None), ("NaN", None), (str(INT64_MAX + 1), None), ("9" * 5000, None),
])
def test_parse_int_reads_ascii_digits_only(raw, expected):
    assert parse_int(raw) == expected


def test_parse_int_bounds_and_default():
    assert parse_int("0", minimum=1) is None
    assert parse_int("12", 9, maximum=10) == 9
    assert parse_int("abc", 25) == 25


@given(st.text())
def test_parse_int_never_raises(text):
    value = parse_int(text)
    assert value is None or (isinstance(value, int) and INT64_MIN <= value <= INT64_MAX)


@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
def test_parse_int_reads_back_every_64_bit_integer(n):
    assert parse_int(str(n)) == n


@pytest.mark.parametrize("raw", [
    "2024-02-30", "2024-02-30T00:00:00", "2024-13-01T00:00:00", "2024-01-01T25:00:00",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00", "not a date", "", None,
    "2024-01-01T00:00:00+99:00", "²⁰²⁴-01-01T00:00:00",
])
def test_parse_datetime_refuses_impossible_or_unconvertible_times(raw):
    assert parse_datetime(raw) is None


def test_parse_datetime_reads_iso_times_aware():
    assert parse_datetime("2024-02-29T12:30:00+09:00") == dt.datetime(2024, 2, 29, 3, 30, tzinfo=UTC)
    assert parse_datetime("2024-02-29T12:30:00") == dt.datetime(2024, 2, 29, 12, 30, tzinfo=UTC)


@given(st.text())
def test_parse_datetime_never_raises(text):
    value = parse_datetime(text)
    assert value is None or value.tzinfo is not None


@given(st.datetimes(min_value=dt.datetime(1, 1, 3), max_value=dt.datetime(9999, 12, 29), timezones=st.just(UTC)),
       st.one_of(st.integers(min_value=INT64_MIN, max_value=INT64_MAX), st.text(min_size=1, max_size=60)))
def test_cursor_round_trip(stamp, key):
    if isinstance(key, str) and "\x00" in key:
        key = key.replace("\x00", "x")
    decoded = decode_cursor(encode_cursor(stamp, key), key_type=type(key))
    assert decoded == (stamp, key)


def test_cursor_without_time_only_where_allowed():
    cursor = encode_cursor(None, 5)
    assert decode_cursor(cursor) is None
    assert decode_cursor(cursor, allow_null_stamp=True) == (None, 5)


@pytest.mark.parametrize("raw", [
    "", "not-a-cursor!!", "99999999999999999999999.1", "-1.5", "2024-02-30|x", b64(["2024-02-30T00:00:00+00:00", 1]),
    b64(["0001-01-01T00:00:00+14:00", 1]), b64(["9999-12-31T23:59:59-12:00", 1]), b64("garbage"), b64([1, 2, 3]),
    b64({"a": 1}), b64(["2024-01-01T00:00:00+00:00", 2**64]), b64(["2024-01-01T00:00:00+00:00", True]),
    b64(["2024-01-01T00:00:00+00:00", "ch_1"]), b64(["2024-01-01T00:00:00+00:00", 1.5]), b64([None, 1]),
    base64.urlsafe_b64encode(b"\xff\xfe[1,2]").decode(), "A" * 3000, b64("[" * 100_000),
])
def test_cursor_garbage_is_none(raw):
    assert decode_cursor(raw) is None


def test_cursor_key_type_is_checked():
    cursor = encode_cursor(dt.datetime(2024, 1, 1, tzinfo=UTC), "ch_1")
    assert decode_cursor(cursor) is None
    assert decode_cursor(cursor, key_type=str) == (dt.datetime(2024, 1, 1, tzinfo=UTC), "ch_1")
    assert decode_cursor(encode_cursor(dt.datetime(2024, 1, 1, tzinfo=UTC), "a\x00b"), key_type=str) is None


@settings(max_examples=300)
@given(st.one_of(st.text(), st.binary().map(lambda b: base64.urlsafe_b64encode(b).decode())))
def test_decode_cursor_never_raises(raw):
    for key_type in (int, str):
        decoded = decode_cursor(raw, key_type=key_type, allow_null_stamp=True)
        assert decoded is None or isinstance(decoded[1], key_type)
