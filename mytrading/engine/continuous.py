"""Continuous-future history: one series for a strategy that rolls, stitched from the
monthly contracts it would have held.

For a future F and a lookback from ``start``, the series is F's own bars from the day the
contract before it rolled into F (``roll_days`` trading days before that contract's
expiry; with 0, the day after its expiry) and, before that day, the previous contract's
bars, and so on back to ``start``: the next contract's bars after each roll date, as
the strategy would have seen them live. Every bar carries F's symbol.

``adjust``:

* ``none`` (the default): prices as traded. An indicator sees the step of each roll (the
  later month's carry, about 0.5 % a month for an index).
* ``back``: additive back-adjustment: at each roll, the gap between the two contracts'
  closes on the last day before the switch is added to every earlier bar, so the series
  has no step at the roll and its latest prices are F's own. Use it for indicators of
  price levels and differences over a long lookback; do not compare its old prices with
  what traded then.

A contract whose history the broker no longer serves (most brokers drop expired
contracts) ends the series there, with a log line: warm-up gets fewer bars, never
wrong ones.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import msgspec
import structlog

from mytrading.domain.refdata import IST, RefData, future_symbol
from mytrading.messaging import wire
from mytrading.openalgo.history import HistoryError, HistoryFn

log = structlog.get_logger("engine")

Adjust = str  # "none" | "back"


def roll_date(refdata: RefData, exchange: str, expiry: date, roll_days: int) -> date:
    """The first day a strategy with ``roll_days`` holds the next contract instead of
    the one expiring on ``expiry``."""
    cal = refdata.calendar
    if roll_days <= 0:
        d = expiry + timedelta(days=1)
        while not cal.is_trading_day(exchange, d):
            d += timedelta(days=1)
        return d
    d, left = expiry, 0
    while left < roll_days:
        d -= timedelta(days=1)
        if cal.is_trading_day(exchange, d):
            left += 1
    return d


def _day(bar: wire.Bar) -> date:
    return datetime.fromtimestamp(bar.start_ns / 1e9, IST).date()


def continuous(
    history: HistoryFn,
    refdata: RefData,
    exchange: str,
    symbol: str,
    tf: str,
    start: date,
    end: date,
    roll_days: int,
    adjust: Adjust = "none",
) -> list[wire.Bar]:
    """The stitched series of the module's docstring, oldest first, one history call
    per contract. The contract asked for must have history (its ``HistoryError`` is
    raised); an older one without any ends the series."""
    inst = refdata.instrument(exchange, symbol)
    u = refdata.underlying(inst.underlying)
    cal = refdata.calendar
    segments: list[list[wire.Bar]] = []  # newest first
    gaps: list[float] = []  # gaps[i]: added to segments[i + 1] and everything older
    newer_eve: list[wire.Bar] = []  # the newer contract's bars on the eve of its switch
    cur, expiry, seg_end = symbol, inst.expiry, end
    assert expiry is not None
    while True:
        before_month = expiry.replace(day=1) - timedelta(days=1)
        prev_expiry = cal.monthly_expiry(u, before_month.year, before_month.month)
        switch = roll_date(refdata, exchange, prev_expiry, roll_days)  # first day held
        eve = switch - timedelta(days=1)
        while not cal.is_trading_day(exchange, eve):
            eve -= timedelta(days=1)
        lo = max(start, eve)
        try:
            bars = history(exchange, cur, tf, lo, seg_end) if lo <= seg_end else []
        except HistoryError:
            if not segments:
                raise
            bars = []
        if segments and not bars:
            log.info("continuous history ends: no bars", symbol=cur, before=str(seg_end))
            break
        seg = [b for b in bars if _day(b) >= switch]
        if segments:
            eve_day = _day(newer_eve[-1]) if newer_eve else None
            same = [b for b in seg if _day(b) == eve_day]
            gaps.append(newer_eve[-1].close - same[-1].close if same else 0.0)
        segments.append(seg)
        newer_eve = [b for b in bars if _day(b) < switch]
        if switch <= start:
            break
        cur, expiry = future_symbol(inst.underlying, prev_expiry), prev_expiry
        seg_end = switch - timedelta(days=1)
    out: list[wire.Bar] = []
    shift = 0.0
    for i, seg in enumerate(segments):
        if i and adjust == "back":
            shift += gaps[i - 1]
        out += [_as(b, symbol, shift) for b in reversed(seg)]
    out.reverse()
    return out


def _as(bar: wire.Bar, symbol: str, shift: float) -> wire.Bar:
    if shift == 0.0 and bar.symbol == symbol:
        return bar
    return msgspec.structs.replace(
        bar,
        symbol=symbol,
        open=round(bar.open + shift, 2),
        high=round(bar.high + shift, 2),
        low=round(bar.low + shift, 2),
        close=round(bar.close + shift, 2),
    )
