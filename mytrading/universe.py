"""Which instruments the stack quotes: each index, its near future, and an option strip.

The simulated market generates prices for exactly this list, and the live feed subscribes
to exactly this list, so the engine sees the same symbols either way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from mytrading.refdata import Instrument, RefData, future_symbol, option_symbol


def universe(
    refdata: RefData,
    underlyings: list[str],
    day: date,
    strikes: int,
    spot_of: Callable[[str], float],
) -> list[Instrument]:
    """Spot, near-month future, and CE/PE at ATM +- ``strikes`` for the nearest expiry.

    ``spot_of(name)`` gives the index level that decides the ATM strike (the simulated
    market's start level, or a live quote).
    """
    cal = refdata.calendar
    out: list[Instrument] = []
    for name in underlyings:
        u = refdata.underlying(name)
        out.append(refdata.instrument(u.spot_exchange, name))
        fut = future_symbol(name, cal.near_future_expiry(u, day))
        out.append(refdata.instrument(u.fo_exchange, fut))
        expiry = cal.near_option_expiry(u, day)
        atm = round(spot_of(name) / u.strike_step) * u.strike_step
        for k in range(-strikes, strikes + 1):
            for right in ("CE", "PE"):
                sym = option_symbol(name, expiry, atm + k * u.strike_step, right)
                out.append(refdata.instrument(u.fo_exchange, sym))
    return out
