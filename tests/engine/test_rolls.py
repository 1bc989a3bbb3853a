"""Futures roll-over: when a position rolls, the pair risk approves or refuses as one, the
outcome confirmed from the position book, a restart mid-roll, continuous history, and a
backtest of a rolling strategy."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from mytrading.backtest.data import GeneratedBars
from mytrading.backtest.loop import Backtest, Spec
from mytrading.backtest.report import _rolls as report_rolls
from mytrading.domain.refdata import IST, RefData, load_refdata
from mytrading.engine.continuous import continuous, roll_date
from mytrading.engine.loader import discover
from mytrading.engine.rolls import due, next_contract
from mytrading.engine.runner import StrategyRunner
from mytrading.engine.strategy import BaseStrategy
from mytrading.messaging import wire
from mytrading.openalgo.history import HistoryError
from mytrading.risk.book import RiskBook
from mytrading.risk.config import risk_files
from mytrading.risk.limits import load_limits
from mytrading.risk.margin import load_margins
from mytrading.risk.orders import approved_order, children, decide, roll_children
from mytrading.risk.roll import RollApproval, RollWatch
from mytrading.risk.rules import Rejection
from mytrading.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "config"
NOV, DEC = "NIFTY23NOV26FUT", "NIFTY29DEC26FUT"  # 2026-11-20: one trading day to NOV's expiry
LOT = 65
NS = 1_000_000_000


class Holder(BaseStrategy):
    """Watches NOV's bars with a warm-up; records its rolls."""

    name = "holder"

    def on_start(self) -> None:
        self.rolled: list[tuple[str, str, bool]] = []
        self.add_indicator("SMA", name="sma", period=3)
        self.subscribe_bars("NFO", NOV, "1m", warmup=3)

    def on_roll(self, old: tuple[str, str], new: tuple[str, str], ok: bool) -> None:
        self.rolled.append((old[1], new[1], ok))


