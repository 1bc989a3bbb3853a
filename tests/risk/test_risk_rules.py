"""Each pre-trade rule at and around its threshold."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from mytrading.domain.accounts import MAIN
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.risk.book import RiskBook
from mytrading.risk.limits import Limits
from mytrading.risk.rules import Approval, Rejection, check, check_cancel
from mytrading.risk.state import Hold, StateStore, TradingStates, Why

FUT = "NIFTY29DEC26FUT"  # lot 65
OPEN = datetime(2026, 11, 23, 10, 0, tzinfo=IST)
LIMITS = Limits(max_order_lots=10, max_position_lots=20, max_orders_per_sec=5)
_ids = iter(range(10**9))


def intent(qty: int = 65, action: str = "BUY", **kw: object) -> wire.Intent:
    """A new order; ``op="modify"``/``"cancel"`` makes the amend or cancel intent."""
    kind = {"place": wire.PlaceIntent, "modify": wire.AmendIntent, "cancel": wire.CancelIntent}[
        str(kw.pop("op", "place"))
    ]
    fields = dict(
        intent_id=f"i{next(_ids)}",
        strategy="s",
        exchange="NFO",
        symbol=FUT,
        action=action,
        quantity=qty,
    )
    fields.update(kw)
    return kind(**fields)  # type: ignore[no-any-return]


def run(
    i: wire.Intent,
    book: RiskBook | None = None,
    refdata: RefData | None = None,
    limits: Limits = LIMITS,
    when: datetime = OPEN,
    wall_ns: int = 10**18,
) -> Rejection | tuple:
    if isinstance(i, wire.CancelIntent):
        return check_cancel(i, book or RiskBook())
    return check(i, book or RiskBook(), refdata, limits, when, wall_ns)  # type: ignore[arg-type]


def funded(available: float) -> RiskBook:
    """A book whose main account reported ``available`` at wall time 10**18."""
    book = RiskBook()
    book.funds[MAIN].report(available, 10**18)
    return book


def rule(result: object) -> str:
    return result.rule if isinstance(result, Rejection) else "ok"


def test_lot_multiple(refdata: RefData) -> None:
    assert rule(run(intent(65), refdata=refdata)) == "ok"
    assert rule(run(intent(64), refdata=refdata)) == "lot_multiple"
    assert rule(run(intent(66), refdata=refdata)) == "lot_multiple"
    assert rule(run(intent(0), refdata=refdata)) == "quantity"
    assert rule(run(intent(-65), refdata=refdata)) == "quantity"


def test_max_order_quantity(refdata: RefData) -> None:
    lim = LIMITS.model_copy(update={"max_position_lots": 100, "max_strategy_lots": 100})
    assert rule(run(intent(65 * 50), refdata=refdata, limits=lim)) == "ok"
    r = run(intent(65 * 51), refdata=refdata, limits=lim)
    assert (
        isinstance(r, Rejection)
        and r.rule == "max_order_qty"
        and (r.threshold, r.value) == (50, 51)
    )


def test_freeze_split_with_a_remainder(refdata: RefData) -> None:
    from mytrading.risk.rules import child_size, split

    nifty = refdata.instrument("NFO", FUT)  # lot 65, freeze 1,800 = 27 lots (1,755)
    assert child_size(nifty, LIMITS) == 650  # max_order_lots 10 is below the freeze
    assert split(65 * 23, nifty, LIMITS) == [650, 650, 195]
    assert split(650, nifty, LIMITS) == [650]
    big = LIMITS.model_copy(update={"max_order_lots": 40})
    assert child_size(nifty, big) == 1755  # the freeze caps it: 27 whole lots
    assert split(65 * 60, nifty, big) == [1755, 1755, 390]
    # a modify cannot grow one child order past the child size, nor touch a split order
    book = RiskBook()
    book.on_approved("s.e1", ("s", "NFO", FUT), 650)
    assert rule(run(intent(715, op="modify", ref_intent_id="e1"), book, refdata)) == (
        "split_modify"
    )
    book.on_approved("s.e2.1", ("s", "NFO", FUT), 650)
    book.on_approved("s.e2.2", ("s", "NFO", FUT), 195)
    assert book.children("s.e2") == ["s.e2.1", "s.e2.2"]
    assert rule(run(intent(65, op="modify", ref_intent_id="e2"), book, refdata)) == ("split_modify")
    assert rule(run(intent(65, op="cancel", ref_intent_id="e2"), book, refdata)) == "ok"


def test_max_position_counts_fills_and_working_orders(refdata: RefData) -> None:
    book = RiskBook()
    book.positions[("s", "NFO", FUT)] = 65 * 15
    assert rule(run(intent(65 * 5), book, refdata)) == "ok"  # reaches exactly 20 lots
    book.on_approved("o1", ("s", "NFO", FUT), 65 * 5)  # working, not yet filled
    assert rule(run(intent(65), book, refdata)) == "max_position"
    assert rule(run(intent(65 * 10, "SELL"), book, refdata)) == "ok"  # reducing is allowed
    book.on_update(
        wire.OrderUpdate(
            order_id="o1",
            intent_id="",
            strategy="s",
            exchange="NFO",
            symbol=FUT,
            action="BUY",
            quantity=325,
            status="cancelled",
        )
    )
    assert rule(run(intent(65 * 5), book, refdata)) == "ok"


def test_max_position_short_side(refdata: RefData) -> None:
    book = RiskBook()
    book.positions[("s", "NFO", FUT)] = -65 * 20
    assert rule(run(intent(65, "SELL"), book, refdata)) == "max_position"
    assert rule(run(intent(65, "BUY"), book, refdata)) == "ok"


def test_order_rate_per_strategy(refdata: RefData) -> None:
    book = RiskBook()
    t0 = 5 * 10**18
    for k in range(5):
        book.approvals["s"].append(t0 + k * 1000)
    assert rule(run(intent(), book, refdata, wall_ns=t0 + 999_999_999)) == "order_rate"
    assert rule(run(intent(strategy="other"), book, refdata, wall_ns=t0 + 10)) == "ok"
    assert (
        rule(run(intent(), book, refdata, wall_ns=t0 + 1_000_000_000)) == "ok"
    )  # first one aged out


def test_the_order_rate_counts_exactly_the_last_seconds_approvals(refdata: RefData) -> None:
    """Older approvals of the minute before, and more in the second than the limit (a
    follower's approvals count on its strategy's window): the refusal says how many."""
    book = RiskBook()
    t0 = 5 * 10**18
    book.approvals["s"].extend(t0 + k * 10**8 for k in range(20))  # 2 s, one every 100 ms
    book.approvals["s"].extend([t0 + 2 * 10**9] * 3)  # three at one instant
    now = t0 + 2 * 10**9 + 5 * 10**7  # the last second: 1.1 .. 1.9 s (9) and the 3
    r = run(intent(), book, refdata, wall_ns=now)
    assert isinstance(r, Rejection) and r.rule == "order_rate" and r.value == 9 + 3 + 1
    book.approvals["s"].extend([t0 + 2 * 10**9 + 1] * 2)
    at_edge = t0 + 19 * 10**8 + 10**9  # the 1.9 s one is a second old exactly: out
    r = run(intent(), book, refdata, wall_ns=at_edge)
    assert isinstance(r, Rejection) and r.value == 3 + 2 + 1


@pytest.mark.parametrize(
    "when, ok",
    [
        (datetime(2026, 11, 23, 9, 14, 59, tzinfo=IST), False),
        (datetime(2026, 11, 23, 9, 15, tzinfo=IST), True),
        (datetime(2026, 11, 23, 15, 29, 59, tzinfo=IST), True),
        (datetime(2026, 11, 23, 15, 30, tzinfo=IST), False),
        (datetime(2026, 11, 24, 11, 0, tzinfo=IST), False),  # holiday
        (datetime(2026, 11, 21, 11, 0, tzinfo=IST), False),  # Saturday
    ],
)
def test_market_hours(refdata: RefData, when: datetime, ok: bool) -> None:
    all_day = LIMITS.model_copy(update={"entry_window": (time(9, 0), time(16, 0))})
    got = rule(run(intent(product="NRML"), refdata=refdata, when=when, limits=all_day))
    assert got == ("ok" if ok else "market_hours")
    any_hour = LIMITS.model_copy(update={"any_hour": True})
    assert rule(run(intent(), refdata=refdata, when=when, limits=any_hour)) == "ok"


def test_kill_switch_refuses_every_entry(refdata: RefData) -> None:
    book = RiskBook(states=TradingStates("halted"))
    assert rule(run(intent(), book, refdata)) == "kill_switch"  # flat: both sides are entries
    assert rule(run(intent(action="SELL"), book, refdata)) == "kill_switch"


def test_duplicate_intent(refdata: RefData) -> None:
    book = RiskBook()
    i = intent()
    assert rule(run(i, book, refdata)) == "ok"
    book.seen_intents.add(i.intent_id)
    assert rule(run(i, book, refdata)) == "duplicate_intent"


def test_instrument_and_price_rules_and_tick_rounding(refdata: RefData) -> None:
    assert rule(run(intent(symbol="NOPE29DEC26FUT"), refdata=refdata)) == "instrument"
    assert (
        rule(run(intent(1, exchange="NSE_INDEX", symbol="NIFTY"), refdata=refdata)) == "instrument"
    )
    assert rule(run(intent(pricetype="LIMIT"), refdata=refdata)) == "price"
    assert rule(run(intent(pricetype="SL-M"), refdata=refdata)) == "price"
    assert rule(run(intent(pricetype="SL", price=100.0), refdata=refdata)) == "price"
    ok = run(intent(pricetype="SL", price=100.02, trigger_price=100.08), refdata=refdata)
    assert isinstance(ok, Approval) and (ok.price, ok.trigger) == (100.0, 100.1)


def test_cancel_needs_only_a_working_order_and_passes_the_kill_switch(refdata: RefData) -> None:
    book = RiskBook(states=TradingStates("halted"))
    assert rule(run(intent(op="cancel", ref_intent_id="e1"), book, refdata)) == "not_working"
    book.on_approved("s.e1", ("s", "NFO", FUT), 65)
    cancel = intent(op="cancel", ref_intent_id="e1")
    approval = run(cancel, book, refdata)
    assert isinstance(approval, Approval) and approval.margin == 0.0
    book.seen_intents.add(cancel.intent_id)
    assert rule(run(cancel, book, refdata)) == "duplicate_intent"  # never sent twice
    # a modify is a new commitment: the kill switch holds it back
    assert rule(run(intent(op="modify", ref_intent_id="e1"), book, refdata)) == "kill_switch"


def test_modify_is_checked_like_an_order_without_double_counting_its_target(
    refdata: RefData,
) -> None:
    book = RiskBook()
    book.positions[("s", "NFO", FUT)] = 65 * 11
    book.on_approved("s.e1", ("s", "NFO", FUT), 65 * 9)  # working: 20 lots if filled
    # resizing the working order to 9 lots keeps the worst case at 20: allowed
    assert rule(run(intent(65 * 9, op="modify", ref_intent_id="e1"), book, refdata)) == "ok"
    # to 10 lots it would reach 21
    r = run(intent(65 * 10, op="modify", ref_intent_id="e1"), book, refdata)
    assert isinstance(r, Rejection) and r.rule == "max_position" and r.value == 65 * 21
    m = run(
        intent(65, op="modify", ref_intent_id="e1", pricetype="LIMIT", price=100.02), book, refdata
    )
    assert isinstance(m, Approval) and (m.price, m.trigger) == (100.0, 0.0)  # tick-rounded
    assert rule(run(intent(64, op="modify", ref_intent_id="e1"), book, refdata)) == "lot_multiple"


def test_trading_states_halted_and_reducing(refdata: RefData) -> None:
    book = RiskBook()
    key = ("s", "NFO", FUT)
    book.states.set("s", "halted")
    r = run(intent(), book, refdata)
    assert isinstance(r, Rejection) and r.rule == "halted" and "HALTED" in r.reason
    assert rule(run(intent(strategy="other"), book, refdata)) == "ok"  # only that strategy
    book.states.set("s", "reducing")
    assert rule(run(intent(), book, refdata)) == "reducing"  # flat: nothing to reduce
    book.positions[key] = 65 * 3
    assert rule(run(intent(65, "BUY"), book, refdata)) == "reducing"  # adds
    assert rule(run(intent(65 * 3, "SELL"), book, refdata)) == "ok"  # closes exactly
    assert rule(run(intent(65 * 4, "SELL"), book, refdata)) == "reducing"  # would flip
    book.on_approved("s.x", key, -65 * 2)  # two lots already being sold
    r = run(intent(65 * 2, "SELL"), book, refdata)
    assert isinstance(r, Rejection) and (r.threshold, r.value) == (65, 130)
    assert rule(run(intent(65, "SELL"), book, refdata)) == "ok"
    book.positions[key] = -65
    book.working.clear()
    assert rule(run(intent(65, "BUY"), book, refdata)) == "ok"
    # the stack's state is the floor for every strategy; the kill switch is a halted stack
    book.states.set("s", "active")
    book.states.set("*", "reducing")
    assert book.states.of("s") == "reducing" and book.states.of("z") == "reducing"
    book.states.set("", "halted")
    # the kill switch: no entry from anyone; an order that only reduces still passes
    assert book.states.kill_switch and rule(run(intent(65, "SELL"), book, refdata)) == (
        "kill_switch"
    )
    assert rule(run(intent(65 * 2, "BUY"), book, refdata)) == "kill_switch"  # would flip
    assert rule(run(intent(strategy="other"), book, refdata)) == "kill_switch"  # flat: entry
    assert rule(run(intent(65, "BUY"), book, refdata)) == "ok"  # closes the short: passes
    stop = intent(65, "BUY", pricetype="SL-M", trigger_price=101.0)
    assert rule(run(stop, book, refdata)) == "ok"  # a protective stop of it too
    with pytest.raises(ValueError, match="state must be"):
        book.states.set("s", "paused")  # type: ignore[arg-type]


def test_halted_exit_covered_by_a_working_exit_is_refused(refdata: RefData) -> None:
    """The simulator's seed 6: with the kill switch on, risk's own exit was selling the
    position and the strategy's exit of it passed too; both filled and the day ended
    short. An exit the working exits already cover is an entry the other way."""
    book = RiskBook(states=TradingStates("halted"))
    key = ("s", "NFO", FUT)
    book.positions[key] = 65 * 2
    assert rule(run(intent(65 * 2, "SELL"), book, refdata)) == "ok"  # nothing covers it yet
    book.on_approved("s.risk_exit", key, -65 * 2)  # risk's exit of the whole position
    assert rule(run(intent(65 * 2, "SELL"), book, refdata)) == "kill_switch"
    assert rule(run(intent(65, "SELL"), book, refdata)) == "kill_switch"  # any part of it
    # a bracket's stop and target each protect the same lots and only one of them fills
    pair = wire.OrderLink(protective=True, oco="t1")
    stop = intent(65, "SELL", pricetype="SL-M", trigger_price=99.0, link=pair)
    assert rule(run(stop, book, refdata)) == "ok"
    book.working.clear()
    book.on_approved("s.part", key, -65)  # one lot already being sold: one more closes it
    assert rule(run(intent(65, "SELL"), book, refdata)) == "ok"
    assert rule(run(intent(65 * 2, "SELL"), book, refdata)) == "kill_switch"


def test_a_close_passes_the_kill_switch_while_its_stops_cancel_is_on_the_way(
    refdata: RefData,
) -> None:
    """A strategy's close cancels its bracket's stop and sells, one after the other: the
    stop is still working when the sell is judged. Counted as cover it would refuse the
    close and leave the position without its stop; a stop being cancelled covers nothing
    (until the broker refuses the cancel: then it may fill, and covers again)."""
    book = RiskBook(states=TradingStates("halted"))
    key = ("s", "NFO", FUT)
    book.positions[key] = 65 * 2
    book.on_approved("s.stop", key, -65 * 2)
    assert rule(run(intent(65 * 2, "SELL"), book, refdata)) == "kill_switch"
    book.on_cancel("s.c1", "s.stop")
    assert rule(run(intent(65 * 2, "SELL"), book, refdata)) == "ok"
    book.on_update(update("s.c1", "rejected"))
    assert rule(run(intent(65 * 2, "SELL"), book, refdata)) == "kill_switch"
    book.on_cancel("s.c2", "s.stop")
    book.on_update(update("s.c2", "complete"))
    assert book.cancelling  # done, but the stop is not yet known cancelled
    book.on_update(update("s.stop", "cancelled"))
    assert not book.cancelling and not book.working


def update(order_id: str, status: str) -> wire.OrderUpdate:
    return wire.OrderUpdate(
        order_id=order_id, intent_id=order_id, strategy="s", exchange="NFO", symbol=FUT,
        action="SELL", quantity=130, status=status,
    )  # fmt: skip


def test_state_store_round_trip_and_fail_safe(tmp_path) -> None:
    store = StateStore(tmp_path / "risk_state.json")
    states, problem = store.load()
    assert (states.stack, states.strategies, problem) == ("active", {}, "")
    states.set("s", "reducing", "max loss reached", "risk")
    before = Why("max loss reached", "risk", "2026-11-23T09:50:00+05:30")
    states.holds["h"] = Hold("reducing", ["h.1"], "2026-11-23T10:00:00+05:30", False, before)
    store.save(states, "test")
    again, problem = store.load()
    d = again.as_dict()
    assert d["why"]["s"]["at"]  # when, kept
    d["why"]["s"]["at"] = ""
    assert (
        d
        == {
            "stack": "active",
            "strategies": {"s": "reducing"},
            "flatten": False,
            "why": {"s": {"reason": "max loss reached", "by": "risk", "at": ""}},
            "holds": {
                "h": {
                    "before": "reducing",
                    "orders": ["h.1"],
                    "since": "2026-11-23T10:00:00+05:30",
                    "for_person": False,
                    # why it was REDUCING: given back with the state when the hold lifts
                    "before_why": {
                        "reason": "max loss reached",
                        "by": "risk",
                        "at": "2026-11-23T09:50:00+05:30",
                    },
                }
            },
        }
        and not problem
    )
    again.set("*", "halted")
    again.flatten = True  # kill-switch flatten survives a restart of risk
    store.save(again, "test")
    assert store.load()[0].kill_mode == "flatten"
    again.set("*", "active")
    assert again.kill_mode == "off" and not again.flatten
    (tmp_path / "risk_state.json").write_text('{"stack": "actve"}')
    bad, problem = store.load()
    assert bad.stack == "halted" and "unreadable" in problem


def at(h: int, m: int, s: int = 0) -> datetime:
    return datetime(2026, 11, 23, h, m, s, tzinfo=IST)


def test_entry_and_exit_windows_and_the_mis_cutoff(refdata: RefData) -> None:
    book = RiskBook()
    book.positions[("s", "NFO", FUT)] = 65
    assert rule(run(intent(), book, refdata, when=at(15, 9, 59))) == "ok"
    r = run(intent(), book, refdata, when=at(15, 10))
    assert isinstance(r, Rejection) and r.rule == "entry_window" and "15:10" in r.reason
    assert rule(run(intent(65, "SELL"), book, refdata, when=at(15, 25))) == "ok"  # an exit
    assert rule(run(intent(130, "SELL"), book, refdata, when=at(15, 25))) == "entry_window"
    late = LIMITS.model_copy(update={"entry_window": (time(9, 15), time(15, 30))})
    assert rule(run(intent(), book, refdata, late, at(15, 14, 59))) == "ok"
    r = run(intent(), book, refdata, late, at(15, 15))
    assert isinstance(r, Rejection) and r.rule == "mis_cutoff"
    assert rule(run(intent(product="NRML"), book, refdata, late, at(15, 15))) == "ok"
    custom = LIMITS.model_copy(update={"exit_window": (time(9, 15), time(15, 0))})
    assert rule(run(intent(65, "SELL"), book, refdata, custom, at(15, 0))) == "exit_window"


def test_price_band_around_the_last_price(refdata: RefData) -> None:
    book = RiskBook()
    lim = intent(pricetype="LIMIT", price=26_950.0)
    assert rule(run(lim, book, refdata)) == "ok"  # no price yet: nothing to compare with
    book.ltp[("NFO", FUT)] = 24_500.0
    assert rule(run(intent(pricetype="LIMIT", price=26_950.0), book, refdata)) == "ok"  # +10 %
    r = run(intent(pricetype="LIMIT", price=26_955.0), book, refdata)
    assert isinstance(r, Rejection) and r.rule == "price_band" and r.threshold == 10.0
    r = run(intent(pricetype="SL", price=24_000, trigger_price=22_000.0), book, refdata)
    assert isinstance(r, Rejection) and r.rule == "price_band" and "trigger" in r.reason
    opt = "NIFTY24NOV2624500CE"
    book.ltp[("NFO", opt)] = 100.0
    assert rule(run(intent(symbol=opt, pricetype="LIMIT", price=140.0), book, refdata)) == "ok"
    assert rule(run(intent(symbol=opt, pricetype="LIMIT", price=140.05), book, refdata)) == (
        "price_band"
    )
    # an expiring option at 0.05: 40 % of it is 0.02, narrower than a tick; the band is
    # 40 ticks (2.00) either side at least, so its protective stop is not "too far"
    book.ltp[("NFO", opt)] = 0.05
    stop = intent(symbol=opt, pricetype="SL", trigger_price=0.10, price=1.10)
    assert rule(run(stop, book, refdata)) == "ok"
    far = run(intent(symbol=opt, pricetype="SL", trigger_price=0.10, price=2.10), book, refdata)
    assert isinstance(far, Rejection) and far.rule == "price_band" and "40 ticks" in far.reason


def test_notional_cap(refdata: RefData) -> None:
    book = RiskBook()
    book.ltp[("NFO", FUT)] = 24_500.0
    cap = LIMITS.model_copy(update={"max_order_notional": 65 * 3 * 24_500.0})
    assert rule(run(intent(65 * 3), book, refdata, cap)) == "ok"  # MARKET: at the last price
    r = run(intent(65 * 4), book, refdata, cap)
    assert isinstance(r, Rejection) and r.rule == "max_notional" and r.value == 65 * 4 * 24_500
    # a LIMIT is valued at its own price
    lim = intent(65 * 3, pricetype="LIMIT", price=24_490.0)
    assert rule(run(lim, book, refdata, cap)) == "ok"
    assert rule(run(intent(65 * 3, pricetype="LIMIT", price=24_510.0), book, refdata, cap)) == (
        "max_notional"
    )


def test_strategy_lots_and_open_positions(refdata: RefData) -> None:
    book = RiskBook()
    lim = LIMITS.model_copy(update={"max_strategy_lots": 12, "max_open_positions": 2})
    book.positions[("s", "NFO", FUT)] = 65 * 5
    book.on_approved("s.w", ("s", "NFO", "NIFTY24NOV2624500CE"), 65 * 4)  # working: counts
    assert rule(run(intent(65 * 3), book, refdata, lim)) == "ok"  # 8 + 4 = 12 lots
    r = run(intent(65 * 4), book, refdata, lim)
    assert isinstance(r, Rejection) and r.rule == "max_strategy_lots" and r.value == 13
    r = run(intent(65, symbol="NIFTY24NOV2624500PE"), book, refdata, lim)
    assert isinstance(r, Rejection) and r.rule == "max_open_positions"
    assert rule(run(intent(65, "SELL"), book, refdata, lim)) == "ok"  # reducing: no cap
    assert rule(run(intent(65, strategy="t"), book, refdata, lim)) == "ok"  # per strategy
    from mytrading.risk.rules import usage  # what `main.py risk` shows against the limits

    book.approvals["s"].extend([10**18 - 61 * 10**9, 10**18 - 5 * 10**9])
    assert usage(book, refdata, "s", 10**18) == {
        "lots": 9.0,
        "open_positions": 2,
        "orders_last_minute": 1,
    }


def test_orders_per_minute(refdata: RefData) -> None:
    book = RiskBook()
    lim = LIMITS.model_copy(update={"max_orders_per_min": 3, "max_orders_per_sec": 5})
    t0 = 10**18
    book.approvals["s"].extend([t0, t0 + 2 * 10**9, t0 + 4 * 10**9])
    r = run(intent(), book, refdata, lim, wall_ns=t0 + 59 * 10**9)
    assert isinstance(r, Rejection) and r.rule == "order_rate_minute"
    assert rule(run(intent(), book, refdata, lim, wall_ns=t0 + 60 * 10**9)) == "ok"


def test_limits_file_per_strategy_and_errors(tmp_path) -> None:
    from mytrading.risk.limits import load_limits
    from mytrading.settings import PROJECT_ROOT, ConfigError

    book = load_limits(PROJECT_ROOT / "config" / "risk.toml", {"max_order_lots": 7})
    assert book.of("anything").max_order_lots == 7
    rsi = book.of("rsi_mean_reversion")
    assert (rsi.max_order_lots, rsi.max_loss, rsi.trailing_type) == (7, 2500.0, "amount")
    assert book.of("x").entry_window == (time(9, 15), time(15, 10))
    bad = tmp_path / "risk.toml"
    bad.write_text("[defaults]\nmax_order_lot = 3\n")
    with pytest.raises(ConfigError, match=r"defaults.*max_order_lot"):
        load_limits(bad, {})
    bad.write_text('[strategies.x]\nentry_window = "15:00-09:15"\n')
    with pytest.raises(ConfigError, match=r"strategies.x.*ends before"):
        load_limits(bad, {})


OPT_CE = "NIFTY01DEC2624500CE"  # a weekly expiring on Tuesday 1 December 2026
OPT_PE = "NIFTY01DEC2624500PE"


def margin_run(i: wire.PlaceIntent, book: RiskBook, refdata: RefData, when: datetime = OPEN):
    from mytrading.risk.margin import load_margins
    from mytrading.settings import PROJECT_ROOT

    return (
        run(i, book, refdata, when=when)
        if False
        else check(i, book, refdata, LIMITS, when, 10**18, load_margins(PROJECT_ROOT / "config"))
    )


def test_margin_by_trade_type_and_expiry_day(refdata: RefData) -> None:
    book = RiskBook()
    assert rule(margin_run(intent(), book, refdata)) == "margin"  # no funds figure yet
    book.funds[MAIN].report(1_000_000.0, 10**18)
    a = margin_run(intent(65 * 4), book, refdata)  # futures: 215k a lot
    assert isinstance(a, Approval) and a.margin == 4 * 215_000
    r = margin_run(intent(65 * 5), book, refdata)
    assert isinstance(r, Rejection) and r.rule == "margin" and r.value == 5 * 215_000
    # a short option: 250k a lot on other days, 205k on its expiry day
    expiry_day = datetime(2026, 12, 1, 10, 0, tzinfo=IST)
    assert margin_run(intent(65, "SELL", symbol=OPT_CE), book, refdata).margin == 250_000
    sold = margin_run(intent(65, "SELL", symbol=OPT_CE), book, refdata, when=expiry_day)
    assert isinstance(sold, Approval) and sold.margin == 205_000
    # the second leg of a straddle needs only the pair's difference: 320k - 250k
    book.on_approved("s.ce", ("s", "NFO", OPT_CE), -65)
    assert margin_run(intent(65, "SELL", symbol=OPT_PE), book, refdata).margin == 70_000
    # buying an option costs its premium; closing needs nothing
    book.ltp[("NFO", OPT_PE)] = 120.0
    assert margin_run(intent(65, symbol=OPT_PE), book, refdata).margin == 65 * 120.0
    book.positions[("s", "NFO", FUT)] = 65 * 2
    assert margin_run(intent(65 * 2, "SELL"), book, refdata).margin == 0.0
    assert margin_run(intent(65 * 3, "SELL"), book, refdata).margin == 215_000  # one flips


def test_reservations_count_until_the_broker_reports_them(refdata: RefData) -> None:
    book = funded(500_000.0)
    book.funds[MAIN].reserve(10**18 + 1, 400_000.0)  # approved after the last report
    assert book.free_margin(10**18 + 2) == 100_000.0
    assert rule(margin_run(intent(65), book, refdata)) == "margin"
    book.funds[MAIN].funds_ns = 10**18 + 5 * 10**9  # a newer report already includes it
    assert book.free_margin(10**18 + 6 * 10**9) == 500_000.0


def test_the_reserved_margin_is_the_sum_of_what_no_report_includes_yet() -> None:
    """Kept as approvals come (not summed on every check), and to the paisa what a sum
    of the approvals after the broker's last report gives, through reports that drop
    some of them."""
    book = funded(10_000_000.0)
    funds = book.funds[MAIN]
    t0 = 10**18
    margins = [123_456.78 + 0.01 * k for k in range(300)]  # sums that do not stay round
    for k, m in enumerate(margins):
        funds.reserve(t0 + k * 10**7, m)  # one every 10 ms: 3 s of approvals
    assert book.free_margin(t0 + 3 * 10**9) == 10_000_000.0 - sum(margins)
    funds.funds_ns = t0 + 2 * 10**9  # a report that includes the first second's 100
    left = margins[100:]
    assert book.free_margin(t0 + 3 * 10**9) == 10_000_000.0 - sum(left)
    assert len(funds.reserved) == len(left)
    funds.reserve(t0 + 3 * 10**9, 1.23)
    assert book.free_margin(t0 + 3 * 10**9) == 10_000_000.0 - sum([*left, 1.23])
    funds.funds_ns = t0 + 10 * 10**9  # a report that includes them all
    assert book.free_margin(t0 + 10 * 10**9) == 10_000_000.0 and not funds.reserved
    funds.reserve(t0 + 10 * 10**9, 5.0)
    assert book.free_margin(t0 + 10 * 10**9) == 10_000_000.0 - 5.0


@pytest.mark.parametrize(
    "sizing, lots",
    [("A", 4), ("B", 3), ("C", 1), ("conservative", 1), ("balanced", 3), ("aggressive", 3)],
)
def test_lot_sizing_by_grade_and_profile(refdata: RefData, sizing: str, lots: int) -> None:
    # 10,00,000 available, futures at 2,15,000 a lot: A 95 % -> 4.4 -> 4 lots, B 65 % -> 3,
    # C 36 % -> 1, conservative 40 % -> 1, balanced 65 % -> 3, aggressive 80 % -> 3
    book = funded(1_000_000.0)
    a = margin_run(intent(0, sizing=sizing), book, refdata)
    assert isinstance(a, Approval) and a.quantity == lots * 65 and a.margin == lots * 215_000


def test_sizing_refusals(refdata: RefData) -> None:
    from mytrading.risk.margin import load_margins
    from mytrading.settings import PROJECT_ROOT

    book = funded(100_000.0)
    r = margin_run(intent(0, sizing="A"), book, refdata)
    assert isinstance(r, Rejection) and r.rule == "sizing" and "not one lot" in r.reason
    assert rule(margin_run(intent(65, sizing="A"), book, refdata)) == "sizing"  # both given
    r = margin_run(intent(0, sizing="Z"), book, refdata)
    assert isinstance(r, Rejection) and "sizing must be one of" in r.reason
    # buying options: premium x lot size per lot: 95,000 / (200 x 65) -> 7 lots
    book.ltp[("NFO", OPT_CE)] = 200.0
    a = margin_run(intent(0, symbol=OPT_CE, sizing="A"), book, refdata)
    assert isinstance(a, Approval) and a.quantity == 7 * 65
    # never more than one intent may ask for
    from mytrading.risk.rules import _size

    book.funds[MAIN].available = 10**9
    q = _size(
        intent(0, sizing="A"),
        refdata.instrument("NFO", FUT),
        book,
        LIMITS,
        load_margins(PROJECT_ROOT / "config"),
        0.0,
        OPEN,
        10**18,
        refdata,
    )
    assert q == LIMITS.max_intent_lots * 65


def test_the_brokers_margin_per_lot_wins_while_fresh(refdata: RefData) -> None:
    book = funded(1_000_000.0)
    book.broker_margin[("NFO", FUT, "BUY")] = (190_000.0, 10**18 - 10**9)
    a = margin_run(intent(65 * 5), book, refdata)  # 5 x 190k fits; 5 x 215k would not
    assert isinstance(a, Approval) and a.margin == 5 * 190_000
    book.broker_margin[("NFO", FUT, "BUY")] = (190_000.0, 10**18 - 601 * 10**9)  # stale
    assert rule(margin_run(intent(65 * 5), book, refdata)) == "margin"


def test_working_orders_are_indexed_by_key() -> None:
    """The index agrees with the orders through adds, changes and removals, so a check
    reads one key's working orders without scanning every order."""
    from mytrading.risk.book import RiskBook

    book = RiskBook()
    a, b = ("s", "NFO", "A"), ("s", "NFO", "B")
    book.on_approved("o1", a, 65)
    book.on_approved("o2", a, -130)
    book.on_approved("o3", b, 65)
    assert book.working.of(a) == {"o1": 65, "o2": -130} and book.exposure(a) == (65, -130)
    book.working["o1"] = (b, 30)  # moved (never happens, but the index must follow)
    assert book.working.of(a) == {"o2": -130} and book.working.of(b) == {"o3": 65, "o1": 30}
    del book.working["o2"]
    book.working.pop("o3")
    assert a not in book.working.by_key and dict(book.working) == {"o1": (b, 30)}
    assert book.net(b) == 30 and book.exposure(b, exclude="o1") == (0, 0)


