"""Webhook instructions to intents: sizes, targets against what is held and working, the
time windows at their edges, square-off once a day (and after a restart past it); and the
server's guards: the rate limit and duplicate alerts."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time

from mytrading.domain.refdata import IST
from mytrading.webhook.alerts import Instruction
from mytrading.webhook.guards import Duplicates, RateLimit
from mytrading.webhook.intents import flatten, grows, refusal, squareoff_due, to_intents
from mytrading.webhook.model import StrategyFields

FIELDS = StrategyFields(name="tv", start=time(9, 20), end=time(15, 0), squareoff=time(15, 15))
LOT = 65


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 20, hh, mm, ss, tzinfo=IST)


def ids():
    n = itertools.count(1)
    return lambda: f"w-{next(n)}"


def instr(kind: str, action: str, lots: int) -> Instruction:
    return Instruction("NFO", "NIFTY29DEC26FUT", "NRML", kind, action, lots, kind == "order")  # type: ignore[arg-type]


def test_windows_at_their_edges() -> None:
    assert refusal(FIELDS, True, at(9, 19, 59)).startswith("before the strategy's start")
    assert refusal(FIELDS, True, at(9, 20)) == ""
    assert refusal(FIELDS, True, at(14, 59, 59)) == ""
    assert refusal(FIELDS, True, at(15, 0)) == "entries end at 15:00 IST"
    assert refusal(FIELDS, False, at(15, 0)) == ""  # exits go on
    assert refusal(FIELDS, False, at(15, 14, 59)) == ""
    assert "square-off" in refusal(FIELDS, False, at(15, 15))


def test_orders_and_targets_become_quantities() -> None:
    out, opens = to_intents("tv", instr("order", "BUY", 2), LOT, 0, 0, ids())
    assert [(i.action, i.quantity) for i in out] == [("BUY", 130)] and opens
    # target 0 from +130 with nothing working: sell 130, an exit
    out, opens = to_intents("tv", instr("target", "SELL", 0), LOT, 130, 0, ids())
    assert [(i.action, i.quantity) for i in out] == [("SELL", 130)] and not opens
    # target -1 lot from +1 lot with a 1-lot sell working: one more lot to sell, it turns
    out, opens = to_intents("tv", instr("target", "SELL", -1), LOT, 65, -65, ids())
    assert [(i.action, i.quantity) for i in out] == [("SELL", 65)] and opens
    # already there: nothing
    out, _ = to_intents("tv", instr("target", "BUY", 2), LOT, 65, 65, ids())
    assert out == []
    assert grows(0, 65) and grows(65, -65) and grows(65, 130) and not grows(130, 65)
    assert not grows(65, 0)


def test_square_off_once_a_day_and_after_a_restart_past_it() -> None:
    assert not squareoff_due(FIELDS, at(15, 14, 59), None)
    assert squareoff_due(FIELDS, at(15, 15), None)
    assert squareoff_due(FIELDS, at(15, 29), date(2026, 11, 19))  # restarted past it today
    assert not squareoff_due(FIELDS, at(15, 20), date(2026, 11, 20))  # done today already
    positional = FIELDS.model_copy(update={"intraday": False})
    assert not squareoff_due(positional, at(15, 20), None)
    out = flatten(
        "tv", {("NFO", "A", "NRML"): 65, ("NFO", "B", "MIS"): -130, ("NFO", "C", "MIS"): 0}, ids()
    )
    assert [(i.symbol, i.action, i.quantity, i.product) for i in out] == [
        ("A", "SELL", 65, "NRML"),
        ("B", "BUY", 130, "MIS"),
    ]


def test_rate_limit_is_a_moving_window_per_client() -> None:
    rl = RateLimit(per_window=3, window_s=60)
    assert [rl.check("a", t) for t in (0, 1, 2)] == [0.0, 0.0, 0.0]
    wait = rl.check("a", 30)
    assert wait == 30.0 and RateLimit.retry_after(wait) == 30
    assert rl.check("b", 30) == 0.0  # another client has its own window
    assert rl.check("a", 60.5) == 0.0  # the first request left the window


def test_the_same_alert_twice_within_the_window_is_a_duplicate() -> None:
    d = Duplicates(window_s=30)
    k = Duplicates.key("tv", b'{"symbol": "X", "action": "BUY"}')
    assert Duplicates.key("tv", b'{"action":"BUY","symbol":"X"}') == k  # same content
    assert Duplicates.key("other", b'{"symbol": "X", "action": "BUY"}') != k
    assert not d.seen(k, 0)
    assert d.seen(k, 10)  # TradingView's retry
    assert not d.seen(k, 31)  # a new alert after the window


def test_a_signal_that_repeats_after_another_is_not_a_retry() -> None:
    d = Duplicates(window_s=30)
    buy = Duplicates.key("tv", b'{"symbol": "X", "action": "BUY"}')
    sell = Duplicates.key("tv", b'{"symbol": "X", "action": "SELL"}')
    other = Duplicates.key("tv", b'{"symbol": "Y", "action": "BUY"}')
    assert not d.seen(buy, 0, "tv|X")
    assert not d.seen(other, 1, "tv|Y")  # another symbol between: still a retry below
    assert d.seen(buy, 2, "tv|X")
    assert not d.seen(sell, 3, "tv|X")
    assert not d.seen(buy, 4, "tv|X")  # BUY, SELL, BUY: three signals
    d.forget("tv|X")
    assert not d.seen(buy, 5, "tv|X")  # a refused (503) alert's retry counts
    never = Duplicates(window_s=0)
    assert not never.seen(buy, 0) and not never.seen(buy, 0)
