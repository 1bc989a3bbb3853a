"""Post-trade rules on marks: each at and around its threshold, each firing once."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from mytrading.domain.bars import BarBuilder
from mytrading.domain.refdata import IST, RefData
from mytrading.indicators import stream
from mytrading.messaging import wire
from mytrading.risk.charges import load_charges
from mytrading.risk.limits import LimitBook, Limits, StackLimits
from mytrading.risk.monitor import PostTrade
from mytrading.settings import PROJECT_ROOT


@pytest.fixture(autouse=True)
def _bars_close_at_their_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests move the clock to a bar's end exactly: no grace past it (the grace and
    late feeds are tests/engine/test_bars_late.py's)."""
    monkeypatch.setattr(BarBuilder, "default_grace_ns", 0)


FUT = "NIFTY29DEC26FUT"  # lot 65
KEY = ("NFO", FUT, "MIS")
DAY = date(2026, 11, 23)
_n = iter(range(1, 10**6))


def at(h: int, m: int) -> datetime:
    return datetime(2026, 11, 23, h, m, tzinfo=IST)


def monitor(refdata: RefData, stack: StackLimits | None = None, **lim: Any) -> PostTrade:
    book = LimitBook(Limits(**lim), {}, stack or StackLimits(daily_loss_limit=0, max_drawdown=0))
    return PostTrade(refdata, book, load_charges(PROJECT_ROOT / "config"))


def fill(pt: PostTrade, action: str, qty: int, price: float, strategy: str = "s", **kw: Any):
    n = next(_n)
    pt.on_fill(
        wire.Fill(
            fill_no=n,
            fill_id=str(n),
            order_id=f"{strategy}.{n}",
            broker_order_id=str(n),
            strategy=strategy,
            exchange=kw.get("exchange", "NFO"),
            symbol=kw.get("symbol", FUT),
            product=kw.get("product", "MIS"),
            action=action,
            quantity=qty,
            price=price,
            exch_ns=0,
        ),
        DAY,
    )


def kinds(pt: PostTrade, when: datetime | None = None) -> list[str]:
    return [t.kind for t in pt.evaluate(when or at(11, 0))]


def test_net_pnl_includes_charges(refdata: RefData) -> None:
    pt = monitor(refdata)
    fill(pt, "BUY", 65, 24_500.0)
    pt.mark("NFO", FUT, 24_560.0)
    p = pt.pnl("s")
    assert (p["realized"], p["unrealized"], p["charges"]) == (0.0, 3900.0, 89.84)
    assert p["net"] == 3810.16
    fill(pt, "SELL", 65, 24_560.0)
    p = pt.pnl("s")  # the contract-note example of test_charges: 3900 - 946.12
    assert (p["realized"], p["unrealized"], p["net"]) == (3900.0, 0.0, 2953.88)


def test_max_loss_and_max_profit_fire_once_at_the_threshold(refdata: RefData) -> None:
    pt = monitor(refdata, max_loss=1000.0, max_profit=5000.0)
    fill(pt, "BUY", 65, 24_500.0)  # charges so far 89.84
    pt.mark("NFO", FUT, 24_500.0 - 910.16 / 65 + 0.01)  # net -999.51: not yet
    assert kinds(pt) == []
    pt.mark("NFO", FUT, 24_484.0)  # -1040 - 89.84
    (t,) = pt.evaluate(at(11, 0))
    assert (t.kind, t.threshold, t.keys) == ("max_loss", -1000.0, (KEY,))
    assert kinds(pt) == []  # once per trigger
    pt2 = monitor(refdata, max_profit=5000.0)
    fill(pt2, "SELL", 65, 24_500.0, strategy="p")
    pt2.mark("NFO", FUT, 24_420.0)  # +5200 gross, less charges ~ 880: not yet
    assert kinds(pt2) == []
    pt2.mark("NFO", FUT, 24_400.0)
    assert kinds(pt2) == ["max_profit"]


@pytest.mark.parametrize(
    "kind, value, marks, fires_at",
    [
        # amount: trail 1000 rupees behind the peak once net P&L reaches 1500
        # (net at 24,560 is 3,810.16: the level is 2,810.16, crossed between 24,544.7 and
        # 24,540)
        ("amount", 1000.0, [24_510, 24_530, 24_560, 24_545, 24_544.7, 24_540], 5),
        # pct: 40 % of the peak P&L
        # (peak 5,110.16 at 24,580: the level is 3,066.10; 24,548 nets 3,030.16)
        ("pct", 40.0, [24_530, 24_560, 24_580, 24_560, 24_548], 4),
        # points: 10 index points over the open quantity (65) = 650 rupees
        ("points", 10.0, [24_560, 24_580, 24_571, 24_569.9], 3),
    ],
)
def test_trailing_stop_sequences(
    refdata: RefData, kind: str, value: float, marks: list[float], fires_at: int
) -> None:
    pt = monitor(refdata, trailing_type=kind, trailing_value=value, trailing_activation=1500.0)
    fill(pt, "BUY", 65, 24_500.0)
    fired = []
    for i, m in enumerate(marks):
        pt.mark("NFO", FUT, float(m))
        if kinds(pt) == ["trailing_stop"]:
            fired.append(i)
    assert fired == [fires_at]