class Desk:
    """The engine's runner, risk's rules and roll watch, and a broker that fills every
    MARKET order at the last price: the live path without sockets."""

    def __init__(self, refdata: RefData, run_id: str = "r", book: RiskBook | None = None):
        self.refdata = refdata
        self.t = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
        self.intents: list[wire.PlaceIntent] = []
        self.orders: list[wire.Order] = []
        self.events: list[wire.RiskEvent] = []
        self.book = book or RiskBook()
        self.book.funds["main"].report(10_000_000.0, 0)
        self.limits = load_limits(CONFIG / "risk.toml", {"any_hour": True})
        self.margins = load_margins(CONFIG)
        self.broker: dict[tuple[str, str, str], int] = {}
        self.fill_no = 0
        self.watch = RollWatch(
            lambda key, account: self.broker.get(key, 0),
            lambda key, account: self.broker.get(key, 0),
            self.events.append,
            lambda strategy, key: self.events.append(
                wire.RiskEvent(strategy=strategy, kind="exit", rule="roll", reason=key[1])
            ),
        )
        self.runner = StrategyRunner(
            refdata,
            lambda: int(self.t.timestamp() * NS),
            lambda: self.t,
            self.intents.append,
            lambda ex, sym: None,
            run_id=run_id,
            history=self.history,
        )
        self.refuse: set[str] = set()  # symbols whose orders the broker rejects

    def history(self, ex: str, sym: str, tf: str, start: date, end: date) -> list[wire.Bar]:
        t0 = int((self.t - timedelta(minutes=10)).timestamp()) // 60 * 60 * NS
        px = 24_000.0 if sym == NOV else 24_150.0
        return [
            wire.Bar(
                exchange=ex,
                symbol=sym,
                tf=tf,
                start_ns=t0 + i * 60 * NS,
                open=px,
                high=px,
                low=px,
                close=px + i,
                volume=1,
            )
            for i in range(5)
        ]

    def tick(self, symbol: str, ltp: float) -> None:
        ns = int(self.t.timestamp() * NS)
        self.book.ltp[("NFO", symbol)] = ltp
        self.runner.on_tick(
            wire.Tick(
                exchange="NFO",
                symbol=symbol,
                ltp=ltp,
                bid=ltp,
                ask=ltp,
                bid_qty=1,
                ask_qty=1,
                volume=1,
                exch_ns=ns,
                ts=ns,
            )
        )

    def step(self) -> None:
        """Intents through risk, orders through the broker, outcomes back."""
        while self.intents:
            i = self.intents.pop(0)
            limits = self.limits.of(i.strategy)
            ok = decide(i, self.book, self.refdata, limits, self.t, 0, self.margins)
            self.book.seen_intents.add(i.intent_id)
            if isinstance(ok, Rejection):
                self.events.append(
                    wire.RiskEvent(
                        strategy=i.strategy,
                        kind="rejected",
                        rule=ok.rule,
                        reason=ok.reason,
                        intent_id=i.intent_id,
                    )
                )
                self.runner.on_risk_reject(self.events[-1])
                continue
            assert isinstance(ok, RollApproval) == isinstance(i, wire.RollIntent)
            if isinstance(ok, RollApproval):
                close, open_, a, b = roll_children(i, ok, self.book, self.refdata, limits, "risk")
                self.watch.start(i, close, open_, (len(a), len(b)))
                self.orders += [*a, *b]
            else:
                base = approved_order(i, ok, self.book, "risk")
                self.orders += children(base, self.book, self.refdata, limits)
        for o in self.orders:
            self.execute(o)
        self.orders.clear()
        self.watch.step()

    def execute(self, o: wire.Order) -> None:
        status = "rejected" if o.symbol in self.refuse else "complete"
        filled = o.quantity if status == "complete" else 0
        signed = filled if o.action == "BUY" else -filled
        price = self.book.ltp.get((o.exchange, o.symbol), 0.0)
        u = wire.OrderUpdate(
            order_id=o.order_id,
            intent_id=o.intent_id,
            strategy=o.strategy,
            exchange=o.exchange,
            symbol=o.symbol,
            action=o.action,
            quantity=o.quantity,
            status=status,
            filled_qty=filled,
            avg_price=price,
        )
        if filled:
            key = (o.exchange, o.symbol, o.product)
            self.broker[key] = self.broker.get(key, 0) + signed
            self.fill_no += 1
            f = wire.Fill(
                fill_no=self.fill_no,
                fill_id=str(self.fill_no),
                order_id=o.order_id,
                broker_order_id="b",
                strategy=o.strategy,
                exchange=o.exchange,
                symbol=o.symbol,
                product=o.product,
                action=o.action,
                quantity=filled,
                price=price,
                exch_ns=0,
            )
            self.book.on_fill(f)
            self.watch.on_fill(f)
            self.runner.on_fill(f)
        self.book.on_update(u)
        self.watch.on_update(u)
        self.runner.on_order_update(u)

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)
        self.runner.poll()
        self.step()


def holding(refdata: RefData, roll_days: int = 1, lots: int = 2, **kw: Any) -> tuple[Desk, Any]:
    desk = Desk(refdata, **kw)
    s = desk.runner.add(Holder, {"roll_days": roll_days})
    desk.runner.start()
    desk.tick(NOV, 24_000.0)
    s.buy("NFO", NOV, lots * LOT, product="NRML")
    desk.step()
    assert s.position("NFO", NOV) == lots * LOT
    return desk, s


def test_which_contract_is_due_and_what_it_rolls_into(refdata: RefData) -> None:
    cal = refdata.calendar
    friday = date(2026, 11, 20)
    assert cal.trading_days_left("NFO", friday, date(2026, 11, 23)) == 1  # Monday's expiry
    assert cal.trading_days_left("NFO", date(2026, 11, 23), date(2026, 11, 23)) == 0
    assert due(refdata, "NFO", NOV, friday, 1) and due(refdata, "NFO", NOV, friday, 3)
    assert not due(refdata, "NFO", NOV, friday, 0)  # 0: never
    assert not due(refdata, "NFO", NOV, date(2026, 11, 16), 2)  # five days left
    assert not due(refdata, "NSE", "SBIN", friday, 5)  # an equity never rolls
    assert next_contract(refdata, "NFO", NOV, friday, 1) == DEC
    assert next_contract(refdata, "NFO", "SBIN23NOV26FUT", friday, 1) == "SBIN29DEC26FUT"
    desk = Desk(refdata)
    plain = desk.runner.add(Holder, {})
    assert plain.future("NIFTY") == ("NFO", NOV)
    desk2 = Desk(refdata)

    class Roller(Holder):
        name = "roller"

    rolling = desk2.runner.add(Roller, {"roll_days": 1})
    assert rolling.future("NIFTY") == ("NFO", DEC)  # new entries go to the next month
    assert rolling.future("NIFTY", "next") == ("NFO", "NIFTY26JAN27FUT")
    with pytest.raises(Exception, match="roll_days"):
        desk2.runner.add(type("Bad", (Holder,), {"name": "bad"}), {"roll_days": -1})


