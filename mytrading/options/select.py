"""Choosing an option the way option traders and AlgoMirror's builder name one: by expiry
(this week's, next week's, the month's), then by strike: an ATM/ITM/OTM offset, a fixed
strike, the premium nearest a figure or just above or below it, or the delta nearest a
figure. What the Python API (``BaseStrategy.option``) and a builder file's legs use.

Premium and delta need prices: they choose among the chain's quoted rows (``OptionQuote``
with a last price), reading delta from each row's own implied volatility (Black-Scholes on
the index, no carry, as the simulator prices; docs/options.md). A selector with nothing
priced to choose from answers None: the caller asks again once quotes have arrived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal

from mytrading.domain.refdata import IST, Calendar, Underlying
from mytrading.options.chain import OptionQuote, strike_for

ExpiryKind = Literal["weekly", "next_week", "monthly", "next_month"]
EXPIRY_KINDS: tuple[str, ...] = ("weekly", "next_week", "monthly", "next_month")


def expiry_of(cal: Calendar, u: Underlying, today: date, which: ExpiryKind | date) -> date:
    """``weekly``: the nearest option expiry (the monthly for an index without weeklies);
    ``next_week``: the one after; ``monthly``: this month's (or next, once passed);
    ``next_month``: the one after that; a date is taken as given."""
    if isinstance(which, date):
        return which
    if which in ("weekly", "next_week"):
        first = cal.near_option_expiry(u, today)
        if which == "weekly":
            return first
        return cal.near_option_expiry(u, date.fromordinal(first.toordinal() + 1))
    if which in ("monthly", "next_month"):
        months = cal.monthly_expiries(u, today, 2)
        return months[0] if which == "monthly" else months[1]
    raise ValueError(f"expiry must be one of {EXPIRY_KINDS} or a date, got {which!r}")


@dataclass(frozen=True)
class StrikeRule:
    """One way of choosing a strike; exactly one of its fields is set (``offset`` counts
    as set when the others are not)."""

    offset: str = "ATM"
    strike: float | None = None
    premium_near: float | None = None
    premium_above: float | None = None
    premium_below: float | None = None
    delta_near: float | None = None

    def __post_init__(self) -> None:
        given = [
            n
            for n in ("strike", "premium_near", "premium_above", "premium_below", "delta_near")
            if getattr(self, n) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"choose a strike one way, not {given}")
        if self.delta_near is not None and not 0.0 < self.delta_near < 1.0:
            raise ValueError(f"delta_near is an absolute delta in (0, 1), got {self.delta_near}")
        for n in ("premium_near", "premium_above", "premium_below"):
            v = getattr(self, n)
            if v is not None and v <= 0:
                raise ValueError(f"{n} must be a premium above 0, got {v}")
        if not given:
            strike_for(100.0, 1.0, "CE", self.offset)  # ValueError for a bad offset

    @property
    def needs_prices(self) -> bool:
        return any(
            v is not None
            for v in (self.premium_near, self.premium_above, self.premium_below, self.delta_near)
        )


def years_to(expiry: date, now: datetime) -> float:
    """Calendar time to 15:30 IST on the expiry day, in years."""
    end = datetime.combine(expiry, time(15, 30), tzinfo=IST)
    return max((end - now).total_seconds(), 0.0) / (365.0 * 86_400)


def choose(
    rule: StrikeRule,
    right: str,
    spot: float,
    step: float,
    chain: list[OptionQuote] | None = None,
    t_years: float = 0.0,
) -> float | None:
    """The strike ``rule`` picks for an option of type ``right``: from the index's price
    for an offset or a fixed strike; from the chain's priced rows of that type for a
    premium or a delta (None if it has none)."""
    if rule.strike is not None:
        return rule.strike
    if not rule.needs_prices:
        return strike_for(spot, step, right, rule.offset)
    rows = [q for q in (chain or ()) if q.right == right and q.ltp > 0]
    if not rows:
        return None
    if rule.premium_near is not None:
        target = rule.premium_near
        return min(rows, key=lambda q: (abs(q.ltp - target), q.ltp)).strike
    if rule.premium_above is not None:
        above = [q for q in rows if q.ltp >= rule.premium_above]
        return min(above, key=lambda q: q.ltp).strike if above else None
    if rule.premium_below is not None:
        below = [q for q in rows if q.ltp <= rule.premium_below]
        return max(below, key=lambda q: q.ltp).strike if below else None
    assert rule.delta_near is not None
    from mytrading.options.greeks import greeks, iv  # numba: only where a delta is asked

    target = rule.delta_near
    best: tuple[float, float] | None = None
    for q in rows:
        vol = iv(q.ltp, spot, q.strike, t_years, 0.0, right)
        if not vol > 0:  # NaN (no time value to read) or none
            continue
        d = abs(greeks(spot, q.strike, t_years, 0.0, vol, right)[0])
        if math.isfinite(d) and (best is None or abs(d - target) < best[0]):
            best = (abs(d - target), q.strike)
    return best[1] if best else None
