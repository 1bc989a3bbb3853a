"""Strike and expiry selection, in OpenAlgo's terms.

Offsets read as OpenAlgo's ``optionsymbol`` reads them: ``ATM``, ``ITMn`` and ``OTMn``
(n = 1..50) count strike steps from the at-the-money strike, in the direction that makes
the option in or out of the money (a CE's ITM strikes are below the spot, a PE's above).
The ATM strike is the listed strike nearest the underlying's price.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from mytrading.domain.refdata import Calendar, RefData, Underlying, option_symbol

OFFSET = re.compile(r"^(ATM|ITM([1-9]|[1-4][0-9]|50)|OTM([1-9]|[1-4][0-9]|50))$")


@dataclass(frozen=True)
class OptionQuote:
    """One row of a chain: what strike selection by premium needs."""

    symbol: str
    strike: float
    right: str  # "CE" | "PE"
    ltp: float


def atm_strike(spot: float, step: float) -> float:
    """The strike nearest the spot; exactly between two, the higher one (``round``'s half
    to even would pick the lower at 24,025 and the higher at 24,075). The one rule for the
    simulator's ``optionsymbol`` and chain, a strategy's selectors, the builder, the
    universes and the chain view: on a tie they all name the same strike."""
    return float(math.floor(spot / step + 0.5) * step)


def strike_for(spot: float, step: float, right: str, offset: str = "ATM") -> float:
    """The strike ``offset`` steps from ATM, e.g. ``strike_for(24_010, 50, "CE", "OTM2")``
    is 24,100 and ``strike_for(24_010, 50, "PE", "OTM2")`` is 23,900."""
    if right not in ("CE", "PE"):
        raise ValueError(f"option type must be CE or PE, got {right!r}")
    m = OFFSET.match(offset)
    if m is None:
        raise ValueError(f"offset must be ATM, ITM1..ITM50 or OTM1..OTM50, got {offset!r}")
    n = 0 if offset == "ATM" else int(offset[3:])
    otm_up = right == "CE"  # a call gets further out of the money as the strike rises
    sign = (1 if otm_up else -1) * (1 if offset.startswith("OTM") else -1)
    return atm_strike(spot, step) + sign * n * step


def nearest_premium(chain: Iterable[OptionQuote], right: str, target: float) -> OptionQuote | None:
    """The option of type ``right`` whose last price is nearest ``target`` (ties: the
    cheaper one, i.e. further out of the money); None if the chain has no priced row."""
    rows = [q for q in chain if q.right == right and q.ltp > 0]
    if not rows:
        return None
    return min(rows, key=lambda q: (abs(q.ltp - target), q.ltp))


def option_expiries(cal: Calendar, u: Underlying, today: date, count: int) -> list[date]:
    """The next ``count`` option expiries on or after ``today`` (weekly where the index
    has weeklies, else monthly), each moved back over holidays. ``Calendar.weekly_expiries``
    and ``monthly_expiries`` give one kind each."""
    out: list[date] = []
    d = today
    while len(out) < count:
        e = cal.near_option_expiry(u, d)
        if not out or e != out[-1]:
            out.append(e)
        d = e + timedelta(days=1)
    return out


def option_for(
    refdata: RefData,
    underlying: str,
    spot: float,
    right: str,
    offset: str = "ATM",
    expiry: date | None = None,
    today: date | None = None,
) -> str:
    """The OpenAlgo symbol of the ``offset`` option on the given (or nearest) expiry."""
    u = refdata.underlying(underlying)
    if expiry is None:
        if today is None:
            raise ValueError("give an expiry or today's date")
        expiry = refdata.calendar.near_option_expiry(u, today)
    return option_symbol(underlying, expiry, strike_for(spot, u.strike_step, right, offset), right)
