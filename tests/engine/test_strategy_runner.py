"""The strategy API and the runner, driven directly: bars from ticks, warm-up, order
helpers, brackets and OCO, the MyTrading style, timers, quarantine and hook latency."""

from __future__ import annotations

import itertools
import math
import threading
import time
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from mytrading.domain.bars import BarBuilder
from mytrading.domain.refdata import IST, RefData
from mytrading.engine.runner import StrategyRunner
from mytrading.engine.strategy import BaseStrategy, Signal, StrategyParams
from mytrading.messaging import wire
from mytrading.messaging.catchup import Day
from mytrading.openalgo.paced import PacedFetcher
from mytrading.risk.orders import OP
from mytrading.settings import ConfigError


@pytest.fixture(autouse=True)
def _bars_close_at_their_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests move the clock to a bar's end exactly: no grace past it (the grace and
    late feeds are tests/engine/test_bars_late.py's)."""
    monkeypatch.setattr(BarBuilder, "default_grace_ns", 0)


FUT = "NIFTY23NOV26FUT"
LOT = 65


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 20, 10, 0, tzinfo=IST)

    def now(self) -> datetime:
        return self.t

    def now_ns(self) -> int:
        return int(self.t.timestamp() * 1e9)

    def at(self, h: int, m: int, s: float = 0) -> int:
        self.t = datetime(2026, 11, 20, h, m, tzinfo=IST) + timedelta(seconds=s)
        return self.now_ns()


class Rig:
    """A runner with a hand-driven clock; intents land in ``sent``."""

    def __init__(
        self, refdata: RefData, history: Any = None, max_errors: int = 3, run_id: str = "r"
    ) -> None:
        self.clock = Clock()
        self.sent: list[wire.PlaceIntent] = []
        self.watched: list[tuple[str, str]] = []
        self.runner = StrategyRunner(
            refdata,
            self.clock.now_ns,
            self.clock.now,
            self.sent.append,
            lambda ex, sym: self.watched.append((ex, sym)),
            run_id=run_id,
            history=history,
            max_errors=max_errors,
        )
        self.fill_no = 0

    def tick(self, t_ns: int, ltp: float, symbol: str = FUT, exchange: str = "NFO") -> None:
        self.runner.on_tick(
            wire.Tick(
                exchange=exchange,
                symbol=symbol,
                ltp=ltp,
                bid=ltp,
                ask=ltp,
                bid_qty=0,
                ask_qty=0,
                volume=0,
                exch_ns=t_ns,
                ts=t_ns,
            )
        )

    def ack(self, intent: wire.PlaceIntent, status: str = "open", filled: int = 0) -> None:
        self.runner.on_order_update(
            wire.OrderUpdate(
                order_id=f"{intent.strategy}.{intent.intent_id}",
                intent_id=intent.intent_id,
                strategy=intent.strategy,
                exchange=intent.exchange,
                symbol=intent.symbol,
                action=intent.action,
                quantity=intent.quantity,
                status=status,  # type: ignore[arg-type]
                filled_qty=filled,
            )
        )

    def fill(self, intent: wire.PlaceIntent, qty: int, price: float, final: bool = True) -> None:
        self.fill_no += 1
        self.runner.on_fill(router_fill(intent, self.fill_no, qty, price))
        if final:
            self.ack(intent, "complete", qty)


class Recorder(BaseStrategy):
    """Subscribes to 3-minute bars and records what it is given."""

    name = "recorder"

    def on_start(self) -> None:
        self.seen: list[wire.Bar] = []
        self.warm: list[bool] = []
        self.subscribe_bars("NFO", FUT, "3m", warmup=3)

    def on_bar(self, bar: wire.Bar) -> None:
        self.seen.append(bar)
        self.warm.append(self.warming_up)
        self.buy("NFO", FUT, LOT)  # ignored while warming up


def op(intent: wire.Intent) -> str:
    """What an intent asks, as the router's ``Order.op`` names it."""
    return OP.get(type(intent), "roll")


def test_bars_are_built_from_ticks_and_closed_by_the_clock(refdata: RefData) -> None:
    rig = Rig(refdata)
    strat = rig.runner.add(Recorder, {})
    rig.runner.start()  # no history source: starts cold, says so
    assert ("NFO", FUT) in rig.watched
    rig.tick(rig.clock.at(10, 0, 5), 100.0)  # the 10:00-10:03 bar (09:15 + 15 x 3m)
    rig.tick(rig.clock.at(10, 1), 104.0)
    rig.tick(rig.clock.at(10, 2, 59), 99.0)
    rig.clock.at(10, 3)
    rig.runner.poll()
    (bar,) = strat.seen  # type: ignore[attr-defined]
    assert (bar.tf, bar.open, bar.high, bar.low, bar.close) == ("3m", 100, 104, 99, 99)
    assert datetime.fromtimestamp(bar.start_ns / 1e9, IST).strftime("%H:%M") == "10:00"
    assert strat.bars("NFO", FUT, "3m") == [bar]
    assert len(rig.sent) == 1 and rig.sent[0].quantity == LOT
    # the intent names the bar that decided it (the day's shadow pairs on it)
    assert rig.sent[0].bar_ns == bar.start_ns
    rig.tick(rig.clock.at(10, 4), 101.0)  # a tick's own decision names no bar
    strat.buy("NFO", FUT, LOT)
    assert rig.sent[-1].bar_ns == 0