def test_trailing_stop_never_loosens_and_waits_for_activation(refdata: RefData) -> None:
    pt = monitor(refdata, trailing_type="amount", trailing_value=500.0, trailing_activation=2000.0)
    fill(pt, "BUY", 65, 24_500.0)
    pt.mark("NFO", FUT, 24_520.0)  # +1300 - 90: below activation, a fall does nothing
    assert kinds(pt) == []
    pt.mark("NFO", FUT, 24_480.0)
    assert kinds(pt) == [] and pt.books["s"].trail_level is None
    pt.mark("NFO", FUT, 24_540.0)  # net 2510: active, level 2010
    assert kinds(pt) == [] and pt.books["s"].trail_level == pytest.approx(2010.16)
    pt.mark("NFO", FUT, 24_535.0)  # a lower peak does not lower the level
    assert kinds(pt) == [] and pt.books["s"].trail_level == pytest.approx(2010.16)
    pt.mark("NFO", FUT, 24_532.0)  # net 1990.16: below the level
    assert kinds(pt) == ["trailing_stop"]


def test_leg_stop_and_target(refdata: RefData) -> None:
    opt = "NIFTY24NOV2624500CE"
    pt = monitor(refdata, leg_stop_pct=30.0, leg_target_pct=50.0)
    fill(pt, "SELL", 65, 100.0, symbol=opt)  # a short leg loses when the price rises
    fill(pt, "BUY", 65, 24_500.0)
    pt.mark("NFO", opt, 129.95)
    assert kinds(pt) == []
    pt.mark("NFO", opt, 130.0)
    (t,) = pt.evaluate(at(11, 0))
    assert (t.kind, t.keys, t.value) == ("leg_stop", (("NFO", opt, "MIS"),), -30.0)
    pt.mark("NFO", FUT, 36_750.0)
    assert kinds(pt) == ["leg_target"]


def test_mis_squareoff_at_the_exchange_cutoff(refdata: RefData) -> None:
    pt = monitor(refdata)
    fill(pt, "BUY", 65, 24_500.0)
    fill(pt, "BUY", 65, 24_500.0, product="NRML", symbol="NIFTY26JAN27FUT")
    assert kinds(pt, at(15, 14)) == []
    (t,) = pt.evaluate(at(15, 15))
    assert (t.kind, t.keys) == ("mis_squareoff", (KEY,))  # NRML is left alone


def test_contracts_expiring_today_are_closed_at_expiry_close(refdata: RefData) -> None:
    """23 Nov 2026 is NIFTY's weekly expiry (the 24th a holiday): at 15:20 risk closes the
    positions in contracts expiring that day, whatever their product, once; a December
    future is left alone; a book with ``expiry_close = ""`` holds to settlement."""
    opt = "NIFTY23NOV2624500CE"
    pt = monitor(refdata)
    fill(pt, "SELL", 65, 80.0, product="NRML", symbol=opt)
    fill(pt, "BUY", 65, 24_500.0, product="NRML")
    ist_s = lambda h, m: int(at(h, m).timestamp()) + 19_800  # noqa: E731
    assert kinds(pt, at(15, 19)) == []
    assert pt.quiet(ist_s(15, 19)) and not pt.quiet(ist_s(15, 20))
    (t,) = pt.evaluate(at(15, 20))
    assert (t.kind, t.keys) == ("expiry_close", (("NFO", opt, "NRML"),))
    assert kinds(pt, at(15, 21)) == []  # once
    nov24 = int(datetime(2026, 11, 25, 15, 20, tzinfo=IST).timestamp()) + 19_800
    assert pt.quiet(nov24)  # another day: nothing of this book expires
    held = monitor(refdata, expiry_close="")
    fill(held, "SELL", 65, 80.0, product="NRML", symbol=opt)
    assert kinds(held, at(15, 25)) == [] and held.quiet(ist_s(15, 25))
    with pytest.raises(ValueError, match="expiry_close must look like"):
        Limits(expiry_close="3pm")