def test_equities_have_no_lots_a_value_cap_and_margin_by_product(refdata: RefData) -> None:
    from mytrading.risk.margin import load_margins
    from mytrading.risk.rules import child_size
    from mytrading.settings import PROJECT_ROOT

    rel = refdata.instrument("NSE", "RELIANCE")  # config/stocks.toml: an equity, lot 1
    assert (rel.kind, rel.lot_size, rel.tradable) == ("EQ", 1, True)
    assert child_size(rel, LIMITS) > 10**6  # never split into "10-lot" children of 10 shares
    book = funded(10_000_000)
    book.ltp[("NSE", "RELIANCE")] = 1_500.0
    margins = load_margins(PROJECT_ROOT / "config")

    def eq(qty: int, product: str, **kw: object) -> Rejection | tuple:
        i = intent(qty, exchange="NSE", symbol="RELIANCE", product=product, **kw)
        return check(i, book, refdata, LIMITS, OPEN, 10**18, margins)

    ok = eq(1_000, "CNC")  # 1,000 shares: far above any lot cap, 15 lakh of value
    assert isinstance(ok, Approval) and ok.quantity == 1_000 and ok.margin == 1_500_000.0
    mis = eq(1_000, "MIS")
    assert isinstance(mis, Approval) and mis.margin == 300_000.0  # 20 % intraday
    too_big = eq(1_400, "MIS")  # 21 lakh > max_equity_position_value 20 lakh
    assert rule(too_big) == "max_position" and "rupees" in too_big.reason
    unpriced = check(
        intent(10_000, exchange="NSE", symbol="SBIN", product="MIS"),
        book,
        refdata,
        LIMITS,
        OPEN,
        10**18,
        margins,
    )  # no tick of SBIN yet: nothing would bound a MARKET order's value or its margin
    assert rule(unpriced) == "price" and "no price yet" in unpriced.reason
    fut = refdata.instrument("NFO", "SBIN24NOV26FUT")  # a stock future: lot 750
    need = margins.need(fut, "BUY", 750, 940.0, 750, False, OPEN.date())
    assert need.trade_type == "futures" and need.amount == 750 * 940.0 * 0.2