def test_warm_up_replays_history_without_orders_then_live_bars_in_order(refdata: RefData) -> None:
    calls: list[tuple] = []

    def history(ex: str, sym: str, tf: str, start: Any, end: Any) -> list[wire.Bar]:
        calls.append((ex, sym, tf))
        if len(calls) == 1:
            from mytrading.openalgo.history import HistoryError

            raise HistoryError("server still starting")  # retried, live bars are held
        base = int(datetime(2026, 11, 20, 9, 15, tzinfo=IST).timestamp() * 1e9)
        step = 180 * 10**9
        return [
            wire.Bar(
                exchange=ex,
                symbol=sym,
                tf=tf,
                start_ns=base + i * step,
                open=1,
                high=2,
                low=0.5,
                close=float(i),
                volume=1,
            )
            for i in range(16)  # 09:15 .. 10:00 (the last one still forming at 10:01)
        ]

    rig = Rig(refdata, history=history)
    strat = rig.runner.add(Recorder, {})
    rig.clock.at(10, 1)
    rig.runner.start()
    assert calls and strat.seen == []  # type: ignore[attr-defined]
    rig.tick(rig.clock.at(10, 1, 30), 500.0)  # joins the 10:00 bar late: partial
    rig.clock.at(10, 3)
    rig.runner.poll()  # closes the partial bar: held, the warm-up is not done
    assert strat.seen == []  # type: ignore[attr-defined]
    for job in rig.runner.warmups.values():
        job.next_try = 0.0
    rig.runner.poll()
    closes = [b.close for b in strat.seen]  # type: ignore[attr-defined]
    # the last 3 complete bars before the live one, then the live 10:00 bar swapped for
    # history's complete copy of it
    assert closes == [12.0, 13.0, 14.0, 15.0]
    assert strat.warm == [True, True, True, False]  # type: ignore[attr-defined]
    assert len(rig.sent) == 1  # the orders in warm-up were not sent
    # decided after the warm-up on the bar that waited for it: still that bar's decision
    assert rig.sent[0].bar_ns == strat.seen[-1].start_ns  # type: ignore[attr-defined]
    # the engine's record of the hold (engine/warmlog.py): as it began (the live bar's
    # start, when it was held), then 3 history bars of 3 asked, the live bar that waited,
    # swapped for history's copy, handed at 10:03
    begun, h = rig.runner.warm.handed
    live_start = strat.seen[-1].start_ns  # type: ignore[attr-defined]
    assert (begun.begun, begun.asked, begun.held, begun.first_ns) == (True, 3, 0, live_start)
    assert begun.at_ns <= h.at_ns and not h.begun
    assert (h.strategy, h.history, h.asked, h.held, h.first) == ("recorder", 3, 3, 1, "swapped")
    assert h.first_ns == h.last_ns == live_start and h.holds(live_start)
    assert h.at_ns == rig.clock.now_ns() and not h.holds(live_start + 60 * 10**9)


def test_a_feed_behind_the_clock_does_not_hand_again_what_the_warm_up_handed(
    refdata: RefData,
) -> None:
    """The warm-up runs at once and hands history up to the last bar our clock has seen
    end (09:57-10:00 at 10:01); the feed is two minutes behind, so its first live bars
    are 09:57-10:00 again: not handed twice; 10:00-10:03 is the first live one."""
    base = int(datetime(2026, 11, 20, 9, 15, tzinfo=IST).timestamp() * 1e9)

    def history(ex: str, sym: str, tf: str, start: Any, end: Any) -> list[wire.Bar]:
        return [wire.Bar(ex, sym, tf, base + i * 180 * 10**9, 1, 2, 0.5, float(i), 1)
                for i in range(15)]  # 09:15 .. 09:57, complete at 10:01  # fmt: skip

    rig = Rig(refdata, history=history)
    strat = rig.runner.add(Recorder, {})
    rig.clock.at(10, 1)
    rig.runner.start()
    rig.runner.poll()
    assert [b.close for b in strat.seen] == [12.0, 13.0, 14.0]  # type: ignore[attr-defined]
    behind = 120 * 10**9  # each tick stamped two minutes before our clock
    for (m, sec), price in (((1, 0), 100.0), ((2, 0), 101.0), ((3, 30), 103.0), ((5, 0), 104.0)):
        rig.tick(rig.clock.at(10, m, sec) - behind, price)  # stamped 09:59 .. 10:03
        rig.runner.poll()
    starts = [b.start_ns for b in strat.seen]  # type: ignore[attr-defined]
    assert len(starts) == len(set(starts)) == 4  # 09:57-10:00 once (history's), then 10:00
    assert datetime.fromtimestamp(starts[-1] / 1e9, IST).strftime("%H:%M") == "10:00"
    last = strat.seen[-1]  # type: ignore[attr-defined]
    assert (last.open, last.close, last.closed_by) == (101.0, 103.0, "data")


class MinuteRecorder(BaseStrategy):
    name = "minutes"

    def on_start(self) -> None:
        self.seen: list[wire.Bar] = []
        self.subscribe_bars("NFO", FUT, "1m")

    def on_bar(self, bar: wire.Bar) -> None:
        self.seen.append(bar)


