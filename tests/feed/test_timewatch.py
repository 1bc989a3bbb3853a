"""The feed's watch on time: lag per source and minute, the broker's clock from ticks and
from the ping (feed/timewatch.py)."""

from __future__ import annotations

from datetime import datetime

from mytrading.domain.bars import BarBuilder
from mytrading.domain.refdata import IST, RefData
from mytrading.feed.timewatch import TimeWatch
from mytrading.messaging.wire import Tick
from mytrading.process.status import clock_offset_s, time_line

S = 1_000_000_000
MS = 1_000_000


def test_lag_per_source_and_minute_from_new_trades_only(refdata: RefData) -> None:
    """The builder measures each new trade's lag (``lag_sample``); an illiquid contract's
    quotes under its old stamp are no sample; the watch sums a minute up per source."""
    w, b = TimeWatch(), BarBuilder(refdata.calendar, "1m")
    t0 = int(datetime(2026, 11, 20, 10, 0, tzinfo=IST).timestamp()) * S
    assert not w.roll(t0)

    def take(symbol: str, stamp: int, arrival: int, ltp: float = 100.0) -> None:
        tick = Tick(exchange="NFO", symbol=symbol, ltp=ltp, bid=1, ask=2, bid_qty=1,
                    ask_qty=1, volume=5, exch_ns=stamp)  # fmt: skip
        b.on_tick(tick, arrival)
        if b.lag_sample is not None:
            w.sample("main", b.lag_sample)

    for i in range(100):  # 100 trades, 200..299 ms late
        stamp = t0 + i * 100 * MS
        take("X", stamp, stamp + (200 + i) * MS, 100.0 + i)
    for _ in range(50):  # an illiquid contract's quotes under its old stamp: not lag
        take("ILLIQ", t0 - 300 * S, t0 + 5 * S)
    assert not w.roll(t0 + 59 * S)
    assert w.roll(t0 + 60 * S)
    d = w.detail()
    lag = d["lag"]["main"]
    assert lag["ticks"] == 101  # one of the illiquid contract's: its first trade
    assert 245 <= lag["p50_ms"] <= 255 and 295 <= lag["p99_ms"] <= 300_000
    assert d["clock_offset_ticks_s"] == -0.2  # the freshest tick: 200 ms "behind"


def test_the_ping_is_the_offset_to_judge_by() -> None:
    w = TimeWatch()
    w.pong(server_ms=10_060_000.0, sent_ms=10_000_000.0, received_ms=10_000_040.0)
    d = w.detail()
    assert d["clock_offset_ping_s"] == 59.98 and d["ping_rtt_ms"] == 40.0
    assert clock_offset_s({**d, "clock_offset_ticks_s": -1.0}) == 59.98
    assert clock_offset_s({"clock_offset_ticks_s": -1.0}) == -1.0
    assert clock_offset_s({}) is None
    assert "broker clock +59.98 s vs ours" in time_line(d)
    # a pong held up on its way back (3 s round trip, the server's stamp early in it)
    # would read the clock 1.5 s further off: the quick round trip before it stands
    w.pong(server_ms=20_060_000.0, sent_ms=20_000_000.0, received_ms=20_003_000.0)
    assert w.detail()["clock_offset_ping_s"] == 59.98