# ------------------------------------------------------ each rule of PRE_TRADE alone


def _alone(refdata: RefData, case: str) -> tuple[object, object]:
    """(the rule, an Ask that it alone refuses), the Ask prepared by the rules before it
    (as ``check`` would have run them)."""
    from mytrading.risk import rules as r
    from mytrading.risk.margin import load_margins
    from mytrading.settings import PROJECT_ROOT

    book = RiskBook()
    book.positions[("s", "NFO", FUT)] = 65
    book.ltp[("NFO", FUT)] = 24_000.0
    i = intent()
    when, limits, margins = OPEN, LIMITS, None
    rule = {  # the rule each case is about
        "duplicate_intent": r.duplicate_intent,
        "not_working": r.working_target,
        "kill_switch": r.trading_state,
        "instrument": r.tradable,
        "sizing": r.sizing,
        "lot_multiple": r.quantity,
        "price": r.prices,
        "price_band": r.price_band,
        "max_notional": r.notional,
        "entry_window": r.trading_hours,
        "reducing": r.reducing,
        "max_position": r.max_position,
        "max_strategy_lots": r.strategy_caps,
        "margin": r.margin,
        "order_rate": r.order_rate,
    }[case]
    if case == "duplicate_intent":
        book.seen_intents.add(i.intent_id)
    elif case == "not_working":
        i = intent(op="modify", ref_intent_id="nope")
    elif case == "kill_switch":
        book.states = TradingStates("halted")
    elif case == "instrument":
        i = intent(symbol="NIFTY")  # the index
    elif case == "sizing":
        i = intent(0, sizing="margin:0.5")  # no margin table here
    elif case == "lot_multiple":
        i = intent(64)
    elif case == "price":
        i = intent(pricetype="LIMIT")
    elif case == "price_band":
        i = intent(pricetype="LIMIT", price=30_000.0)
    elif case == "max_notional":
        limits = LIMITS.model_copy(update={"max_order_notional": 1_000_000.0})
    elif case == "entry_window":
        when = at(15, 20)
    elif case == "reducing":
        book.states = TradingStates(strategies={"s": "reducing"})
    elif case == "max_position":
        i = intent(65 * 20)
        limits = LIMITS.model_copy(update={"max_order_notional": 1e9})
    elif case == "max_strategy_lots":
        limits = LIMITS.model_copy(update={"max_strategy_lots": 1})
    elif case == "margin":
        margins = load_margins(PROJECT_ROOT / "config")
        book.funds["main"].report(1_000.0, 10**18)
    elif case == "order_rate":
        book.approvals["s"].extend([10**18 - 1] * 5)
    a = r.Ask(i, book, refdata, limits, when, 10**18, margins, "main")
    for earlier in r.PRE_TRADE[: r.PRE_TRADE.index(rule)]:
        assert earlier(a) is None, (case, earlier.__name__)
    return rule, a