def test_an_outages_backfilled_minutes_join_the_live_bars_once_and_in_order(
    refdata: RefData,
) -> None:
    """The feed drops at 10:02:30 and is back at 10:05:10; while it fills 10:02-10:04 from
    history (its heartbeat says ``backfilling``) the strategy's 1-minute bars wait, then
    come in order: history's 10:02 (not the live one that saw half of it), 10:03, 10:04,
    then the live 10:05. A backfilled minute after a later one was handed is not handed."""
    rig = Rig(refdata)
    strat = rig.runner.add(MinuteRecorder, {})
    rig.runner.start()
    base = rig.clock.at(10, 0)

    def hist(minute: int) -> wire.Bar:
        start = base + minute * 60 * 10**9
        return wire.Bar(exchange="NFO", symbol=FUT, tf="1m", start_ns=start, open=1, high=2,
                        low=0.5, close=1.5, volume=9, closed_by="history")  # fmt: skip

    for sec in range(0, 150, 10):  # 10:00:00 .. 10:02:20
        rig.tick(rig.clock.at(10, 0, sec), 100.0 + sec)
        rig.runner.poll()
    rig.runner.set_backfilling(True)  # the feed reconnected and asks history
    for sec in range(310, 370, 10):  # live again from 10:05:10; 10:02 closes, partial
        rig.tick(rig.clock.at(10, 0, sec), 200.0 + sec)
        rig.runner.poll()
    for m in (2, 3, 4):
        rig.runner.on_backfill(hist(m))
    rig.runner.set_backfilling(False)
    starts = [(b.start_ns - base) // (60 * 10**9) for b in strat.seen]  # type: ignore[attr-defined]
    assert starts == [0, 1, 2, 3, 4, 5]
    hows = [b.closed_by for b in strat.seen]  # type: ignore[attr-defined]
    assert hows[2:5] == ["history"] * 3 and hows[5] == "data"
    rig.runner.on_backfill(hist(3))  # a straggler: handed already
    assert len(strat.seen) == 6  # type: ignore[attr-defined]


def test_with_a_fetcher_history_never_holds_the_loop(refdata: RefData) -> None:
    """History asked for on the fetcher's thread: the loop's ``poll`` returns while a call
    hangs, ``stats`` says the strategy is warming, and the bars come when it answers; the
    partial first live bar waits for history's complete copy the same way."""
    gate = threading.Event()
    calls: list[tuple] = []
    base = int(datetime(2026, 11, 20, 9, 15, tzinfo=IST).timestamp() * 1e9)

    def history(ex: str, sym: str, tf: str, start: Any, end: Any) -> list[wire.Bar]:
        calls.append((ex, sym, tf, start))
        gate.wait(10)
        n = 16 if len(calls) == 1 else 17  # the second call: 10:00 has closed since
        return [
            wire.Bar(ex, sym, tf, base + i * 180 * 10**9, 1, 2, 0.5, float(i), 1) for i in range(n)
        ]

    fetcher = PacedFetcher(spacing_s=0.0)
    rig = Rig(refdata, history=history)
    rig.runner.fetcher = fetcher
    strat = rig.runner.add(Recorder, {})
    rig.clock.at(10, 1)
    t0 = time.monotonic()
    rig.runner.start()
    rig.runner.poll()
    assert time.monotonic() - t0 < 0.5  # the call hangs on its thread, not here
    assert rig.runner.stats()["recorder"]["warming"] == [f"NFO:{FUT} 3m"]
    gate.set()
    end = time.monotonic() + 5
    while rig.runner.warmups and time.monotonic() < end:
        time.sleep(0.01)
        rig.runner.poll()
    assert [b.close for b in strat.seen] == [12.0, 13.0, 14.0]  # type: ignore[attr-defined]
    assert rig.runner.stats()["recorder"]["warming"] == []
    rig.tick(rig.clock.at(10, 4), 500.0)  # joins the 10:03 bar late: partial
    rig.clock.at(10, 6)
    rig.runner.poll()  # closes it: it waits for the broker's copy, asked off the loop
    end = time.monotonic() + 5
    while rig.runner.warmups and time.monotonic() < end:
        time.sleep(0.01)
        rig.runner.poll()
    assert len(calls) == 2 and calls[1][3] == date(2026, 11, 20)  # today's bars only
    assert [b.close for b in strat.seen][-1] == 16.0  # type: ignore[attr-defined]
    assert strat.warm[-1] is False  # type: ignore[attr-defined]
    fetcher.close()


class ColdOneMinute(BaseStrategy):
    """1-minute bars of two instruments, no warm-up: only the first bars' swaps are asked."""

    name = "cold_one_minute"

    def on_start(self) -> None:
        self.seen: list[wire.Bar] = []
        self.subscribe_bars("NFO", FUT, "1m")
        self.subscribe_bars("NSE_INDEX", "NIFTY", "1m")

    def on_bar(self, bar: wire.Bar) -> None:
        self.seen.append(bar)


def test_a_first_bar_whose_whole_copy_is_late_is_handed_as_it_is(
    refdata: RefData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A desk's start: thousands of first bars queue for the broker's paced history. One
    whose copy has not come within FIRST_BAR_WAIT_S is handed partial, its call taken off
    the fetcher's queue unmade (no spacing spent on it); one whose copy came is swapped."""
    from mytrading.engine import warmup

    monkeypatch.setattr(warmup, "FIRST_BAR_WAIT_S", 0.3)
    first = threading.Event()
    calls: list[str] = []

    def history(ex: str, sym: str, tf: str, start: Any, end: Any) -> list[wire.Bar]:
        calls.append(sym)
        first.wait(10)  # the first call hangs past the wait; the second is never made
        return []

    fetcher = PacedFetcher(spacing_s=0.0)
    rig = Rig(refdata, history=history)
    rig.runner.fetcher = fetcher
    strat = rig.runner.add(ColdOneMinute, {})
    rig.clock.at(10, 1)
    rig.runner.start()
    rig.tick(rig.clock.at(10, 1, 30), 500.0)  # both join the 10:01 bar late: partial
    rig.tick(rig.clock.at(10, 1, 31), 24_000.0, symbol="NIFTY", exchange="NSE_INDEX")
    rig.clock.at(10, 3)
    rig.runner.poll()  # both close: each waits for the broker's whole copy
    assert strat.seen == []  # type: ignore[attr-defined]
    end = time.monotonic() + 5
    while rig.runner.warmups and time.monotonic() < end:
        time.sleep(0.02)
        rig.runner.poll()
    got = sorted(b.symbol for b in strat.seen)  # type: ignore[attr-defined]
    assert got == sorted([FUT, "NIFTY"]), got  # handed as they were, partial
    assert rig.runner.warm.partial_kept == 2
    # the engine's record of each (engine/warmlog.py): one bar held, handed partial
    kept = sorted((h.symbol, h.held, h.first, h.asked) for h in rig.runner.warm.handed
                  if not h.begun)  # fmt: skip
    assert kept == sorted([(FUT, 1, "partial", 0), ("NIFTY", 1, "partial", 0)]), kept
    begun = sorted(h.symbol for h in rig.runner.warm.handed if h.begun)
    assert begun == sorted([FUT, "NIFTY"]), begun  # each on record as its wait began
    first.set()
    time.sleep(0.2)
    assert len(calls) == 1, calls  # the queued call was cancelled, never made
    assert fetcher.pending == 0
    fetcher.close()


def test_the_fetcher_paces_its_calls_and_asks_once_per_key() -> None:
    fetcher = PacedFetcher(spacing_s=0.1)
    stamps: list[float] = []

    def call(i: int) -> int:
        stamps.append(time.monotonic())
        return i

    futs = [fetcher.submit(i, lambda i=i: call(i)) for i in range(4)]
    again = fetcher.submit(3, lambda: call(99))  # queued already: the same future
    assert again is futs[3]
    assert [f.result(timeout=5) for f in futs] == [0, 1, 2, 3]
    assert all(b - a >= 0.095 for a, b in itertools.pairwise(stamps)), stamps
    failing = fetcher.submit("x", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=5)
    assert fetcher.submit(5, lambda: 5).result(timeout=5) == 5  # the thread lives on
    fetcher.close()
    # a stopping daemon does not wait out the queue: what is still queued is cancelled
    slow = PacedFetcher(spacing_s=1.0)
    first = slow.submit("a", lambda: "a")
    assert first.result(timeout=1) == "a"
    queued = [slow.submit(i, lambda i=i: i) for i in range(20)]  # 20 s of pacing
    t0 = time.monotonic()
    slow.close()
    assert time.monotonic() - t0 < 2.5
    assert all(f.cancelled() for f in queued[1:])  # the first may be under way


class Helpers(BaseStrategy):
    name = "helpers"


def make(refdata: RefData, cls: type[BaseStrategy] = Helpers, **params: Any):
    rig = Rig(refdata)
    strat = rig.runner.add(cls, params)
    rig.runner.start()
    return rig, strat


def test_order_helpers_make_the_right_intents(refdata: RefData) -> None:
    rig, s = make(refdata)
    buy = s.buy("NFO", FUT, LOT, pricetype="LIMIT", price=24_000.0)
    intent = rig.sent[-1]
    assert (intent.action, intent.quantity, intent.pricetype, op(intent)) == (
        "BUY",
        LOT,
        "LIMIT",
        "place",
    )
    assert s.working("NFO", FUT) == LOT
    # target_position counts what is still working: nothing more to buy for +1 lot
    assert s.target_position("NFO", FUT, LOT) is None
    rig.ack(intent)
    s.modify(buy, price=24_010.0)
    mod = rig.sent[-1]
    assert (op(mod), mod.ref_intent_id, mod.price, mod.quantity) == ("modify", buy, 24_010.0, LOT)
    s.cancel(buy)
    assert (op(rig.sent[-1]), rig.sent[-1].ref_intent_id) == ("cancel", buy)
    rig.fill(intent, LOT, 24_000.0)
    assert s.position("NFO", FUT) == LOT and not s.open_orders
    with pytest.raises(ValueError, match="long"):
        s.short("NFO", FUT, LOT)
    with pytest.raises(ValueError, match="no short"):
        s.cover("NFO", FUT)
    s.close("NFO", FUT)
    assert (rig.sent[-1].action, rig.sent[-1].quantity, rig.sent[-1].pricetype) == (
        "SELL",
        LOT,
        "MARKET",
    )
    rig.fill(rig.sent[-1], LOT, 24_020.0)
    s.short("NFO", FUT, 2 * LOT)
    rig.fill(rig.sent[-1], 2 * LOT, 24_030.0)
    with pytest.raises(ValueError, match="more than"):
        s.cover("NFO", FUT, 3 * LOT)
    s.cover("NFO", FUT)
    assert (rig.sent[-1].action, rig.sent[-1].quantity) == ("BUY", 2 * LOT)
    assert s.pnl() == pytest.approx(20.0 * LOT)  # realized on the round trip
    ids = [i.intent_id for i in rig.sent]
    assert len(set(ids)) == len(ids)  # unique across the engine run
    s.buy("NFO", FUT, 0, sizing="B")  # risk sizes it from the margin available
    assert (rig.sent[-1].quantity, rig.sent[-1].sizing) == (0, "B")
    with pytest.raises(ValueError, match="not both"):
        s.buy("NFO", FUT, LOT, sizing="B")


def test_bracket_protects_each_fill_and_oco_cancels_the_sibling(refdata: RefData) -> None:
    rig, s = make(refdata)
    entry = s.bracket(
        "NFO",
        FUT,
        "SELL",
        2 * LOT,
        entry_trigger=24_000.0,
        entry_buffer=3,
        stop_distance=40,
        stop_buffer=10,
        units="ticks",
        target=23_900.0,
    )
    e = rig.sent[-1]
    assert (e.pricetype, e.trigger_price, e.price) == ("SL", 24_000.0, 24_000.0 - 3 * 0.05)
    rig.ack(e, "trigger pending")
    rig.fill(e, LOT, 23_999.95, final=False)  # half fills: the half is protected at once
    stop, target = rig.sent[-2], rig.sent[-1]
    assert (stop.action, stop.pricetype, stop.quantity) == ("BUY", "SL", LOT)
    assert stop.trigger_price == pytest.approx(23_999.95 + 40 * 0.05)
    assert stop.price == pytest.approx(stop.trigger_price + 10 * 0.05)
    assert (target.pricetype, target.price, target.quantity) == ("LIMIT", 23_900.0, LOT)
    # each answers the entry's fill (the day's shadow pairs them through the entry's pair)
    assert stop.fill_of == target.fill_of == e.intent_id and not e.fill_of
    rig.ack(stop, "trigger pending")
    rig.ack(target)
    rig.fill(e, LOT, 23_999.0)  # the other half: its own pair of exits
    assert len(rig.sent) == 5
    rig.fill(target, LOT, 23_900.0)  # the target fills: its stop is cancelled
    assert (op(rig.sent[-1]), rig.sent[-1].ref_intent_id) == ("cancel", stop.intent_id)
    assert s.position("NFO", FUT) == -LOT
    assert entry == e.intent_id
    with pytest.raises(ValueError, match="exactly one"):
        s.bracket("NFO", FUT, "BUY", LOT, stop_trigger=1.0, stop_pct=0.1)


def test_a_rejected_protective_stop_closes_the_unprotected_position(refdata: RefData) -> None:
    rig, s = make(refdata)
    s.bracket("NFO", FUT, "SELL", LOT, stop_pct=0.2)
    entry = rig.sent[-1]
    assert entry.pricetype == "MARKET"
    rig.fill(entry, LOT, 100.0)
    stop = rig.sent[-1]
    assert (stop.trigger_price, stop.price) == (120.0, 123.0)
    rig.ack(stop, "rejected")
    close = rig.sent[-1]
    assert (close.action, close.quantity, close.pricetype) == ("BUY", LOT, "MARKET")


OPT = "NIFTY01DEC2624800CE"


def test_a_stop_the_band_would_refuse_rests_at_its_edge_and_moves_out(refdata: RefData) -> None:
    """A short option's stop 30 % above its fill, after the premium dipped: outside the
    40 % band around the new price it would be refused (and the position closed at
    market). It is placed at the band's edge instead, and moved out towards where it was
    meant to be as the price comes back; refused for its band all the same, it is placed
    again at the edge; only a refusal for another reason closes at market."""
    rig, s = make(refdata)
    rig.tick(1, 100.0, OPT)
    s.bracket("NFO", OPT, "SELL", LOT, stop_pct=0.3, stop_buffer=4.0)
    entry = rig.sent[-1]
    rig.tick(2, 70.0, OPT)  # the premium dips before the fill is heard
    rig.fill(entry, LOT, 100.0)
    stop = rig.sent[-1]
    # meant: trigger 130, limit 134; the band around 70 is 70 +- 28: edge at 70 + 25.2
    assert (stop.pricetype, stop.action) == ("SL", "BUY")
    assert (stop.trigger_price, stop.price) == (91.2, 95.2)
    rig.ack(stop, "trigger pending")
    rig.tick(3, 71.0, OPT)  # a small move: not worth an amend
    assert rig.sent[-1] is stop
    rig.tick(4, 85.0, OPT)  # the band now reaches 85 + 30.6: moved out
    amend = rig.sent[-1]
    assert (op(amend), amend.ref_intent_id) == ("modify", stop.intent_id)
    assert (amend.trigger_price, amend.price) == (111.6, 115.6)
    rig.tick(5, 110.0, OPT)  # still on its way: no second amend
    assert rig.sent[-1] is amend
    rig.ack(amend, "complete")  # the amend is done
    rig.ack(stop, "trigger pending")  # the amended stop rests
    rig.tick(6, 110.0, OPT)  # 110 + 39.6 reaches the meant trigger: moved all the way
    last = rig.sent[-1]
    assert (op(last), last.trigger_price, last.price) == ("modify", 130.0, 134.0)
    # refused for its band all the same: placed again, nearer the price (half the room:
    # 72 + 28.8 * 0.45 = 84.96, on ticks), not closed at market
    rig.tick(7, 72.0, OPT)
    reject(rig, stop, "trigger_price 130.0 is outside the price band 36.00 - 108.00")
    again = rig.sent[-1]
    assert (again.pricetype, again.action, op(again)) == ("SL", "BUY", "place")
    assert (again.trigger_price, again.price) == (80.95, 84.95)
    rig.ack(again, "trigger pending")
    rig.tick(8, 72.0, OPT)  # the same price: not moved back out to where it was refused
    assert rig.sent[-1] is again
    rig.tick(9, 90.0, OPT)  # the band moved: out as far as its half room allows
    out = rig.sent[-1]
    assert (op(out), out.ref_intent_id) == ("modify", again.intent_id)
    assert (out.trigger_price, out.price) == (102.2, 106.2)  # 90 + 36 * 0.45, on ticks


def test_a_stop_refused_for_its_band_is_placed_again_then_closed_as_a_last_resort(
    refdata: RefData,
) -> None:
    rig, s = make(refdata)
    rig.tick(1, 100.0, OPT)
    s.bracket("NFO", OPT, "SELL", LOT, stop_pct=0.2, stop_buffer=4.0)
    rig.fill(rig.sent[-1], LOT, 100.0)
    band = "trigger_price 122.0 is outside the price band 50.00 - 150.00"
    rig.tick(2, 60.0, OPT)  # the engine's price: the band 60 +- 24 holds no 120 stop
    limits = []
    for attempt in range(3):
        stop = rig.sent[-1]
        assert stop.pricetype == "SL"
        limits.append(stop.price)
        reject(rig, stop, band)
        assert rig.sent[-1].pricetype == "SL" and rig.sent[-1] is not stop, attempt
    # each try nearer the price (the engine's price may be older than the broker's), its
    # trigger a tick above the price when the buffer no longer fits
    limits.append(rig.sent[-1].price)
    assert limits == [124.0, 70.8, 65.4, 62.7], limits  # as meant, placed at 100
    assert rig.sent[-1].trigger_price == 60.05
    reject(rig, rig.sent[-1], band)  # the fourth: the last resort
    close = rig.sent[-1]
    assert (close.action, close.quantity, close.pricetype) == ("BUY", LOT, "MARKET")
    rig2, s2 = make(refdata)
    s2.bracket("NFO", OPT, "SELL", LOT, stop_pct=0.2)
    rig2.fill(rig2.sent[-1], LOT, 100.0)
    reject(rig2, rig2.sent[-1], "Insufficient funds")  # not the band: closed at once
    assert rig2.sent[-1].pricetype == "MARKET"


def reject(rig: Rig, intent: wire.PlaceIntent, reason: str) -> None:
    update = wire.OrderUpdate(
        order_id=f"{intent.strategy}.{intent.intent_id}",
        intent_id=intent.intent_id,
        strategy=intent.strategy,
        exchange=intent.exchange,
        symbol=intent.symbol,
        action=intent.action,
        quantity=intent.quantity,
        status="rejected",
        reason=reason,
    )
    rig.runner.on_order_update(update)


def test_a_rejected_target_leaves_the_position_with_its_stop(refdata: RefData) -> None:
    """A bracket's target is not what protects it: refused (outside a price band, say),
    it is logged, the stop keeps working and nothing is closed at market."""
    rig, s = make(refdata)
    s.bracket("NFO", FUT, "SELL", LOT, stop_pct=0.2, target=50.0)
    rig.fill(rig.sent[-1], LOT, 100.0)
    stop, target = rig.sent[-2], rig.sent[-1]
    rig.ack(stop, "trigger pending")
    sent = len(rig.sent)
    rig.ack(target, "rejected")
    assert len(rig.sent) == sent  # no market close
    assert stop.intent_id in s.open_orders and s.position("NFO", FUT) == -LOT


class MyTradingStyle(BaseStrategy):
    name = "mt_style"
    signal_lots = 2

    def initialize(self) -> None:
        self.subscribe_bars("NFO", FUT, "1m")
        self.add_indicator("SMA", period=3)
        self.add_indicator("MACD", fast=2, slow=3, signal=2)

    def on_data(self, data: wire.Bar) -> Signal | None:
        sma = self.get_indicator_value("SMA")
        if math.isnan(sma):
            return None
        return self.create_signal("BUY" if data.close > sma else "SELL", confidence=0.8)


def test_mytrading_style_signals_become_target_positions(refdata: RefData) -> None:
    rig, s = make(refdata, MyTradingStyle)
    for i, px in enumerate((100.0, 101.0, 102.0, 110.0)):
        rig.tick(rig.clock.at(10, i, 1), px)
    rig.clock.at(10, 4)
    rig.runner.poll()
    assert s.get_indicator_value("SMA") == pytest.approx((101 + 102 + 110) / 3)
    assert not math.isnan(s.get_indicator_value("MACD", "hist"))
    (buy,) = rig.sent
    assert (buy.action, buy.quantity) == ("BUY", 2 * LOT)
    with pytest.raises(KeyError, match="no indicator"):
        s.get_indicator_value("RSI")
    with pytest.raises(KeyError, match="outputs"):
        s.get_indicator_value("MACD", "nope")
    with pytest.raises(ValueError, match="confidence"):
        s.create_signal("BUY", confidence=2)
    with pytest.raises(ValueError, match="already registered"):
        s.add_indicator("SMA", period=5)
    with pytest.raises(ValueError, match="takes"):
        s.add_indicator("EMA", name="e", length=5)


class Timed(BaseStrategy):
    name = "timed"

    def on_start(self) -> None:
        self.fired: list[str] = []
        self.set_timer("t", 60)

    def on_timer(self, name: str, now: datetime) -> None:
        self.fired.append(now.strftime("%H:%M"))


def test_timers_run_on_market_time(refdata: RefData) -> None:
    rig, s = make(refdata, Timed)
    rig.clock.at(10, 0, 59)
    rig.runner.poll()
    assert s.fired == []  # type: ignore[attr-defined]
    rig.clock.at(10, 1)
    rig.runner.poll()
    rig.runner.poll()
    rig.clock.at(10, 2)
    rig.runner.poll()
    assert s.fired == ["10:01", "10:02"]  # type: ignore[attr-defined]


class Broken(BaseStrategy):
    name = "broken"

    def on_start(self) -> None:
        self.subscribe_ticks("NFO", FUT)
        self.entry = self.buy("NFO", FUT, LOT, pricetype="LIMIT", price=1.0)

    def on_tick(self, tick: wire.Tick) -> None:
        raise RuntimeError("bug in the strategy")


class Healthy(BaseStrategy):
    name = "healthy"

    def on_start(self) -> None:
        self.subscribe_ticks("NFO", FUT)

    def on_tick(self, tick: wire.Tick) -> None:
        self.buy("NFO", FUT, LOT)


def test_a_failing_strategy_is_quarantined_while_the_other_keeps_trading(
    refdata: RefData,
) -> None:
    rig = Rig(refdata, max_errors=3)
    broken = rig.runner.add(Broken, {})
    rig.runner.add(Healthy, {})
    rig.runner.start()
    entry = rig.sent[0]
    rig.ack(entry)
    for i in range(5):
        rig.tick(rig.clock.at(10, 0, i), 100.0)
    stats = rig.runner.stats()
    assert stats["broken"]["hook_errors"] == 3  # quarantined on the third, then silent
    assert "3 hook failures in a row" in stats["broken"]["quarantined"]
    assert stats["healthy"]["quarantined"] == "" and stats["healthy"]["hook_errors"] == 0
    assert sum(1 for i in rig.sent if i.strategy == "healthy") == 5  # it kept trading
    cancels = [i for i in rig.sent if i.strategy == "broken" and op(i) == "cancel"]
    assert [c.ref_intent_id for c in cancels] == [entry.intent_id]  # its entry is cancelled
    assert broken.buy("NFO", FUT, LOT) == ""  # and it cannot place new orders
    rig.fill(entry, LOT, 1.0)  # its books still follow fills, without its hooks
    assert broken.position("NFO", FUT) == LOT
    lat = stats["healthy"]["hook_latency"]["tick"]
    assert lat["n"] == 5 and 0 < lat["p50_us"] <= lat["p99_us"]


def test_bad_parameters_name_the_strategy(refdata: RefData) -> None:
    class P(StrategyParams):
        lots: int = 1

    class WithParams(BaseStrategy):
        name = "with_params"
        Params = P

    rig = Rig(refdata)
    with pytest.raises(ConfigError, match="with_params: lotz"):
        rig.runner.add(WithParams, {"lotz": 2})
    with pytest.raises(ConfigError, match="with_params: lots"):
        rig.runner.add(WithParams, {"lots": "many"})


def test_the_guides_first_example_loads_warms_up_and_trades(
    refdata: RefData, tmp_path: Any
) -> None:
    """docs/strategies.md step 1, as written, through the loader and the runner."""
    import re

    from mytrading.engine.loader import discover
    from mytrading.settings import PROJECT_ROOT

    guide = (PROJECT_ROOT / "docs" / "strategies.md").read_text()
    code = re.search(r"Step 1.*?```python\n(.*?)```", guide, re.S).group(1)  # type: ignore[union-attr]
    (tmp_path / "breakout.py").write_text(code)
    cls = discover(tmp_path)["breakout"]

    base = int(datetime(2026, 11, 20, 9, 15, tzinfo=IST).timestamp() * 1e9)

    def history(ex: str, sym: str, tf: str, start: Any, end: Any) -> list[wire.Bar]:
        step = 300 * 10**9
        return [
            wire.Bar(
                exchange=ex,
                symbol=sym,
                tf=tf,
                start_ns=base + i * step,
                open=100,
                high=101.0 + (i % 3),
                low=99,
                close=100,
                volume=1,
            )
            for i in range(9)  # 09:15 .. 09:55, all complete at 10:00
        ]

    rig = Rig(refdata, history=history)
    strat = rig.runner.add(cls, {"lookback": 5})
    rig.runner.start()
    assert len(strat.bars("NFO", FUT, "5m")) == 5 and rig.sent == []  # warmed, no order
    rig.tick(rig.clock.at(10, 0, 1), 102.0)
    rig.tick(rig.clock.at(10, 4, 59), 104.0)  # closes above every high of the last 5
    rig.clock.at(10, 5)
    for job in rig.runner.warmups.values():
        job.next_try = 0.0
    rig.runner.poll()
    (buy,) = rig.sent
    assert (buy.strategy, buy.action, buy.quantity) == ("breakout", "BUY", LOT)


def test_child_orders_of_a_split_intent_read_as_one_order(refdata: RefData) -> None:
    rig, s = make(refdata)
    iid = s.buy("NFO", FUT, 65 * 23, pricetype="LIMIT", price=24_000.0)
    seen: list[tuple[str, int]] = []
    s.on_order_update = lambda u: seen.append((u.status, u.filled_qty))  # type: ignore[method-assign]

    def child(k: int, qty: int, status: str, filled: int, avg: float = 24_000.0) -> None:
        rig.runner.on_order_update(
            wire.OrderUpdate(
                order_id=f"helpers.{iid}.{k}",
                intent_id=iid,
                strategy="helpers",
                exchange="NFO",
                symbol=FUT,
                action="BUY",
                quantity=qty,
                status=status,
                filled_qty=filled,
                avg_price=avg if filled else 0.0,  # type: ignore[arg-type]
                part=k,
                parts=3,
            )
        )

    child(1, 650, "open", 0)
    child(2, 650, "open", 0)
    child(3, 195, "open", 0)
    child(1, 650, "complete", 650, 24_000.0)
    child(2, 650, "complete", 650, 24_010.0)
    assert s.open_orders[iid].filled_qty == 1300 and s.open_orders[iid].status == "open"
    child(3, 195, "cancelled", 0)
    assert iid not in s.open_orders  # terminal once every child is
    assert seen[-1] == ("cancelled", 1300)
    assert [st for st, _ in seen[:-1]] == ["open"] * 5


def test_a_restarted_engine_knows_the_orders_still_working(refdata: RefData) -> None:
    """The router's snapshot lists the orders not yet final: they are the strategy's open
    orders again, so ``target_position`` does not buy a second time what is working."""
    rig, s = make(refdata)
    name = s.name
    order = wire.Order(
        order_id=f"{name}.old-1",
        intent_id="old-1",
        strategy=name,
        exchange="NFO",
        symbol=FUT,
        action="BUY",
        quantity=2 * LOT,
        pricetype="LIMIT",
        product="MIS",
        price=24_000.0,
        trigger_price=0.0,
        approved_by="risk",
    )
    rig.runner.restore(
        [], 7, [wire.WorkingOrder(order=order, status="open", filled_qty=LOT, avg_price=24_000.0)]
    )
    oo = s.open_orders["old-1"]
    assert (oo.order_id, oo.quantity, oo.filled_qty, oo.price, oo.status) == (
        f"{name}.old-1",
        2 * LOT,
        LOT,
        24_000.0,
        "open",
    )
    assert s.working("NFO", FUT) == LOT  # what is left to fill
    sent = len(rig.sent)
    assert s.target_position("NFO", FUT, LOT) is None and len(rig.sent) == sent
    rig.runner.on_order_update(  # its later updates are matched to it
        wire.OrderUpdate(
            order_id=f"{name}.old-1",
            intent_id="old-1",
            strategy=name,
            exchange="NFO",
            symbol=FUT,
            action="BUY",
            quantity=2 * LOT,
            status="cancelled",
            filled_qty=LOT,
        )
    )
    assert "old-1" not in s.open_orders


def journaled(i: wire.PlaceIntent, filled: int = 0, status: str = "open") -> wire.WorkingOrder:
    """The intent as risk approves it and the router journals it."""
    return wire.WorkingOrder(
        order=wire.Order(
            order_id=f"{i.strategy}.{i.intent_id}",
            intent_id=i.intent_id,
            strategy=i.strategy,
            exchange=i.exchange,
            symbol=i.symbol,
            action=i.action,
            quantity=i.quantity,
            pricetype=i.pricetype,
            product=i.product,
            price=i.price,
            trigger_price=i.trigger_price,
            approved_by="risk",
            link=i.link,
        ),
        status=status,  # type: ignore[arg-type]
        filled_qty=filled,
    )


def router_fill(i: wire.PlaceIntent, n: int, qty: int, price: float) -> wire.Fill:
    """Fill number ``n`` of the intent's order, as the router publishes it."""
    return wire.Fill(
        fill_no=n,
        fill_id=str(n),
        order_id=f"{i.strategy}.{i.intent_id}",
        broker_order_id="b",
        strategy=i.strategy,
        exchange=i.exchange,
        symbol=i.symbol,
        product=i.product,
        action=i.action,
        quantity=qty,
        price=price,
        exch_ns=0,
    )


def test_bracket_fills_made_while_the_engine_was_down_are_protected_once(
    refdata: RefData,
) -> None:
    """The entry's second half fills while the engine is down, and the first half's
    target fills too: the new engine never sees those fills (they are in the restored
    position), so it protects the second half from the day's books, once, and cancels
    the stop whose OCO sibling filled."""
    rig, s = make(refdata)
    s.bracket("NFO", FUT, "SELL", 2 * LOT, stop_distance=40.0, target=23_900.0)
    e = rig.sent[-1]
    rig.ack(e)
    rig.fill(e, LOT, 24_000.0, final=False)  # fill 1: protected by this engine
    stop, target = rig.sent[-2], rig.sent[-1]
    # the engine dies; fill 2 (the entry's rest) and fill 3 (the first target) happen
    fills = [
        router_fill(e, 1, LOT, 24_000.0),
        router_fill(e, 2, LOT, 23_980.0),
        router_fill(target, 3, LOT, 23_900.0),
    ]
    day = [journaled(e, 2 * LOT, "complete"), journaled(stop), journaled(target, LOT, "complete")]

    def restart(run_id: str, orders: list[wire.WorkingOrder]) -> Rig:
        rig2 = Rig(refdata, run_id=run_id)
        rig2.runner.add(Helpers, {})
        rig2.runner.start()
        working = [w for w in orders if w.status not in wire.TERMINAL_STATUSES]
        rig2.runner.restore([], 3, working, Day(orders, fills))
        return rig2

    rig2 = restart("r2", day)
    placed = [i for i in rig2.sent if op(i) == "place"]
    assert [(i.pricetype, i.action, i.quantity, i.link.protects) for i in placed] == [  # type: ignore[union-attr]
        ("SL", "BUY", LOT, "2"),
        ("LIMIT", "BUY", LOT, "2"),
    ]
    assert placed[0].trigger_price == pytest.approx(23_980.0 + 40.0)
    cancels = [(op(i), i.ref_intent_id) for i in rig2.sent if op(i) != "place"]
    assert cancels == [("cancel", stop.intent_id)]  # its OCO sibling (the target) filled
    # a second restart, with the new exits journaled: nothing is placed twice
    rig3 = restart("r3", [*day, *(journaled(i) for i in placed)])
    assert [i for i in rig3.sent if op(i) == "place"] == []


def test_brackets_and_oco_survive_an_engine_restart(refdata: RefData) -> None:
    """The links travel with the orders (``OrderLink``) and come back in the router's
    snapshot: a new engine protects the entry's later fills and keeps the OCO pair."""
    rig, s = make(refdata)
    s.bracket("NFO", FUT, "SELL", 2 * LOT, stop_distance=40.0, target=23_900.0)
    e = rig.sent[-1]
    assert e.link is not None and e.link.bracket is not None
    rig.ack(e)
    rig.fill(e, LOT, 24_000.0, final=False)
    stop, target = rig.sent[-2], rig.sent[-1]
    assert stop.link == wire.OrderLink(protective=True, oco=target.intent_id, protects="1")
    assert target.link == wire.OrderLink(protective=True, oco=stop.intent_id, protects="1")

    def working(i: wire.PlaceIntent, filled: int = 0) -> wire.WorkingOrder:
        return journaled(i, filled)

    # The engine dies; a new one (a new run id, as a restarted engine has) starts from the
    # router's snapshot.
    rig2 = Rig(refdata, run_id="r2")
    s2 = rig2.runner.add(Helpers, {})
    rig2.runner.start()
    snap = wire.PositionSnapshot(
        strategy=s2.name,
        exchange="NFO",
        symbol=FUT,
        product="MIS",
        quantity=-LOT,
        avg_price=24_000.0,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        ltp=24_000.0,
    )
    rig2.runner.restore([snap], 1, [working(e, LOT), working(stop), working(target)])
    rig2.fill_no = 1
    assert s2.protective == {stop.intent_id, target.intent_id}
    rig2.fill(e, LOT, 23_990.0)  # the entry's second half fills after the restart
    stop2, target2 = rig2.sent[-2], rig2.sent[-1]
    assert (stop2.action, stop2.pricetype, stop2.quantity) == ("BUY", "SL", LOT)
    assert stop2.trigger_price == pytest.approx(23_990.0 + 40.0)
    assert (target2.pricetype, target2.price) == ("LIMIT", 23_900.0)
    rig2.fill(target, LOT, 23_900.0)  # the first pair's target fills: its stop goes
    rig2.ack(target, "complete", LOT)
    assert (op(rig2.sent[-1]), rig2.sent[-1].ref_intent_id) == ("cancel", stop.intent_id)


def test_stocks_equities_futures_options_and_universes(refdata: RefData) -> None:
    """The strategy API for stocks as for indices (config/stocks.toml): the equity, the
    near / next / far month futures with the stock's lot, options from the options helpers
    around its last price, and named universes."""
    rig, s = make(refdata)
    assert s.equity("RELIANCE") == ("NSE", "RELIANCE")
    assert s.equity("RELIANCE", "BSE") == ("BSE", "RELIANCE")
    with pytest.raises(ValueError, match="not an equity"):
        s.equity("NIFTY", "NSE_INDEX")
    # 2026-11-20: SBIN's November expiry, the last Tuesday (24th) is a holiday: the 23rd
    assert s.future("SBIN") == ("NFO", "SBIN23NOV26FUT")
    assert s.future("SBIN", "next") == ("NFO", "SBIN29DEC26FUT")
    # (config/holidays.toml stops at 2026: January 2027's Republic Day is not in it yet)
    assert s.future("SBIN", "far")[1].endswith("JAN27FUT")
    assert s.lot_size(*s.future("SBIN")) == 750
    with pytest.raises(ValueError, match="which must be"):
        s.future("SBIN", "later")
    assert s.future("NIFTY") == s.near_future("NIFTY")
    s.subscribe_ticks("NSE", "SBIN")
    rig.tick(rig.clock.now_ns(), 942.35, symbol="SBIN", exchange="NSE")
    assert s.option("SBIN", "CE") == ("NFO", "SBIN23NOV26940CE")  # strike step 10
    assert s.option("SBIN", "PE", "OTM2") == ("NFO", "SBIN23NOV26920PE")
    chain = s.option_chain("SBIN", strikes=1)
    assert [(q.strike, q.right) for q in chain][:2] == [(930.0, "CE"), (930.0, "PE")]
    assert refdata.instrument("NFO", chain[0].symbol).lot_size == 750
    assert s.universe("banks") == ["HDFCBANK", "ICICIBANK", "SBIN", "AXISBANK", "KOTAKBANK"]
    with pytest.raises(ValueError, match="no universe"):
        s.universe("nifty500")
    bees = refdata.instrument("NSE", "NIFTYBEES")  # an ETF: an equity without F&O
    assert bees.kind == "EQ" and not refdata.underlying("NIFTYBEES").fno


def test_only_enabled_strategies_are_imported_and_a_broken_one_is_reported(
    tmp_path: Any,
) -> None:
    """The loader reads the files to find each enabled strategy and imports only those:
    a file with a syntax error nobody enabled is named as unreadable and harms nothing, a
    disabled file that would raise is never run, an enabled one that raises is reported
    with its traceback (the engine quarantines it)."""
    import sys

    from mytrading.engine.loader import StrategyLoadError, load, placeholder
    from mytrading.settings import PROJECT_ROOT

    (tmp_path / "sma_crossover.py").write_text(
        (PROJECT_ROOT / "strategies" / "sma_crossover.py").read_text()
    )
    (tmp_path / "draft.py").write_text("class Draft(BaseStrategy:\n    name = 'draft'\n")
    boom = (
        "from mytrading.engine.strategy import BaseStrategy\n\n{}\n\n\n"
        "class B(BaseStrategy):\n    name = '{}'\n"
    )
    (tmp_path / "off_one.py").write_text(boom.format("raise SystemExit('ran')", "off_one"))
    (tmp_path / "bad_one.py").write_text(boom.format("1 / 0", "bad_one"))
    got = load(tmp_path, ["sma_crossover", "bad_one"])
    assert [c.name for c in got.classes] == ["sma_crossover"]
    assert "ZeroDivisionError" in got.broken["bad_one"] and "bad_one.py" in got.broken["bad_one"]
    assert list(got.unreadable) == [str(tmp_path / "draft.py")]
    assert "mt_strategies.off_one" not in sys.modules  # never run
    assert placeholder("bad_one").name == "bad_one"
    with pytest.raises(StrategyLoadError, match=r"no file in .* declares"):
        load(tmp_path, ["nope"])
    (tmp_path / "twin.py").write_text(boom.format("", "bad_one"))
    with pytest.raises(StrategyLoadError, match="two files declare"):
        load(tmp_path, ["bad_one"])


def test_a_start_that_keeps_failing_is_given_up(tmp_path: Any, monkeypatch: Any) -> None:
    from mytrading.process import startguard

    monkeypatch.setenv("MT_STATE_DIR", str(tmp_path))
    d = tmp_path / "startfail"
    for n in (1, 2):
        assert startguard.record_failure("risk", "IOException: lock", d) == n
        startguard.gate("risk")  # not yet
    startguard.record_failure("risk", "IOException: lock", d)
    with pytest.raises(SystemExit):
        startguard.gate("risk")
    startguard.clear_all(tmp_path)  # an operator's start
    startguard.gate("risk")


def test_the_type_argument_is_the_params_model(refdata: RefData) -> None:
    """``BaseStrategy[P]`` sets ``Params``; a contradicting explicit one is refused at once;
    a class built on another's keeps its own (a subclass of the parent's)."""

    class LotsParams(StrategyParams):
        lots: int = 1

    class Typed(BaseStrategy[LotsParams]):
        name = "typed"

    assert Typed.Params is LotsParams
    rig = Rig(refdata)
    rig.runner.add(Typed, {"lots": 3})
    assert isinstance(rig.runner.strategies["typed"].params, LotsParams)
    assert rig.runner.strategies["typed"].params.lots == 3

    class Other(StrategyParams):
        size: int = 1

    with pytest.raises(
        TypeError, match="Params is Other, but the class is BaseStrategy\\[LotsParams\\]"
    ):

        class Wrong(BaseStrategy[LotsParams]):
            name = "wrong"
            Params = Other

    class MoreLots(LotsParams):
        cap: int = 5

    class Child(Typed):
        name = "child"
        Params = MoreLots

    assert Child.Params is MoreLots and BaseStrategy.Params is StrategyParams


def test_the_engine_state_is_the_contexts_and_the_facade_reads_it(refdata: RefData) -> None:
    """The strategy object holds its parameters, reference data, link, log and context;
    positions, working orders and bars live in the context, which the runner drives."""
    rig = Rig(refdata)
    strat = rig.runner.add(Recorder, {})
    # the context is in the instance's dict interpreted, in StrategyHelpers' slot compiled
    assert set(vars(strat)) - {"context"} == {"params", "refdata", "link", "log"}
    assert rig.runner.contexts["recorder"] is strat.context
    rig.runner.start()
    for minute in range(10, 13):  # one 3m bar (10:00-10:03) and the start of the next
        rig.tick(rig.clock.at(10, minute, 1), 100.0 + minute)
    rig.clock.at(10, 3)
    rig.runner.poll()
    (intent,) = [i for i in rig.sent if i.strategy == "recorder"]
    assert strat.open_orders is strat.context.open_orders and intent.intent_id in strat.open_orders
    rig.fill(intent, LOT, 101.0)
    assert strat.position("NFO", FUT) == LOT == strat.context.position("NFO", FUT)
    assert strat.fills == 1 and strat.ledger is strat.context.ledger
    assert strat.bars("NFO", FUT, "3m") == strat.context.bars("NFO", FUT, "3m") != []
