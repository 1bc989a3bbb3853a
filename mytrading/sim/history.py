"""Bars for the ``history`` endpoint, from the simulator's own ticks.

The simulator keeps the 1-minute bars it built (a bounded window per symbol) and derives
longer intervals by aggregating them, aligned to the 09:15 session open like the feed's
bars. Daily bars are stamped 00:00 UTC of the trading date, as OpenAlgo's server does.
"""

from __future__ import annotations

import collections
import itertools
from datetime import UTC, date, datetime, time, timedelta

from mytrading.domain.bars import TIMEFRAMES, BarBuilder
from mytrading.domain.refdata import IST, Calendar
from mytrading.messaging.wire import Bar, Tick

KEEP_1M_BARS = 5 * 375  # five sessions of 1-minute bars per symbol
SUPPORTED = (*TIMEFRAMES, "D")


class BarStore:
    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self.builder = BarBuilder(calendar, "1m", grace_ns=0)  # its own clock stamps: no lag
        self.bars: dict[tuple[str, str], collections.deque[Bar]] = collections.defaultdict(
            lambda: collections.deque(maxlen=KEEP_1M_BARS)
        )

    def preload(self, bars: list[Bar]) -> None:
        """Bars from before the server started (oldest first per symbol)."""
        for bar in bars:
            self.bars[(bar.exchange, bar.symbol)].append(bar)

    def on_tick(self, tick: Tick) -> None:
        bar = self.builder.on_tick(tick)
        if bar is not None:
            self.bars[(bar.exchange, bar.symbol)].append(bar)

    def close_due(self, now_ns: int) -> None:
        for bar in self.builder.close_due(now_ns):
            self.bars[(bar.exchange, bar.symbol)].append(bar)

    def history(
        self,
        exchange: str,
        symbol: str,
        interval: str,
        start: date,
        end: date,
        bars: list[Bar] | None = None,
    ) -> list[dict]:
        """Rows ``{timestamp (epoch s), open, high, low, close, volume, oi}`` in the range,
        from ``bars`` (1-minute, oldest first) when given, else the symbol's own."""
        lo = int(datetime.combine(start, time(0), tzinfo=IST).timestamp()) * 1_000_000_000
        hi = int(datetime.combine(end + timedelta(days=1), time(0), tzinfo=IST).timestamp())
        hi *= 1_000_000_000  # the range's days in IST, as bounds on the bars' starts
        src = [
            b
            for b in (self.bars.get((exchange, symbol), ()) if bars is None else bars)
            if lo <= b.start_ns < hi
        ]
        if interval == "1m":
            keys = [b.start_ns // 1_000_000_000 for b in src]
            if all(a < b for a, b in itertools.pairwise(keys)):  # one bar a minute
                return [
                    {"timestamp": k, "open": b.open, "high": b.high, "low": b.low,
                     "close": b.close, "volume": b.volume, "oi": 0}
                    for k, b in zip(keys, src, strict=True)
                ]  # fmt: skip
        groups: dict[int, list[Bar]] = {}
        if interval == "1m":  # a minute's bar is its own group
            for b in src:
                groups.setdefault(b.start_ns // 1_000_000_000, []).append(b)
        else:
            for b in src:
                groups.setdefault(self._key(b, interval), []).append(b)
        return [
            {
                "timestamp": k,
                "open": g[0].open,
                "high": max(x.high for x in g),
                "low": min(x.low for x in g),
                "close": g[-1].close,
                "volume": sum(x.volume for x in g),
                "oi": 0,
            }
            for k, g in sorted(groups.items())
        ]

    def _key(self, b: Bar, interval: str) -> int:
        local = datetime.fromtimestamp(b.start_ns / 1e9, IST)
        if interval == "D":
            return int(datetime.combine(local.date(), datetime.min.time(), tzinfo=UTC).timestamp())
        tf = TIMEFRAMES[interval]
        opening = datetime.combine(local.date(), self.calendar.session(b.exchange).open, tzinfo=IST)
        base = int(opening.timestamp())
        start = b.start_ns // 1_000_000_000
        return base + (start - base) // tf * tf