CASES = [
    "duplicate_intent",
    "not_working",
    "kill_switch",
    "instrument",
    "sizing",
    "lot_multiple",
    "price",
    "price_band",
    "max_notional",
    "entry_window",
    "reducing",
    "max_position",
    "max_strategy_lots",
    "margin",
    "order_rate",
]


@pytest.mark.parametrize("case", CASES)
def test_each_rule_refuses_its_own_case(refdata: RefData, case: str) -> None:
    rule, a = _alone(refdata, case)
    got = rule(a)  # type: ignore[operator]
    assert isinstance(got, Rejection) and got.rule == case, got
    # ... and check() reports that rule: none after it runs first
    whole = check(a.intent, a.book, a.refdata, a.limits, a.market_now, a.wall_ns, a.margins)  # type: ignore[attr-defined]
    assert isinstance(whole, Rejection) and whole.rule == case


def test_every_rule_is_in_the_declared_order_once() -> None:
    from mytrading.risk import rules as r

    names = [f.__name__ for f in r.PRE_TRADE]
    assert len(set(names)) == len(names) == 17
    assert names[:2] == ["duplicate_intent", "intent_age"]  # a stale intent: said first
    assert names.index("margin") < names.index("greek_limits") < names.index("order_rate")
    assert names.index("trading_state") < names.index("tradable")  # halted: said first
    assert names.index("sizing") < names.index("quantity") < names.index("margin")
    assert names[-1] == "order_rate"  # only an order that passes everything is counted