def test_a_held_future_rolls_once_as_one_pair_and_the_strategy_follows(refdata: RefData) -> None:
    desk, s = holding(refdata)
    desk.advance(31)
    # no price for DEC yet: it waits
    assert not [i for i in desk.intents if isinstance(i, wire.RollIntent)]
    assert not any(e.kind == "roll" for e in desk.events)
    desk.tick(DEC, 24_150.0)
    desk.advance(31)
    rolls = [e for e in desk.events if e.kind == "roll"]
    assert [e.action for e in rolls] == ["approved", "confirmed"], desk.events
    assert "closed NIFTY23NOV26FUT at 24000.00, opened NIFTY29DEC26FUT at 24150.00" in (
        rolls[1].reason
    )
    assert rolls[1].value == 150.0  # the spread paid
    assert s.position("NFO", NOV) == 0 and s.position("NFO", DEC) == 2 * LOT
    assert desk.broker[("NFO", NOV, "NRML")] == 0 and desk.broker[("NFO", DEC, "NRML")] == 130
    assert s.rolled == [(NOV, DEC, True)]
    # the strategy's bars and SMA moved to DEC, warmed up again from DEC's history
    assert ("NFO", DEC, "1m") in s.context.rings and ("NFO", NOV, "1m") not in s.context.rings
    assert [b.symbol for b in s.bars("NFO", DEC)] == [DEC] * 3
    assert s.get_indicator_value("sma") == pytest.approx(24_150.0 + 3.0)  # the last 3: +2..+4
    assert "holder" in desk.runner.bar_subs[("NFO", DEC)]["1m"]
    assert "holder" not in desk.runner.bar_subs[("NFO", NOV)]["1m"]
    # nobody uses November any more: the engine stops declaring it to the feed
    assert ("NFO", NOV) not in desk.runner.watched and ("NFO", DEC) in desk.runner.watched
    for _ in range(5):  # later checks find nothing to roll
        desk.advance(31)
    assert sum(1 for e in desk.events if e.kind == "roll") == 2
    assert [o for o in desk.intents if isinstance(o, wire.RollIntent)] == []


def test_risk_refuses_a_roll_that_is_not_the_whole_position_or_is_in_flight(
    refdata: RefData,
) -> None:
    desk, _s = holding(refdata)
    desk.tick(DEC, 24_150.0)
    book, limits = desk.book, desk.limits.of("holder")

    def ask(**kw: Any) -> Rejection | RollApproval:
        fields = dict(
            intent_id=f"x{len(book.seen_intents)}",
            strategy="holder",
            exchange="NFO",
            symbol=NOV,
            action="SELL",
            quantity=2 * LOT,
            product="NRML",
            roll_to=DEC,
        )
        fields.update(kw)
        i = wire.RollIntent(**fields)  # type: ignore[arg-type]
        return decide(i, book, refdata, limits, desk.t, 0, desk.margins)

    assert isinstance(ask(), RollApproval) and ask().open_quantity == 2 * LOT
    assert ask(quantity=LOT).rule == "roll_position"  # type: ignore[union-attr]
    assert ask(action="BUY").rule == "roll_position"  # type: ignore[union-attr]
    assert ask(roll_to="NIFTY27OCT26FUT").rule == "roll"  # type: ignore[union-attr]
    assert ask(roll_to="BANKNIFTY29DEC26FUT").rule == "roll"  # type: ignore[union-attr]
    assert ask(roll_to="NIFTY29DEC2624000CE").rule == "roll"  # type: ignore[union-attr]
    with pytest.raises(TypeError):  # a roll is at MARKET: its type has no price to give
        ask(pricetype="LIMIT", price=1.0)
    del book.ltp[("NFO", DEC)]
    assert ask().rule == "price"  # type: ignore[union-attr]
    book.ltp[("NFO", DEC)] = 24_150.0
    book.states.set("holder", "reducing")
    assert ask().rule == "reducing"  # type: ignore[union-attr]
    book.states.set("holder", "active")
    book.funds["main"].report(1_000.0, 0)
    assert isinstance(ask(), RollApproval)  # the same lots of one index: no more margin
    book.broker_margin[("NFO", DEC, "BUY")] = (400_000.0, 0)  # the broker wants more for DEC
    refused = ask()
    assert refused.rule == "margin" and "more than the old contract frees" in refused.reason  # type: ignore[union-attr]
    book.funds["main"].report(10_000_000.0, 0)
    del book.broker_margin[("NFO", DEC, "BUY")]
    book.on_approved("holder.w", ("holder", "NFO", DEC), LOT)  # something working in DEC
    assert ask().rule == "roll_in_flight"  # type: ignore[union-attr]


