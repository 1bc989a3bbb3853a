"""Market time. Live it is the wall clock; on the simulated market it may run faster.

Every daemon builds the same clock from the same settings: market time at the anchor
(``MT_SIM_START``), the wall instant of the anchor (``MT_CLOCK_ANCHOR_NS``, set once by
the launcher for the whole stack) and the speed. So a bar closes at the same market
instant in the feed, the engine and risk, and a restarted daemon rejoins the same clock.
Latency and heartbeats always use wall time (``time.time_ns``), never market time.
"""

from __future__ import annotations

import bisect
import itertools
from datetime import date, datetime, timedelta
from datetime import time as dtime

from mytrading import hosttime
from mytrading.domain.refdata import IST, Calendar


class MarketClock:
    """Wall time, or (simulated) market time that advances only while an exchange is open.

    With ``sessions`` given, market time runs through the continuous session of each
    trading day in turn: after 15:30 it resumes at 09:15 of the next trading day, so a
    long-running simulation never sits in a closed market.
    """

    def __init__(
        self,
        anchor_wall_ns: int,
        anchor_market_ns: int,
        speed: float,
        sessions: list[tuple[int, int]] | None = None,
    ) -> None:
        self.anchor_wall_ns = anchor_wall_ns
        self.anchor_market_ns = anchor_market_ns
        self.speed = speed
        self.sessions = sessions  # [(open_ns, close_ns)] of consecutive trading days
        self._start_offset = 0
        # market time run through before each session: now_ns finds its session by
        # bisection (a year and a half of sessions, asked on every tick)
        self._before: list[int] = []
        if sessions:
            o, c = sessions[0]
            self._start_offset = min(max(anchor_market_ns - o, 0), c - o - 1)
            self._before = list(itertools.accumulate((c - o for o, c in sessions), initial=0))

    @classmethod
    def wall(cls) -> MarketClock:
        now = hosttime.time_ns()
        return cls(now, now, 1.0)

    def now_ns(self) -> int:
        return self.market_at(hosttime.time_ns())

    def market_at(self, wall_ns: int) -> int:
        """The market time (ns) it was, or will be, at the wall time ``wall_ns``."""
        elapsed = int((wall_ns - self.anchor_wall_ns) * self.speed)
        if not self.sessions:
            return self.anchor_market_ns + elapsed
        t = self._start_offset + max(elapsed, 0)
        i = bisect.bisect_right(self._before, t) - 1
        if i < len(self.sessions):
            return self.sessions[i][0] + t - self._before[i]
        return self.sessions[-1][1] - 1_000_000  # past the calendar: 1 ms before the close

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ns() / 1e9, IST)


def trading_sessions(
    cal: Calendar,
    first: date,
    days: int,
    exchange: str = "NSE",
    skip: tuple[dtime, dtime] | None = None,
) -> list[tuple[int, int]]:
    """(open_ns, close_ns) of the next ``days`` trading days from ``first``; with
    ``skip``, each day in two pieces around it (market time jumps over it). Worked out
    once per calendar and question: each daemon's clock asks for a year and a half."""
    key = (first, days, exchange, skip)
    got = _SESSIONS.get((id(cal), key))
    if got is not None and got[0] is cal:
        return list(got[1])
    out = _trading_sessions(cal, first, days, exchange, skip)
    if len(_SESSIONS) > 64:
        _SESSIONS.clear()
    _SESSIONS[(id(cal), key)] = (cal, out)
    return list(out)


# (id(calendar), question) -> (the calendar, its answer): the calendar kept alive with
# its answer, so its id cannot be another calendar's
_SESSIONS: dict[tuple[int, tuple[object, ...]], tuple[Calendar, list[tuple[int, int]]]] = {}


def _trading_sessions(
    cal: Calendar,
    first: date,
    days: int,
    exchange: str,
    skip: tuple[dtime, dtime] | None,
) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    d = first
    n = 0
    while n < days:
        hrs = cal.hours(exchange, d)  # a special session's too (a Saturday's, Muhurat)
        if hrs is not None:
            n += 1
            spans = [hrs]
            if skip is not None and hrs[0] < skip[0] < skip[1] < hrs[1]:
                spans = [(hrs[0], skip[0]), (skip[1], hrs[1])]
            for a, b in spans:
                o = datetime.combine(d, a, tzinfo=IST)
                c = datetime.combine(d, b, tzinfo=IST)
                out.append((int(o.timestamp()) * 10**9, int(c.timestamp()) * 10**9))
        d += timedelta(days=1)
    return out


def sim_start(spec: str, cal: Calendar, today: date | None = None) -> datetime:
    """Market time at which the simulation starts: the given instant, or 09:15 IST of
    the last trading day on or before today (so a demo started on a Sunday trades
    Friday's session instead of meeting a closed market)."""
    if spec:
        dt = datetime.fromisoformat(spec)
        if isinstance(dt, datetime) and "T" not in spec and " " not in spec:
            dt = datetime.combine(dt.date(), dtime(9, 15))
        return dt if dt.tzinfo else dt.replace(tzinfo=IST)
    d = cal.last_trading_day("NSE", today or hosttime.now(IST).date())
    return datetime.combine(d, cal.session("NSE").open, tzinfo=IST)


def build_clock(settings, cal: Calendar) -> MarketClock:  # settings: Settings
    if not settings.simulated():
        return MarketClock.wall()
    start = sim_start(settings.sim.start, cal)
    anchor = settings.clock_anchor_ns or hosttime.time_ns()
    # enough for a year and a half
    sessions = trading_sessions(cal, start.date(), 370, skip=settings.sim.skipped())
    return MarketClock(anchor, int(start.timestamp() * 1e9), settings.sim.speed, sessions)
