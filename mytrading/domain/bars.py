"""Bars from ticks, aligned to the session open (09:15 IST), each handed out once.

A bar covers ``[start, start + tf)`` in market time, where the first bar of the day
starts at the session open; the last bar of a session ends at the session close (so a
1h bar from 15:15 closes at 15:30), and a ``D`` bar spans the whole session. Volume is
what traded in the bar: the cumulative volume of its last trade less that of the last
trade before it (the bar's first trade counts: a bar of one trade has that trade's
volume). Before the first trade a builder sees of a day, the day's volume so far belongs
to the session's first bar (zero before it); a builder that joins mid-session cannot know
what traded before its first tick in that bar, so that bar counts from its first tick.

**When a bar is handed out.** A real feed is late: OpenAlgo stamps a tick with the
exchange's or the broker's time, and it reaches us after network and proxy delay, from a
host whose clock may drift. So a bar closes on the feed's own time, never reopens, and
the clock only closes what has gone quiet (as NautilusTrader's time-bar aggregator and a
stream processor's watermark do):

* **by data** (``closed_by="data"``): the first tick stamped at or after the bar's end
  closes it. This is the normal case for a traded instrument, whatever the lag: a feed a
  minute behind hands each minute once, a minute late, with exactly its own ticks.
* **by the clock** (``closed_by="clock"``): an instrument that has gone quiet gets its
  bar when our clock passes ``end + lag + grace``, where ``lag`` is the instrument's own
  recent delay (arrival less tick time, the peak of recent ticks, decaying at a tenth of
  the time that passes; never below 0) and ``grace`` is ``MT_BAR_GRACE_S`` (2 s).
* **late ticks**: a tick stamped before the end of a bar already handed out (or before
  the bar now forming began) belongs to a minute that is gone. It never reopens it: it
  changes no bar's open, high, low or close, and is counted (``stats.late``, how late at
  worst, ``stats.late_max_ns``) and carried on the next bar handed out (``late_ticks``).
  Its trades are not lost from volume: volume is cumulative, and the next tick carries
  it. A tick from the future (a broker's clock ahead of ours) follows the same rule: it
  falls in the bar its own stamp names, and is counted (``stats.ahead``); one stamped
  more than 15 minutes ahead is a bad stamp, counted and left out of every bar.
* **quotes without a trade**: a tick with the same stamp, price and volume as the one
  before (an illiquid contract whose ``timestamp`` is its last trade time while its
  quotes move) changes no bar and is neither late nor lag.

Every bar the stack makes is made here: the feed's (published and recorded), the
engine's (strategies, indicators), risk's (the Supertrend exit), the backtest's
resampling and the simulator's history. No tick, no bar: nothing is invented. After a
feed outage the feed publishes the missed minutes from history, and the engine joins them
to its own 1-minute bars (``StrategyRunner.on_backfill``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import ClassVar

from mytrading.domain.refdata import IST, Calendar
from mytrading.messaging.wire import Bar, BarClose, Tick

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
DAY_NS = 86_400 * 1_000_000_000
IST_NS = 19_800 * 1_000_000_000  # IST is UTC+05:30 all year
DEFAULT_GRACE_S = 2.0  # MT_BAR_GRACE_S: a quiet instrument's bar waits this long past lag
LAG_DECAY = 10  # the lag estimate falls by 1 s for every 10 s that pass
AHEAD_NS = 1_000_000_000  # a tick stamped more than 1 s past our clock is "ahead"
# A stamp further ahead than this is no clock's offset but a bad stamp: it would close the
# bar forming and make every true tick after it late, so it is counted and left out.
MAX_AHEAD_NS = 15 * 60 * 1_000_000_000
_NEVER = 2**63 - 1  # past any bar's end


@dataclass(slots=True)
class _Open:
    start_ns: int
    end_ns: int
    first_t: int  # stamp of the earliest tick in it (a reordered one may come later)
    open: float
    high: float
    low: float
    close: float
    vol_start: int  # cumulative volume before the bar's first trade
    vol_last: int


@dataclass(slots=True)
class _Line:
    """One instrument's bars: the one forming, how far they have been handed out, the
    last trade seen, its lag and the late ticks since the last bar handed."""

    bar: _Open | None = None
    handed_end: int = 0  # end of the last bar handed out: nothing before it reopens
    last_t: int = 0  # stamp, price and volume of the last trade taken
    last_ltp: float = math.nan
    last_vol: int = -1
    lag: int | None = None  # peak lag (ns) at ``lag_at``, decaying
    lag_at: int = 0
    late: int = 0  # late ticks since the last bar handed out

    def lag_now(self, now_ns: int) -> int:
        if self.lag is None:
            return 0
        return max(self.lag - (now_ns - self.lag_at) // LAG_DECAY, 0)


@dataclass(slots=True)
class BarStats:
    """What a builder saw: bars by how they closed, late and ahead ticks."""

    by_data: int = 0
    by_clock: int = 0
    late: int = 0
    late_max_ns: int = 0  # the latest a late tick was: its arrival past its bar's end
    ahead: int = 0
    ahead_max_ns: int = 0
    quotes_only: int = 0  # ticks with no new trade (same stamp, price and volume)
    by_key: dict[tuple[str, str], int] = field(default_factory=dict)  # late per instrument

    def as_dict(self) -> dict[str, int | float]:
        return {
            "bars_by_data": self.by_data,
            "bars_by_clock": self.by_clock,
            "late_ticks": self.late,
            "late_max_s": round(self.late_max_ns / 1e9, 3),
            "ahead_ticks": self.ahead,
            "ahead_max_s": round(self.ahead_max_ns / 1e9, 3),
        }


class BarBuilder:
    """Bars of one timeframe for any number of instruments.

    ``default_grace_ns`` is the process's ``MT_BAR_GRACE_S`` (each daemon sets it from
    its settings at start, ``process/base.py``); a builder may be given its own."""

    default_grace_ns: ClassVar[int] = int(DEFAULT_GRACE_S * 1e9)

    def __init__(self, calendar: Calendar, tf: str = "1m", grace_ns: int | None = None) -> None:
        if tf not in TIMEFRAMES and tf != DAILY:
            raise ValueError(f"timeframe {tf!r} not in {[*TIMEFRAMES, DAILY]}")
        self.calendar = calendar
        self.tf = tf
        self.tf_ns = TIMEFRAMES.get(tf, 86_400) * 1_000_000_000
        self.grace_ns = BarBuilder.default_grace_ns if grace_ns is None else grace_ns
        self._lines: dict[tuple[str, str], _Line] = {}
        # no open bar ends before this (a bound: a bar handed since may have set it):
        # ``close_due``, called on every loop of a daemon, looks at no line before it
        self._first_end = _NEVER
        self.stats = BarStats()
        self.lag_sample: int | None = None  # the last tick's lag, when it was a new trade
        # (exchange, day ordinal) -> (open ns, close ns) of that day's session
        self._anchor: dict[tuple[str, int], tuple[int, int]] = {}
        # the latest day asked about: (exchange, its 00:00 IST ns, the next day's, session)
        self._last_day: tuple[str, int, int, tuple[int, int]] | None = None

    def _session_ns(self, exchange: str, t_ns: int) -> tuple[int, int]:
        last = self._last_day
        if last is not None and last[0] == exchange and last[1] <= t_ns < last[2]:
            return last[3]  # the same IST day as the last tick's: most ticks
        got = self._session_of(exchange, t_ns)
        day0 = (t_ns + IST_NS) // DAY_NS * DAY_NS - IST_NS  # 00:00 IST of its day
        self._last_day = (exchange, day0, day0 + DAY_NS, got)
        return got

    def _session_of(self, exchange: str, t_ns: int) -> tuple[int, int]:
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
        """Drop every bar in progress (after a data outage it would be incomplete); what
        was handed out stays handed out."""
        for line in self._lines.values():
            line.bar = None

    def on_tick(self, tick: Tick, now_ns: int | None = None) -> Bar | None:
        """Fold a tick in; return the bar it closed, if any. ``now_ns`` is the market
        clock at arrival (None where there is no arrival: a replay, a resample). After
        the call ``lag_sample`` is the tick's lag when it carried a new trade, else None
        (the feed's time watch reads it)."""
        self.lag_sample = None
        key = (tick.exchange, tick.symbol)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line()
        t = tick.exch_ns or (now_ns or 0)  # an unstamped tick: stamped by its arrival
        ltp = tick.ltp
        if t == line.last_t and ltp == line.last_ltp and tick.volume == line.last_vol:
            self.stats.quotes_only += 1
            return None  # no new trade: the bar is as it was
        if now_ns is not None:
            ahead = t - now_ns
            if ahead > AHEAD_NS:
                self.stats.ahead += 1
                if ahead > self.stats.ahead_max_ns:
                    self.stats.ahead_max_ns = ahead
                if ahead > MAX_AHEAD_NS:
                    return None  # a stamp no clock is that far off: not a bar's business
            if t > line.last_t:  # a new trade: its lag counts (the peak, decaying)
                lag = self.lag_sample = -ahead
                peak = line.lag
                if peak is None or lag >= peak - (now_ns - line.lag_at) // LAG_DECAY:
                    line.lag, line.lag_at = lag, now_ns
        cur = line.bar
        if t < (cur.start_ns if cur is not None else line.handed_end):
            self._late(key, line, t, now_ns)
            return None
        newest = t >= line.last_t
        before = line.last_vol  # the cumulative volume of the last trade before this one
        before_t = line.last_t
        if newest:
            line.last_t, line.last_ltp, line.last_vol = t, ltp, tick.volume
        closed = None
        if cur is not None and t >= cur.end_ns:
            closed = self._emit(key, line, cur, "data")
            cur = None
        if cur is None:
            start, end = self.span(tick.exchange, t)
            base = self._volume_before(tick.exchange, start, before, before_t, tick.volume)
            line.bar = _Open(start, end, t, ltp, ltp, ltp, ltp, base, tick.volume)
            if end < self._first_end:
                self._first_end = end
        else:  # ticks out of order within the bar: open and close by stamp, not arrival
            if ltp > cur.high:
                cur.high = ltp
            elif ltp < cur.low:
                cur.low = ltp
            if newest:
                cur.close = ltp
            if t < cur.first_t:
                cur.first_t, cur.open = t, ltp
            if tick.volume > cur.vol_last:
                cur.vol_last = tick.volume
            elif tick.volume < cur.vol_start:
                cur.vol_start = tick.volume
        return closed

    def _volume_before(
        self, exchange: str, start: int, before: int, before_t: int, volume: int
    ) -> int:
        """The cumulative volume a bar starting at ``start`` counts from, its first trade
        having ``volume``: the last trade's before it when that was of the same day (and
        not above it: a day's volume only grows), else 0 for the session's first bar (the
        day's volume so far traded there) and the trade's own for a later one (joined
        mid-session: what came before is not known to be this bar's)."""
        if before >= 0 and before <= volume and self._same_day(exchange, before_t, start):
            return before
        return 0 if start == self._session_ns(exchange, start)[0] else volume

    def _same_day(self, exchange: str, a_ns: int, b_ns: int) -> bool:
        return a_ns > 0 and self._session_ns(exchange, a_ns) == self._session_ns(exchange, b_ns)

    def _late(self, key: tuple[str, str], line: _Line, t: int, now_ns: int | None) -> None:
        st = self.stats
        st.late += 1
        st.by_key[key] = st.by_key.get(key, 0) + 1
        line.late += 1
        # how late: its arrival past the end of the bar it belonged to
        end = self.span(key[0], t)[1]
        how = (now_ns - end) if now_ns is not None else (line.handed_end - t)
        if how > st.late_max_ns:
            st.late_max_ns = how

    def close_due(self, now_ns: int) -> list[Bar]:
        """Every open bar of an instrument gone quiet: our clock past its end, its lag
        and the grace."""
        grace = self.grace_ns
        if now_ns < self._first_end + grace:  # a line's lag only ever adds to the wait
            return []
        out = []
        first = _NEVER
        for key, line in self._lines.items():
            b = line.bar
            if b is None:
                continue
            if now_ns >= b.end_ns + grace + line.lag_now(now_ns):
                out.append(self._emit(key, line, b, "clock"))
            elif b.end_ns < first:
                first = b.end_ns
        self._first_end = first
        return out

    def _emit(self, key: tuple[str, str], line: _Line, b: _Open, how: BarClose) -> Bar:
        line.bar = None
        line.handed_end = b.end_ns
        late, line.late = line.late, 0
        if how == "data":
            self.stats.by_data += 1
        else:
            self.stats.by_clock += 1
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
            closed_by=how,
            late_ticks=late,
        )


SESSION_MINUTES = 375


def lookback_start(today: date, tf: str, bars: int) -> date:
    """A start date far enough back to hold ``bars`` bars of ``tf``, allowing for weekends
    and holidays (1.5 calendar days per trading day, plus a week)."""
    per_day = 1 if tf == DAILY else math.ceil(SESSION_MINUTES * 60 / TIMEFRAMES[tf])
    days = math.ceil(bars / per_day)
    return today - timedelta(days=math.ceil(days * 1.5) + 7)
