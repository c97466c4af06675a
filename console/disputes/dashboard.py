"""The disputes dashboard, `/disputes/insight/`: what finance reads at a glance — open disputes
and the amount at risk per currency, what is due this week, the win rate by reason over the
last 90 days, disputes per 1,000 payments, refunds by reason — as small server-rendered SVG
bar charts (templates/disputes/dashboard.html), no script.

Every figure is one aggregation in the database (five queries in all, whatever the history's
size). Amounts are never added across currencies: each currency is said on its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth.decorators import permission_required
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _, pgettext
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from common.l10n import format_number
from payments import stripe_words
from payments.models import Charge, Dispute, Refund
from payments.money import format_money

WINDOW_DAYS = 90
PERIOD_DAYS = 30  # the rate's bars: three 30-day periods of the window
DUE_DAYS = 7
# Stripe's statuses before a decision; those that still need a response (evidence due).
OPEN = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")
NEEDS_RESPONSE = ("needs_response", "warning_needs_response")
INQUIRY_PREFIX = "warning_"  # inquiries are not chargebacks: the networks don't count them
REFUND_GONE = ("failed", "canceled")

# The chart's geometry (SVG user units): a label column, the bars, the value beside each bar.
CHART_WIDTH = 540
LABEL_WIDTH = 160
BAR_MAX = 160
ROW_HEIGHT = 30
BAR_HEIGHT = 16


# --- selectors ------------------------------------------------------------------------------------


@dataclass
class CurrencyAtRisk:
    currency: str
    open_count: int
    at_risk: int  # minor units
    due_count: int
    due_amount: int

    @property
    def at_risk_label(self) -> str:
        return format_money(self.at_risk, self.currency)


@dataclass
class ReasonOutcome:
    reason: str
    won: int
    lost: int

    @property
    def decided(self) -> int:
        return self.won + self.lost

    @property
    def rate(self) -> float | None:
        return self.won / self.decided if self.decided else None


@dataclass
class Period:
    start: dt.datetime
    end: dt.datetime
    charges: int
    disputes: int

    @property
    def per_thousand(self) -> float | None:
        return self.disputes * 1000 / self.charges if self.charges else None


@dataclass
class RefundReason:
    reason: str
    count: int = 0
    amounts: dict[str, int] = field(default_factory=dict)  # currency → minor units


@dataclass
class Insight:
    now: dt.datetime
    since: dt.datetime
    at_risk: list[CurrencyAtRisk]
    outcomes: list[ReasonOutcome]
    periods: list[Period]
    refunds: list[RefundReason]

    @property
    def open_count(self) -> int:
        return sum(c.open_count for c in self.at_risk)

    @property
    def due_count(self) -> int:
        return sum(c.due_count for c in self.at_risk)

    @property
    def won(self) -> int:
        return sum(o.won for o in self.outcomes)

    @property
    def decided(self) -> int:
        return sum(o.decided for o in self.outcomes)

    @property
    def charges(self) -> int:
        return sum(p.charges for p in self.periods)

    @property
    def disputes(self) -> int:
        return sum(p.disputes for p in self.periods)

    @property
    def per_thousand(self) -> float | None:
        return self.disputes * 1000 / self.charges if self.charges else None


def at_risk(now: dt.datetime) -> list[CurrencyAtRisk]:
    """Open disputes per currency: how many, the amount at risk, and those due within a week."""
    due = Q(status__in=NEEDS_RESPONSE, due_by__gte=now, due_by__lt=now + dt.timedelta(days=DUE_DAYS))
    rows = (Dispute.objects.filter(status__in=OPEN).order_by().values("currency")
            .annotate(n=Count("id"), total=Sum("amount"), due_n=Count("id", filter=due),
                      due_total=Sum("amount", filter=due)))
    out = [CurrencyAtRisk(r["currency"] or "", r["n"], r["total"] or 0, r["due_n"], r["due_total"] or 0)
           for r in rows]
    return sorted(out, key=lambda c: (-c.open_count, c.currency))


def outcomes(since: dt.datetime) -> list[ReasonOutcome]:
    """Won and lost per reason, of the disputes opened since `since` that were decided."""
    rows = (Dispute.objects.filter(created__gte=since, status__in=("won", "lost")).order_by().values("reason")
            .annotate(won=Count("id", filter=Q(status="won")), lost=Count("id", filter=Q(status="lost"))))
    out = [ReasonOutcome(r["reason"] or "", r["won"], r["lost"]) for r in rows]
    return sorted(out, key=lambda o: (-o.decided, o.reason))


def periods(now: dt.datetime) -> list[Period]:
    """Succeeded payments and disputes (inquiries left out) in each 30-day period of the window,
    oldest first: two queries."""
    bounds = [(now - dt.timedelta(days=WINDOW_DAYS - i * PERIOD_DAYS),
               now - dt.timedelta(days=WINDOW_DAYS - (i + 1) * PERIOD_DAYS)) for i in range(WINDOW_DAYS // PERIOD_DAYS)]

    def counts(qs) -> dict:
        return qs.aggregate(**{f"p{i}": Count("id", filter=Q(created__gte=start, created__lt=end))
                               for i, (start, end) in enumerate(bounds)})

    since = bounds[0][0]
    charges = counts(Charge.objects.filter(created__gte=since, created__lt=now, status="succeeded"))
    disputes = counts(Dispute.objects.filter(created__gte=since, created__lt=now)
                      .exclude(status__startswith=INQUIRY_PREFIX))
    return [Period(start, end, charges[f"p{i}"], disputes[f"p{i}"]) for i, (start, end) in enumerate(bounds)]


def refunds_by_reason(since: dt.datetime) -> list[RefundReason]:
    """Refunds made since `since` (failed and canceled ones left out), per reason: how many,
    and the amount in each currency."""
    rows = (Refund.objects.filter(created__gte=since).exclude(status__in=REFUND_GONE).order_by()
            .values("reason", "currency").annotate(n=Count("id"), total=Sum("amount")))
    reasons: dict[str, RefundReason] = {}
    for r in rows:
        reason = reasons.setdefault(r["reason"] or "", RefundReason(r["reason"] or ""))
        reason.count += r["n"]
        currency = r["currency"] or ""
        reason.amounts[currency] = reason.amounts.get(currency, 0) + (r["total"] or 0)
    return sorted(reasons.values(), key=lambda r: (-r.count, r.reason))


def insight(now: dt.datetime | None = None) -> Insight:
    now = now or timezone.now()
    since = now - dt.timedelta(days=WINDOW_DAYS)
    return Insight(now=now, since=since, at_risk=at_risk(now), outcomes=outcomes(since), periods=periods(now),
                   refunds=refunds_by_reason(since))


# --- the charts ----------------------------------------------------------------------------------


@dataclass
class Bar:
    label: str
    value: float  # what the bar's length says
    text: str  # said beside the bar (and in the description)
    tone: str = ""  # "", "ok", "warn", "bad", "muted"
    y: int = 0
    width: int = 0


@dataclass
class Chart:
    id: str
    title: str
    desc: str
    bars: list[Bar]
    empty: str
    width: int = CHART_WIDTH
    label_width: int = LABEL_WIDTH
    bar_max: int = BAR_MAX
    bar_height: int = BAR_HEIGHT

    @property
    def height(self) -> int:
        return ROW_HEIGHT * len(self.bars) + 4

    @property
    def label_x(self) -> int:
        return self.label_width - 10

    @property
    def track_end(self) -> int:
        return self.label_width + self.bar_max


def chart(id: str, title: str, bars: list[Bar], *, empty: str, scale: float | None = None) -> Chart:
    """Lay the bars out: each one's length in proportion to `scale` (default: the largest)."""
    top = scale or max((b.value for b in bars), default=0) or 1
    for i, b in enumerate(bars):
        b.y = i * ROW_HEIGHT + 2
        b.width = max(2, round(BAR_MAX * min(b.value, top) / top)) if b.value > 0 else 0
    desc = "; ".join(f"{b.label}: {b.text}" for b in bars) or empty
    return Chart(id=id, title=title, desc=desc, bars=bars, empty=empty)


