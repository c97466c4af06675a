import json

from django import template

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
    """3.2 s, 4 min, 2 h: for lags and ages."""
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