def test_a_book_the_market_takes_past_its_delta_cap_is_set_reducing(refdata: RefData) -> None:
    """Short two lots of a week-out call: as the index rises, the book's delta grows
    short past the cap: one greek_limit trigger (REDUCING, nothing closed)."""
    from mytrading.risk.orders import plan

    ce = "NIFTY01DEC2624500CE"
    pt = monitor(refdata, max_net_delta=100.0)
    fill(pt, "SELL", 130, 200.0, product="NRML", symbol=ce)
    pt.mark("NSE_INDEX", "NIFTY", 24_500.0)
    pt.mark("NFO", ce, 200.0)
    assert kinds(pt) == []  # about -65 units
    pt.mark("NSE_INDEX", "NIFTY", 25_300.0)
    pt.mark("NFO", ce, 820.0)  # deep in the money: delta near -1 a unit
    (t,) = pt.evaluate(at(11, 0))
    assert (t.kind, t.keys, t.threshold) == ("greek_limit", (), 100.0) and t.value < -100
    assert "net delta in NIFTY" in t.reason
    p = plan(t, pt)
    assert p.state == ("s", "reducing") and p.jobs == []
    assert kinds(pt, at(11, 1)) == []  # once


def test_equity_mis_is_squared_off_and_delivery_kept(refdata: RefData) -> None:
    pt = monitor(refdata)
    fill(pt, "BUY", 10, 1_400.0, exchange="NSE", symbol="RELIANCE", product="MIS")
    fill(pt, "BUY", 5, 800.0, exchange="NSE", symbol="SBIN", product="CNC")
    fill(pt, "SELL", 20, 120.0, exchange="BSE", symbol="ITC", product="MIS")
    cutoff = refdata.calendar.session("NSE").mis_squareoff
    assert kinds(pt, at(cutoff.hour, cutoff.minute - 1)) == []
    (t,) = pt.evaluate(at(cutoff.hour, cutoff.minute))
    assert t.kind == "mis_squareoff"
    assert sorted(t.keys) == [("BSE", "ITC", "MIS"), ("NSE", "RELIANCE", "MIS")]  # not CNC


def test_stack_daily_loss_and_drawdown(refdata: RefData) -> None:
    pt = monitor(refdata, StackLimits(daily_loss_limit=5000.0, max_drawdown=3000.0))
    fill(pt, "BUY", 65, 24_500.0, strategy="a")
    fill(pt, "BUY", 65, 24_500.0, strategy="b")
    pt.mark("NFO", FUT, 24_530.0)  # each +1950 - 89.84: the stack peaks at 3720.32
    assert kinds(pt) == []
    pt.mark("NFO", FUT, 24_507.0)  # 2 x (455 - 89.84) = 730.32: a 2990 drawdown
    assert kinds(pt) == []
    pt.mark("NFO", FUT, 24_506.9)
    (t,) = pt.evaluate(at(11, 0))
    assert (t.kind, t.strategy) == ("max_drawdown", "*")
    pt.mark("NFO", FUT, 24_460.0)  # 2 x (-2600 - 89.84) = -5379.68
    assert kinds(pt) == ["daily_loss"]


def test_a_new_day_starts_the_limits_again(refdata: RefData, tmp_path: Path) -> None:
    pt = monitor(refdata, max_loss=100.0)
    fill(pt, "BUY", 65, 24_500.0)
    pt.mark("NFO", FUT, 24_400.0)
    assert kinds(pt) == ["max_loss"]
    nxt = datetime(2026, 11, 25, 10, 0, tzinfo=IST)
    assert kinds(pt, nxt) == ["max_loss"]  # the position is still losing on the new day
    assert pt.pnl("s")["charges"] == 0.0 and pt.pnl("s")["realized"] == 0.0


def test_supertrend_exit_fires_only_on_a_closed_bar_that_turns_against_the_position(
    refdata: RefData,
) -> None:
    pt = monitor(
        refdata,
        supertrend_exit=True,
        supertrend_tf="1m",
        supertrend_period=3,
        supertrend_multiplier=1.0,
    )
    fill(pt, "BUY", 65, 24_500.0)
    base = datetime(2026, 11, 23, 10, 0, tzinfo=IST)

    def tick(minute: int, second: int, px: float) -> None:
        t = int((base.timestamp() + minute * 60 + second) * 1e9)
        pt.on_tick(
            wire.Tick(
                exchange="NFO",
                symbol=FUT,
                ltp=px,
                bid=px,
                ask=px,
                bid_qty=0,
                ask_qty=0,
                volume=0,
                exch_ns=t,
            )
        )

    def close_minute(minute: int) -> list[str]:
        return kinds(pt, datetime.fromtimestamp(base.timestamp() + minute * 60, IST))

    for m in range(6):  # a rising market: Supertrend turns up and stays up
        tick(m, 1, 24_500.0 + 10 * m)
        tick(m, 30, 24_505.0 + 10 * m)
        assert close_minute(m + 1) == []
    tick(6, 1, 24_540.0)
    tick(6, 20, 24_400.0)  # a breach inside the bar: nothing yet
    assert kinds(pt, datetime.fromtimestamp(base.timestamp() + 6 * 60 + 30, IST)) == []
    tick(6, 40, 24_545.0)  # ... and it closes back up: no exit
    assert close_minute(7) == []
    tick(7, 1, 24_540.0)
    tick(7, 50, 24_380.0)  # closes far below the line
    (t,) = pt.evaluate(datetime.fromtimestamp(base.timestamp() + 8 * 60, IST))
    assert (t.kind, t.keys) == ("supertrend_exit", (KEY,)) and "breakdown" in t.reason
    assert close_minute(9) == []  # fires once: the flip is read once