def test_a_revised_lot_size_rolls_the_same_lots(refdata: RefData) -> None:
    revised = load_refdata(CONFIG)
    revised.overrides[("NFO", DEC)] = {"lot": 75}  # the exchange revised NIFTY's lot
    desk, s = holding(revised)
    desk.tick(DEC, 24_150.0)
    desk.advance(31)
    assert s.position("NFO", NOV) == 0 and s.position("NFO", DEC) == 2 * 75


def test_an_engine_restarted_mid_roll_does_not_roll_again(refdata: RefData) -> None:
    """The engine dies right after sending a roll. Whether the restarted engine learns of
    the legs from the router (working orders) or not (the intent was still in flight),
    the position is rolled once."""
    desk, _s = holding(refdata)
    desk.tick(DEC, 24_150.0)
    desk.t += timedelta(seconds=31)
    desk.runner.poll()
    (roll,) = [i for i in desk.intents if isinstance(i, wire.RollIntent)]
    desk.intents.clear()
    ok = decide(roll, desk.book, refdata, desk.limits.of("holder"), desk.t, 0, desk.margins)
    assert isinstance(ok, RollApproval)
    desk.book.seen_intents.add(roll.intent_id)
    close, open_, a, b = roll_children(roll, ok, desk.book, refdata, desk.limits.of("holder"), "r")
    desk.watch.start(roll, close, open_, (len(a), len(b)))
    snapshot = [
        wire.PositionSnapshot(
            strategy="holder",
            exchange="NFO",
            symbol=NOV,
            product="NRML",
            quantity=2 * LOT,
            avg_price=24_000.0,
            realized_pnl=0.0,
            unrealized_pnl=0.0,
            ltp=24_000.0,
        )
    ]

    # (1) the router has journaled both legs: they come back as working orders
    again = Desk(refdata, run_id="r2", book=desk.book)
    s2 = again.runner.add(Holder, {"roll_days": 1})
    again.runner.start()
    working = [wire.WorkingOrder(order=o, status="open") for o in (*a, *b)]
    again.runner.restore(snapshot, desk.fill_no, working)
    again.tick(DEC, 24_150.0)
    for _ in range(3):
        again.advance(31)
    assert not [i for i in again.intents if isinstance(i, wire.RollIntent)] and not again.events
    assert s2.working("NFO", NOV) == -2 * LOT and s2.working("NFO", DEC) == 2 * LOT

    # (2) the restarted engine saw nothing of it: its own roll is refused by risk, which
    # counts the first roll's legs as working
    third = Desk(refdata, run_id="r3", book=desk.book)
    third.watch, third.broker, third.fill_no = desk.watch, desk.broker, desk.fill_no
    s3 = third.runner.add(Holder, {"roll_days": 1})
    third.runner.start()
    third.runner.restore(snapshot, desk.fill_no, [])
    third.tick(DEC, 24_150.0)
    third.advance(31)
    refused = [e for e in third.events if e.kind == "rejected"]
    assert [e.rule for e in refused] == ["roll_in_flight"]
    assert s3.open_orders == {}  # both legs of its refused roll ended, unsent
    # the first roll's legs reach the broker: one roll, confirmed
    for o in (*a, *b):
        third.execute(o)
    desk.watch.step()
    assert [e.action for e in desk.events if e.kind == "roll"] == ["approved", "confirmed"]
    assert desk.broker[("NFO", NOV, "NRML")] == 0 and desk.broker[("NFO", DEC, "NRML")] == 130
    third.advance(301)  # past RETRY_S: nothing is left to roll
    assert not [i for i in third.intents if isinstance(i, wire.RollIntent)]
    assert s3.position("NFO", NOV) == 0 and s3.position("NFO", DEC) == 2 * LOT


