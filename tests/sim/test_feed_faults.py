"""The simulator's messy feed (sim/server/feedfaults.py): what each setting does to a
tick, seeded."""

from __future__ import annotations

from mytrading.messaging.wire import Tick
from mytrading.settings import SimSettings
from mytrading.sim.server.feedfaults import FeedPlan

S = 1_000_000_000


def tick(symbol: str, t: int, ltp: float, vol: int, bid: float = 99.0) -> Tick:
    return Tick(exchange="NFO", symbol=symbol, ltp=ltp, bid=bid, ask=bid + 1, bid_qty=1,
                ask_qty=1, volume=vol, exch_ns=t)  # fmt: skip


def test_the_default_is_late_and_the_delays_are_market_seconds() -> None:
    plan = FeedPlan.from_settings(SimSettings())
    assert not plan.immediate  # the demo and the process tests always meet a late feed
    waits = [plan.batch_delay_wall_s(1.0) for _ in range(500)]
    assert min(waits) >= 0.25 / 30 and max(waits) <= 0.5 / 30  # at 30x


def test_a_stall_holds_everything_to_its_end_then_lets_it_go() -> None:
    plan = FeedPlan(stall_every_s=60, stall_s=10, speed=1.0)
    assert plan.batch_delay_wall_s(30.0) == 0.0  # before the first stall
    assert plan.batch_delay_wall_s(63.0) == 7.0  # inside it: held to its end
    assert plan.batch_delay_wall_s(71.0) == 0.0


def test_reordered_ticks_are_held_past_the_next() -> None:
    plan = FeedPlan(reorder=0.3, speed=1.0, tick_gap_s=0.25, seed=1)
    held = plan.reordered(1000)
    assert 250 <= len(held) <= 350  # the share asked, at random
    assert all(0.25 <= plan.reorder_wall_s() <= 0.5 for _ in range(100))


def test_a_clock_offset_moves_every_stamp_and_the_pong() -> None:
    plan = FeedPlan(clock_offset_s=-60)
    assert plan.stamp(tick("NIFTY23NOV26FUT", 100 * S, 1.0, 1)).exch_ns == 40 * S
    assert plan.pong_ms(100_000.0) == 40_000


def test_an_illiquid_contract_keeps_its_last_trade_while_its_quotes_move() -> None:
    plan = FeedPlan(illiquid=1.0, seed=3)
    out = [
        plan.stamp(tick("NIFTY23NOV26FUT", i * S, 100.0 + i, 10 * i, 99.0 + i)) for i in range(50)
    ]
    trades = {(t.exch_ns, t.ltp, t.volume) for t in out}
    assert 2 <= len(trades) <= 25  # one tick in five trades, at random
    assert all(t.ltp == 100.0 + t.exch_ns // S for t in out)  # the stamp is its trade's
    assert len({t.bid for t in out}) == 50  # the quotes move every tick
    assert plan.stamp(tick("NIFTY", 5 * S, 1.0, 1)).exch_ns == 5 * S  # an index trades on