def test_a_restarted_monitor_keeps_its_trailing_level_and_fired_triggers(
    refdata: RefData, tmp_path: Path
) -> None:
    """The day's marks survive a restart of risk (risk_marks.json): the trailing stop does
    not loosen, a fired limit does not fire again; marks of another day are ignored."""
    from mytrading.risk.state import MarksStore

    lim = {"trailing_type": "amount", "trailing_value": 500.0, "trailing_activation": 2000.0}
    pt = monitor(refdata, max_loss=100_000.0, **lim)
    fill(pt, "BUY", 65, 24_500.0)
    pt.mark("NFO", FUT, 24_540.0)  # net 2510: active, level 2010.16
    assert kinds(pt) == []
    pt.books["s"].fired.add("max_loss")  # as if it had fired earlier in the day
    store = MarksStore(tmp_path / "risk_marks.json")
    store.save(pt.day_marks())

    def restarted(marks_day: date) -> PostTrade:
        again = monitor(refdata, max_loss=100_000.0, **lim)
        marks, problem = MarksStore(tmp_path / "risk_marks.json").load()
        assert problem == ""
        again.restore_marks({**marks, "day": marks_day.isoformat()}, DAY)
        fill(again, "BUY", 65, 24_500.0)  # the day's fills, replayed from the router
        again.mark("NFO", FUT, 24_532.0)  # net 1990.16: below the level, below activation
        return again

    kept = restarted(DAY)
    assert kept.books["s"].trail_level == pytest.approx(2010.16)
    assert kept.books["s"].fired == {"max_loss"}
    assert kinds(kept) == ["trailing_stop"]
    fresh = restarted(date(2026, 11, 20))  # yesterday's marks: a new day starts clean
    assert fresh.books["s"].trail_level is None and kinds(fresh) == []
    (tmp_path / "risk_marks.json").write_text("{not json")
    assert "is unreadable" in MarksStore(tmp_path / "risk_marks.json").load()[1]


@pytest.mark.parametrize("late_s", [0.1, 2.0, 60.0, -60.0])
def test_supertrend_bars_under_a_late_feed_are_each_minute_once(
    refdata: RefData, late_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Risk's Supertrend exit builds its bars with the same builder as the engine: with
    ticks a fraction of a second, two seconds or a minute late (or a minute ahead), each
    minute reaches the Supertrend once, with its own ticks' high, low and close (read
    where the Supertrend takes them: a method patched on the monitor would not be seen by
    its compiled build)."""
    monkeypatch.setattr(BarBuilder, "default_grace_ns", 2_000_000_000)  # the default
    pt = monitor(refdata, supertrend_exit=True, supertrend_tf="1m", supertrend_period=3,
                 supertrend_multiplier=1.0)  # fmt: skip
    fill(pt, "BUY", 65, 24_500.0)
    seen: list[tuple[float, float, float]] = []

    class Recorded(stream.Supertrend):
        def update(self, high: float, low: float, close: float) -> tuple[float, float]:
            seen.append((high, low, close))
            return super().update(high, low, close)

    pt.supertrends[("NFO", FUT, "1m", 3, 1.0)] = Recorded(3, 1.0)
    base = int(datetime(2026, 11, 23, 10, 0, tzinfo=IST).timestamp()) * 10**9
    expected: dict[int, list[float]] = {}
    for i in range(10 * 20):  # ten minutes, a tick every 3 s
        stamp = base + i * 3 * 10**9
        px = 24_500.0 + (i * 7919 % 50)
        expected.setdefault(stamp - (stamp - base) % (60 * 10**9), []).append(px)
        arrival = stamp + int(late_s * 1e9)
        tick = wire.Tick(exchange="NFO", symbol=FUT, ltp=px, bid=px, ask=px, bid_qty=0,
                         ask_qty=0, volume=i, exch_ns=stamp)  # fmt: skip
        pt.on_tick(tick, arrival)
        pt.evaluate(datetime.fromtimestamp(arrival / 1e9, IST))
    minutes = [expected[m] for m in sorted(expected)]
    assert len(seen) >= 9  # each minute once, in order, of its own ticks
    assert seen == [(max(t), min(t), t[-1]) for t in minutes[: len(seen)]]
