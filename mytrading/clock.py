"""Market time. Live it is the wall clock; on the simulated market it may run faster.

Every daemon builds the same clock from the same settings: market time at the anchor
(``MT_SIM_START``), the wall instant of the anchor (``MT_CLOCK_ANCHOR_NS``, set once by
the launcher for the whole stack) and the speed. So a bar closes at the same market
instant in the feed, the engine and risk, and a restarted daemon rejoins the same clock.
Latency and heartbeats always use wall time (``time.time_ns``), never market time.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from datetime import time as dtime

from mytrading.refdata import IST, Calendar


class MarketClock:
    def __init__(self, anchor_wall_ns: int, anchor_market_ns: int, speed: float) -> None:
        self.anchor_wall_ns = anchor_wall_ns
        self.anchor_market_ns = anchor_market_ns
        self.speed = speed

    @classmethod
    def wall(cls) -> MarketClock:
        now = time.time_ns()
        return cls(now, now, 1.0)

    def now_ns(self) -> int:
        return self.anchor_market_ns + int((time.time_ns() - self.anchor_wall_ns) * self.speed)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ns() / 1e9, IST)

    def wall_seconds(self, market_seconds: float) -> float:
        """How long a span of market time lasts on the wall."""
        return market_seconds / self.speed


def sim_start(spec: str, cal: Calendar, today: date | None = None) -> datetime:
    """Market time at which the simulation starts: the given instant, or 09:15 IST of
    the last trading day on or before today (so a demo started on a Sunday trades
    Friday's session instead of meeting a closed market)."""
    if spec:
        dt = datetime.fromisoformat(spec)
        if isinstance(dt, datetime) and "T" not in spec and " " not in spec:
            dt = datetime.combine(dt.date(), dtime(9, 15))
        return dt if dt.tzinfo else dt.replace(tzinfo=IST)
    d = cal.last_trading_day("NSE", today or datetime.now(IST).date())
    return datetime.combine(d, cal.session("NSE").open, tzinfo=IST)


def build_clock(settings, cal: Calendar) -> MarketClock:  # settings: Settings
    if settings.broker != "sim":
        return MarketClock.wall()
    start = sim_start(settings.sim_start, cal)
    anchor = settings.clock_anchor_ns or time.time_ns()
    return MarketClock(anchor, int(start.timestamp() * 1e9), settings.sim_speed)
