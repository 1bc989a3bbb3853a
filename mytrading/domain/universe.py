"""Which instruments the stack quotes: each index, its near and next futures (the next
is what a roll opens), and an option strip; each stock (config/stocks.toml), its near and
next futures and, if asked, an option strip.

The simulated market generates prices for exactly this list, and the live feed subscribes
to exactly this list, so the engine sees the same symbols either way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from mytrading.domain.refdata import Instrument, RefData, future_symbol, option_symbol
from mytrading.options.chain import atm_strike

ALL = "*"


def quoted(refdata: RefData, underlyings: list[str], stocks: list[str]) -> list[str]:
    """The names to quote: the indices asked for, then the stocks (``*``: every stock in
    config/stocks.toml)."""
    every = [n for n, u in refdata.underlyings.items() if u.kind == "STOCK"]
    wanted = every if ALL in stocks else [s for s in stocks if s]
    for s in wanted:
        if refdata.underlying(s).kind != "STOCK":  # RefDataError for an unknown name
            raise ValueError(f"{s} is not a stock in config/stocks.toml")
    return [*underlyings, *[s for s in wanted if s not in underlyings]]


def universe(
    refdata: RefData,
    underlyings: list[str],
    day: date,
    strikes: int,
    spot_of: Callable[[str], float],
    stock_strikes: int = -1,
) -> list[Instrument]:
    """Spot (an index, or a stock's equity), near- and next-month futures, and CE/PE at ATM +-
    ``strikes`` (``stock_strikes`` for a stock; -1: none) for the nearest expiry.

    ``spot_of(name)`` gives the level that decides the ATM strike (the simulated market's
    start level, or a live quote).
    """
    cal = refdata.calendar
    out: list[Instrument] = []
    for name in underlyings:
        u = refdata.underlying(name)
        out.append(refdata.instrument(u.spot_exchange, name))
        if not u.fno:
            continue
        near = cal.near_future_expiry(u, day)
        for expiry in (near, cal.near_future_expiry(u, near + timedelta(days=1))):
            out.append(refdata.instrument(u.fo_exchange, future_symbol(name, expiry)))
        n = stock_strikes if u.kind == "STOCK" else strikes  # a stock's -1: no options
        if n < 0:
            continue
        expiry = cal.near_option_expiry(u, day)
        atm = atm_strike(spot_of(name), u.strike_step)
        for k in range(-n, n + 1):
            for right in ("CE", "PE"):
                sym = option_symbol(name, expiry, atm + k * u.strike_step, right)
                out.append(refdata.instrument(u.fo_exchange, sym))
    return out


def at_sim_levels(
    refdata: RefData,
    underlyings: list[str],
    stocks: list[str],
    day: date,
    strikes: int,
    stock_strikes: int = -1,
) -> list[Instrument]:
    """``universe`` of the indices and stocks ``quoted`` names, each strip around its
    simulated start level: what the simulated market quotes for these settings (a
    strategy that watches all of it, as the benchmarks' do)."""
    names = quoted(refdata, underlyings, stocks)
    return universe(
        refdata, names, day, strikes, lambda n: refdata.underlying(n).sim_spot, stock_strikes
    )