def test_a_leg_that_fails_is_reported_and_a_stray_old_position_closed(refdata: RefData) -> None:
    desk, s = holding(refdata)
    desk.tick(DEC, 24_150.0)
    desk.refuse = {DEC}  # the broker rejects the new month
    desk.advance(31)
    rolls = [e for e in desk.events if e.kind == "roll"]
    assert [e.action for e in rolls] == ["approved", "incomplete"]
    assert "the rest is flat" in rolls[1].reason
    assert s.position("NFO", NOV) == 0 and s.position("NFO", DEC) == 0
    assert s.rolled == [(NOV, DEC, False)]  # it follows DEC, flat, and can re-enter there

    desk, s = holding(refdata)
    desk.tick(DEC, 24_150.0)
    desk.refuse = {NOV}  # the close is rejected: the new month opened, the old must go
    desk.advance(31)
    rolls = [e for e in desk.events if e.kind == "roll"]
    assert [e.action for e in rolls] == ["approved", "incomplete"]
    assert "closing the old contract" in rolls[1].reason
    assert [(e.kind, e.reason) for e in desk.events if e.kind == "exit"] == [("exit", NOV)]

    desk, s = holding(refdata)
    desk.tick(DEC, 24_150.0)
    desk.refuse = {NOV, DEC}
    desk.advance(31)
    assert [e.action for e in desk.events if e.kind == "roll"] == ["approved", "failed"]
    assert s.rolled == [] and s.position("NFO", NOV) == 2 * LOT
    n = len(desk.events)
    desk.advance(31)
    assert len(desk.events) == n  # tried again only after RETRY_S, not every check


def test_the_broker_book_disagreeing_is_a_mismatch(refdata: RefData) -> None:
    desk, _s = holding(refdata)
    desk.tick(DEC, 24_150.0)
    desk.watch._broker_net = lambda key, account: 0  # the broker shows nothing at all
    desk.advance(31)
    (last,) = [e for e in desk.events if e.kind == "roll" and e.action != "approved"]
    assert last.action == "mismatch" and "the broker's book holds 0" in last.reason


def test_a_flat_strategy_moves_its_data_without_an_order(refdata: RefData) -> None:
    desk = Desk(refdata)
    s = desk.runner.add(Holder, {"roll_days": 1})
    desk.runner.start()
    desk.advance(31)
    assert not desk.intents and s.rolled == [(NOV, DEC, True)]
    assert ("NFO", DEC, "1m") in s.context.rings


