import datetime as dt
import json

from django import template

from common.l10n import format_span
from payments.money import format_money

register = template.Library()


@register.filter
def money(amount, currency):
    return format_money(amount, currency)


@register.filter
def pretty_json(value):
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.filter
def attr(obj, name):
    """A model attribute by name, for tables whose columns are data."""
    return getattr(obj, name, "")


@register.filter
def duration(seconds):
    """3 sec, 4 min, 2 hr / 3秒, 4分, 2時間: for lags and ages, in the reader's language."""
    if seconds is None:
        return "—"
    return format_span(dt.timedelta(seconds=max(0.0, float(seconds))), short=True)
