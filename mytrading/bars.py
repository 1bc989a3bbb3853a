"""Bars from ticks, aligned to the session open (09:15 IST), closed by time.

A bar covers ``[start, start + tf)`` in market time, where the first bar of the day
starts at the session open; the last bar of a session ends at the session close (so a
1h bar from 15:15 closes at 15:30), and a ``D`` bar spans the whole session. A bar is
published when a tick arrives past its end or
when the clock passes its end (``close_due``), whichever comes first, so a quiet
instrument still gets its bar on time. Volume is the change of the cumulative volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from mytrading.refdata import IST, Calendar
from mytrading.wire import Bar, Tick

TIMEFRAMES: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "10m": 600,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
}
DAILY = "D"  # one bar per session


@dataclass
class _Open:
    start_ns: int
    end_ns: int
    open: float
    high: float
    low: float
    close: float
    vol_start: int
    vol_last: int


class BarBuilder:
    def __init__(self, calendar: Calendar, tf: str = "1m") -> None:
        if tf not in TIMEFRAMES and tf != DAILY:
            raise ValueError(f"timeframe {tf!r} not in {[*TIMEFRAMES, DAILY]}")
        self.calendar = calendar
        self.tf = tf
        self.tf_ns = TIMEFRAMES.get(tf, 86_400) * 1_000_000_000
        self._bars: dict[tuple[str, str], _Open] = {}
        # (exchange, day ordinal) -> (open ns, close ns) of that day's session
        self._anchor: dict[tuple[str, int], tuple[int, int]] = {}

    def _session_ns(self, exchange: str, t_ns: int) -> tuple[int, int]:
        local = datetime.fromtimestamp(t_ns / 1e9, IST)
        key = (exchange, local.date().toordinal())
        ns = self._anchor.get(key)
        if ns is None:
            s = self.calendar.session(exchange)
            hours = self.calendar.hours(exchange, local.date()) or (s.open, s.close)
            o, c = (
                int(datetime.combine(local.date(), t, tzinfo=IST).timestamp()) * 1_000_000_000
                for t in hours
            )
            ns = self._anchor[key] = (o, c)
        return ns

    def span(self, exchange: str, t_ns: int) -> tuple[int, int]:
        """(start, end) of the bar that holds ``t_ns``."""
        base, close = self._session_ns(exchange, t_ns)
        if self.tf == DAILY:
            return base, max(close, t_ns + 1)
        start = base + ((t_ns - base) // self.tf_ns) * self.tf_ns
        end = start + self.tf_ns
        return start, close if start < close < end else end

    def _bucket(self, exchange: str, t_ns: int) -> int:
        return self.span(exchange, t_ns)[0]

    def bucket_start(self, t_ns: int, exchange: str = "NSE") -> int:
        """Start of the bar that contains market time ``t_ns``."""
        return self._bucket(exchange, t_ns)

    def discard_open(self) -> None:
        """Drop every bar in progress (after a data outage it would be incomplete)."""
        self._bars.clear()

    def on_tick(self, tick: Tick) -> Bar | None:
        """Fold a tick in; return the bar it closed, if any."""
        key = (tick.exchange, tick.symbol)
        cur = self._bars.get(key)
        closed = None
        if cur is not None and tick.exch_ns >= cur.end_ns:
            closed = self._emit(key, cur)
            cur = None
        if cur is None:
            start, end = self.span(tick.exchange, tick.exch_ns)
            self._bars[key] = _Open(
                start,
                end,
                tick.ltp,
                tick.ltp,
                tick.ltp,
                tick.ltp,
                tick.volume,
                tick.volume,
            )
        else:
            cur.high = max(cur.high, tick.ltp)
            cur.low = min(cur.low, tick.ltp)
            cur.close = tick.ltp
            cur.vol_last = tick.volume
        return closed

    def close_due(self, now_ns: int) -> list[Bar]:
        """Every open bar whose end the clock has passed."""
        due = [k for k, b in self._bars.items() if now_ns >= b.end_ns]
        return [self._emit(k, self._bars[k]) for k in due]

    def _emit(self, key: tuple[str, str], b: _Open) -> Bar:
        del self._bars[key]
        return Bar(
            exchange=key[0],
            symbol=key[1],
            tf=self.tf,
            start_ns=b.start_ns,
            open=b.open,
            high=b.high,
            low=b.low,
            close=b.close,
            volume=max(0, b.vol_last - b.vol_start),
        )


SESSION_MINUTES = 375


def lookback_start(today: date, tf: str, bars: int) -> date:
    """A start date far enough back to hold ``bars`` bars of ``tf``, allowing for weekends
    and holidays (1.5 calendar days per trading day, plus a week)."""
    per_day = 1 if tf == DAILY else math.ceil(SESSION_MINUTES * 60 / TIMEFRAMES[tf])
    days = math.ceil(bars / per_day)
    return today - timedelta(days=math.ceil(days * 1.5) + 7)