def test_greek_limits_refuse_an_order_that_would_breach_them(refdata: RefData) -> None:
    """Short two lots of a week-out ATM call (delta about -65 units, vega about -1,900
    rupees a point): with caps of 100 units and 2,500 rupees, a third lot breaches vega,
    a fourth delta; a future that hedges passes, one that overshoots does not; buying
    the calls back always passes."""
    from mytrading.options.exposure import position_greeks

    ce = "NIFTY01DEC2624500CE"
    book = RiskBook()
    book.positions[("s", "NFO", ce)] = -130
    book.ltp[("NSE_INDEX", "NIFTY")] = 24_500.0
    book.ltp[("NFO", ce)] = 200.0
    lim = Limits(max_net_delta=100.0, max_vega=2_500.0, max_position_lots=50)
    _, g = position_greeks(refdata, "NFO", ce, -130, lambda e, s: book.ltp[(e, s)], OPEN)  # type: ignore[misc]
    assert -75 < g.delta < -55 and -2_300 < g.vega < -1_500  # the book as described

    def go(qty: int, action: str, symbol: str = ce) -> str:
        r = run(intent(qty, action, symbol=symbol), book, refdata, lim)
        return f"{rule(r)}: {r.reason}" if isinstance(r, Rejection) else "ok"

    assert go(65, "SELL").startswith("greeks: s's vega in NIFTY would be")
    assert go(65, "BUY") == "ok"  # towards zero
    assert go(130, "BUY", FUT) == "ok"  # a hedge: delta about +65
    got = go(260, "BUY", FUT)
    assert got.startswith("greeks: s's net delta in NIFTY would be +") and "(limit +-100)" in got
    off = Limits(max_position_lots=50)
    assert rule(run(intent(650, "SELL", symbol=ce), book, refdata, off)) == "ok"  # caps off