def _amounts(amounts: dict[str, int]) -> str:
    return " · ".join(format_money(a, c) for c, a in sorted(amounts.items()) if c)


def _percent(rate: float | None) -> str:
    return "—" if rate is None else pgettext("percent", "%(n)s%%") % {"n": format_number(round(rate * 100))}


def _per_thousand(rate: float | None) -> str:
    return "—" if rate is None else format_number(round(rate, 1))


def _period_label(i: int, count: int) -> str:
    """The i-th of `count` 30-day periods, oldest first: "60–90 days ago" … "Last 30 days"."""
    newer = (count - 1 - i) * PERIOD_DAYS
    if newer == 0:
        return _("Last %(days)s days") % {"days": PERIOD_DAYS}
    return _("%(newer)s–%(older)s days ago") % {"newer": newer, "older": newer + PERIOD_DAYS}


def charts(data: Insight) -> dict[str, Chart]:
    open_bars = [Bar(c.currency.upper() or "—", c.open_count,
                     _("%(count)s open · %(amount)s at risk") % {
                         "count": format_number(c.open_count), "amount": format_money(c.at_risk, c.currency)},
                     "warn") for c in data.at_risk]
    due_bars = [Bar(c.currency.upper() or "—", c.due_count,
                    _("%(count)s due · %(amount)s") % {
                        "count": format_number(c.due_count), "amount": format_money(c.due_amount, c.currency)},
                    "bad") for c in data.at_risk if c.due_count]
    win_bars = [Bar(stripe_words.label("dispute.reason", o.reason) or _("No reason given"), o.rate or 0,
                    _("%(rate)s won (%(won)s of %(decided)s)") % {
                        "rate": _percent(o.rate), "won": format_number(o.won), "decided": format_number(o.decided)},
                    "ok" if (o.rate or 0) >= 0.5 else "warn") for o in data.outcomes]
    rate_bars = [Bar(_period_label(i, len(data.periods)), p.per_thousand or 0,
                     _("%(rate)s (%(disputes)s of %(charges)s payments)") % {
                         "rate": _per_thousand(p.per_thousand), "disputes": format_number(p.disputes),
                         "charges": format_number(p.charges)},
                     "bad" if (p.per_thousand or 0) >= 7.5 else "warn" if (p.per_thousand or 0) >= 5 else "")
                 for i, p in enumerate(data.periods)] if data.charges else []
    refund_bars = [Bar(stripe_words.label("refund.reason", r.reason) or _("No reason given"), r.count,
                       _("%(count)s · %(amounts)s") % {"count": format_number(r.count), "amounts": _amounts(r.amounts)})
                   for r in data.refunds]
    return {
        "open": chart("chart-open", _("Open disputes and amount at risk, per currency"), open_bars,
                      empty=_("No open disputes.")),
        "due": chart("chart-due", _("Evidence due in the next 7 days, per currency"), due_bars,
                     empty=_("Nothing is due in the next 7 days.")),
        "wins": chart("chart-wins", _("Win rate by reason, disputes opened in the last 90 days"), win_bars,
                      empty=_("No dispute opened in the last 90 days has been decided yet."), scale=1),
        "rate": chart("chart-rate", _("Disputes per 1,000 payments, 30 days at a time"), rate_bars,
                      empty=_("No payments in the last 90 days.")),
        "refunds": chart("chart-refunds", _("Refunds by reason, last 90 days"), refund_bars,
                         empty=_("No refunds in the last 90 days.")),
    }


# --- the page ---------------------------------------------------------------------------------


TEMPLATE = "disputes/dashboard.html"


@require_GET
@vary_on_headers("HX-Request")
@permission_required("payments.submit_dispute_evidence", raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    data = insight()
    context = {
        "insight": data, "charts": charts(data), "nav": "disputes",
        "win_rate": _percent(data.won / data.decided if data.decided else None),
        "per_thousand": _per_thousand(data.per_thousand),
    }
    return render(request, TEMPLATE + ("#insight" if request.htmx else ""), context)