def test_continuous_history_stitches_each_month_after_its_roll_date(refdata: RefData) -> None:
    """Daily bars of three contracts at different levels: the series takes each month's
    bars from the day the one before it rolled; ``back`` shifts older months by the gap
    at each roll, so the series has no step there."""
    levels = {"NIFTY27OCT26FUT": 100.0, NOV: 110.0, DEC: 125.0}
    asked: list[tuple[str, date, date]] = []

    def history(ex: str, sym: str, tf: str, start: date, end: date) -> list[wire.Bar]:
        asked.append((sym, start, end))
        if sym not in levels:
            raise HistoryError(f"no history for expired {sym}")
        out, d = [], start
        while d <= end:
            if refdata.calendar.is_trading_day(ex, d):
                t = int(datetime(d.year, d.month, d.day, 9, 15, tzinfo=IST).timestamp()) * NS
                px = levels[sym]
                out.append(
                    wire.Bar(
                        exchange=ex,
                        symbol=sym,
                        tf="D",
                        start_ns=t,
                        open=px,
                        high=px,
                        low=px,
                        close=px,
                        volume=1,
                    )
                )
            d += timedelta(days=1)
        return out

    start, end = date(2026, 9, 1), date(2026, 12, 10)
    plain = continuous(history, refdata, "NFO", DEC, "D", start, end, 2)
    nov_switch = roll_date(refdata, "NFO", date(2026, 11, 23), 2)
    oct_switch = roll_date(refdata, "NFO", date(2026, 10, 27), 2)
    assert (nov_switch, oct_switch) == (date(2026, 11, 19), date(2026, 10, 23))
    by_day = {datetime.fromtimestamp(b.start_ns / NS, IST).date(): b.close for b in plain}
    assert {b.symbol for b in plain} == {DEC}
    assert by_day[nov_switch] == 125.0 and by_day[nov_switch - timedelta(days=1)] == 110.0
    assert by_day[oct_switch] == 110.0 and by_day[date(2026, 10, 22)] == 100.0
    # September's contract has no history: the series starts with October's
    assert min(by_day) > date(2026, 9, 22) and ("NIFTY29SEP26FUT" in {a[0] for a in asked})
    days = sorted(by_day)
    assert days == sorted(set(days))  # one bar a day, in order
    back = continuous(history, refdata, "NFO", DEC, "D", start, end, 2, "back")
    closes = {b.close for b in back}
    assert closes == {125.0}  # every month shifted onto December's level: no step
    assert len(back) == len(plain)
    with pytest.raises(HistoryError):  # the contract asked for must have history
        continuous(history, refdata, "NFO", "NIFTY26JAN27FUT", "D", start, date(2027, 1, 8), 2)


def test_a_backtest_of_a_rolling_strategy_shows_the_roll(refdata: RefData) -> None:
    """sma_crossover on NRML, always in the market, with ``roll_days = 2``: two trading
    days before November's expiry it rolls into December as one pair and trades on."""
    sma = discover(PROJECT_ROOT / "strategies")["sma_crossover"]
    start, end = date(2026, 11, 17), date(2026, 11, 24)
    source = GeneratedBars(refdata, 7, origin=start - timedelta(days=120))
    params = {"fast": 5, "slow": 20, "product": "NRML", "timeframe": "15m", "roll_days": 2}
    bt = Backtest(
        Spec([(sma, params)], start, end, capital=5_000_000.0),
        refdata,
        risk_files(CONFIG, {}),
        source,
    )
    res = bt.run()
    rolls = [e for e in res.events if e["kind"] == "roll"]
    assert [e["action"] for e in rolls] == ["approved", "confirmed"], res.events
    when = datetime.fromtimestamp(rolls[0]["time"] / NS, IST)
    assert when.date() == date(2026, 11, 19)  # 2 trading days before the 23rd
    assert NOV in rolls[1]["reason"] and DEC in rolls[1]["reason"]
    legs = [o for o in res.orders.values() if o["order_id"].endswith(("~1", "~2"))]
    assert sorted((o["symbol"], o["status"]) for o in legs) == [
        (NOV, "complete"),
        (DEC, "complete"),
    ]
    (close_fill,) = [f for f in res.fills if f["order_id"].endswith("~1")]
    rolled = [t for t in res.trades("sma_crossover") if t["exit_time"] == close_fill["time"]]
    assert [t["symbol"] for t in rolled] == [NOV]  # the roll closed November's trade
    assert [t["exit_by"] for t in rolled] == ["roll"]
    page = report_rolls(res.tables()["events"])  # the report's "Futures rolls" table
    assert "<table id='rolls'>" in page and "2026-11-19" in page and "confirmed" in page
    assert f"rolled {NOV} -&gt; {DEC}" in page
    after = [f for f in res.fills if f["time"] > rolls[1]["time"]]
    assert after and {f["symbol"] for f in after} == {DEC}  # it trades on in December
    assert not [f for f in res.fills if f["symbol"] == NOV and f["time"] > rolls[1]["time"]]
    s = bt.runner.strategies["sma_crossover"]
    assert s.symbol == DEC  # type: ignore[attr-defined]
    held = {(p["symbol"]) for p in res.open_positions()}
    assert NOV not in held