def test_a_leg_of_a_set_is_sized_by_the_sets_margin(refdata: RefData) -> None:
    """A builder strategy's first leg carries the margin of one lot of its whole set
    (``sizing_per_lot``): risk sizes the set by it, and never by less than the leg's own
    margin (a figure too small to be true does not buy more lots)."""
    book = funded(1_000_000.0)
    book.ltp[("NFO", OPT_CE)] = 20.0  # a wing: 1,300 a lot on its own
    a = margin_run(
        intent(0, symbol=OPT_CE, sizing="balanced", sizing_per_lot=325_000.0), book, refdata
    )
    assert isinstance(a, Approval) and a.quantity == 2 * 65  # 6,50,000 / 3,25,000
    a = margin_run(intent(0, sizing="balanced", sizing_per_lot=1.0), book, refdata)
    assert isinstance(a, Approval) and a.quantity == 3 * 65  # the future's own 2,15,000 a lot


def test_a_sets_margin_pairs_its_short_legs_as_risk_pairs_the_positions(refdata) -> None:
    """The builder sizes a set by ``MarginTable.set_need`` (risk's own code): a short
    strangle's second short leg counts as paired, as risk counts it once the first is held;
    a long wing adds its premium."""
    from datetime import date

    from mytrading.risk.margin import load_margins
    from mytrading.settings import PROJECT_ROOT

    m = load_margins(PROJECT_ROOT / "config")
    day = date(2026, 11, 20)
    ce = refdata.instrument("NFO", "NIFTY25NOV2624500CE")
    pe = refdata.instrument("NFO", "NIFTY25NOV2623500PE")
    wing = refdata.instrument("NFO", "NIFTY25NOV2625000CE")
    alone = m.need(ce, "SELL", 65, 80.0, 65, False, day).amount
    paired = m.need(pe, "SELL", 65, 70.0, 65, True, day).amount
    assert paired < alone  # the pair's extra is less than a lone short's
    legs = [(ce, "SELL", 65, 80.0), (pe, "SELL", 65, 70.0), (wing, "BUY", 65, 20.0)]
    assert m.set_need(legs, day) == pytest.approx(alone + paired + 65 * 20.0)
    # the same legs with the put first: the call is the paired one
    first_pe = m.need(pe, "SELL", 65, 70.0, 65, False, day).amount
    second_ce = m.need(ce, "SELL", 65, 80.0, 65, True, day).amount
    assert m.set_need(legs[1::-1], day) == pytest.approx(first_pe + second_ce)


def test_an_expired_contract_is_refused(refdata: RefData) -> None:
    """After its expiry day a contract is settled and delisted: an intent for it (a
    strategy that has not heard the settlement yet) is refused, naming the expiry."""
    old = "NIFTY23NOV26FUT"  # expires 2026-11-23
    on_the_day = datetime(2026, 11, 23, 10, 0, tzinfo=IST)
    assert rule(run(intent(symbol=old), refdata=refdata, when=on_the_day)) == "ok"
    r = run(intent(symbol=old), refdata=refdata, when=datetime(2026, 11, 24, 9, 20, tzinfo=IST))
    assert isinstance(r, Rejection) and r.rule == "instrument"
    assert "expired on 2026-11-23" in r.reason
    closing = run(
        intent(symbol=old, action="SELL"),
        book=RiskBook(positions={("s", "NFO", old): 65}),
        refdata=refdata,
        when=datetime(2026, 11, 24, 9, 20, tzinfo=IST),
    )
    assert rule(closing) == "instrument"  # not even to close: it was settled


def test_a_follower_book_is_no_freer_than_its_lead(refdata: RefData) -> None:
    """The simulator's seed 63: the lead REDUCING after its max loss, the follower's
    books were converged on the lead's short with a new sell of their own. A follower
    book takes its lead's state when that is the stricter; its own still counts."""
    states = TradingStates()
    states.set("s", "reducing", "max loss")
    assert states.of("s@second") == "reducing" and states.of("t@second") == "active"
    book = RiskBook(states=states)
    assert rule(run(intent(strategy="s@second"), book, refdata)) == "reducing"
    states.set("s", "active")
    states.set("s@second", "halted", "its own")
    assert states.of("s@second") == "halted" and states.of("s") == "active"


def test_a_greek_cap_on_any_book_is_seen_so_risk_loads_the_greeks_at_start() -> None:
    from mytrading.risk.limits import LimitBook, StackLimits

    off = LimitBook(Limits(), {"a": Limits()}, StackLimits())
    assert not off.greek_caps()  # risk's start then leaves numba unloaded
    assert LimitBook(Limits(), {"a": Limits(max_vega=10.0)}, StackLimits()).greek_caps()
    assert LimitBook(Limits(max_net_delta=5.0), {}, StackLimits()).greek_caps()
