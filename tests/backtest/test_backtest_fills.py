"""The bar fill model (backtest/fills.py) at each boundary, through the simulated broker's
own books: an order decided on bar t fills no earlier than bar t+1, at the documented
price, and never inside the bar it was placed in."""

from __future__ import annotations

from datetime import datetime

import pytest

from mytrading.backtest.fills import BarBroker
from mytrading.backtest.loop import Clock
from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.openalgo.broker import OrderEvent, TradeEvent

SYM = "NIFTY29DEC26FUT"
T0 = int(datetime(2026, 11, 20, 10, 0, tzinfo=IST).timestamp()) * 1_000_000_000
MIN = 60_000_000_000


def bar(i: int, o: float, h: float, lo: float, c: float) -> wire.Bar:
    return wire.Bar(
        exchange="NFO",
        symbol=SYM,
        tf="1m",
        start_ns=T0 + i * MIN,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=0,
    )


def order(action: str, pricetype: str = "MARKET", price: float = 0.0, trigger: float = 0.0):
    return wire.Order(
        order_id="x",
        intent_id="x",
        strategy="s",
        exchange="NFO",
        symbol=SYM,
        action=action,
        quantity=65,
        pricetype=pricetype,
        product="NRML",
        price=price,
        trigger_price=trigger,
        approved_by="risk",
    )


@pytest.fixture
def venue(refdata):
    clock = Clock(T0)
    broker = BarBroker(refdata, clock, slippage_ticks=2)
    broker.on_bar(bar(0, 100, 101, 99, 100))  # bar 0: a quote exists
    clock.t = T0 + MIN  # bar 0 closed: decisions happen now
    return broker, clock


def fills(events) -> list[tuple[int, float]]:
    return [(e.quantity, e.price) for e in events if isinstance(e, TradeEvent)]


def place(broker, o):
    res, events = broker.place_order(o)
    assert res.ok, res.message
    assert fills(events) == []  # nothing fills at placement: the next bar decides
    return res.orderid


def test_market_fills_at_the_next_open_plus_slippage(venue) -> None:
    broker, _ = venue
    place(broker, order("BUY"))
    place(broker, order("SELL"))
    got = fills(broker.on_bar(bar(1, 102, 103, 101, 102)))
    assert got == [(65, 102.1), (65, 101.9)]  # 2 ticks of 0.05 against each side


def test_limit_buy_gap_touch_and_miss(venue) -> None:
    broker, _ = venue
    gap = place(broker, order("BUY", "LIMIT", price=101.0))
    touch = place(broker, order("BUY", "LIMIT", price=99.5))
    miss = place(broker, order("BUY", "LIMIT", price=98.0))
    events = broker.on_bar(bar(1, 100.5, 101, 99.5, 100))
    by_id = {e.orderid: e.price for e in events if isinstance(e, TradeEvent)}
    assert by_id == {gap: 100.5, touch: 99.5}  # the better open; the limit when touched
    assert broker.orders[miss].status == "open"
    assert fills(broker.on_bar(bar(2, 99, 99, 97.9, 98))) == [(65, 98.0)]


def test_limit_sell_mirrors(venue) -> None:
    broker, _ = venue
    place(broker, order("SELL", "LIMIT", price=99.0))  # below the open: the open
    place(broker, order("SELL", "LIMIT", price=100.8))  # reached by the high
    got = fills(broker.on_bar(bar(1, 100, 100.8, 99.5, 100)))
    assert got == [(65, 100.0), (65, 100.8)]


def test_stop_market_gap_and_intrabar(venue) -> None:
    broker, _ = venue
    place(broker, order("BUY", "SL-M", trigger=100.5))  # gapped through: the open + slip
    place(broker, order("SELL", "SL-M", trigger=99.0))  # touched: the trigger - slip
    place(broker, order("SELL", "SL-M", trigger=95.0))  # not reached
    got = fills(broker.on_bar(bar(1, 101, 101.5, 98.5, 99)))
    assert got == [(65, 101.1), (65, 98.9)]
    assert [o.status for o in broker.orders.values()][-1] == "trigger pending"


def test_stop_limit_rests_when_the_open_is_past_its_limit(venue) -> None:
    broker, _ = venue
    inside = place(broker, order("BUY", "SL", price=101.5, trigger=100.5))
    beyond = place(broker, order("BUY", "SL", price=100.8, trigger=100.5))
    intrabar = place(broker, order("SELL", "SL", price=98.5, trigger=99.0))
    events = broker.on_bar(bar(1, 101.0, 101.2, 98.8, 99.5))
    by_id = {e.orderid: e.price for e in events if isinstance(e, TradeEvent)}
    assert by_id == {inside: 101.0, intrabar: 99.0}  # the open within the limit; the trigger
    assert broker.orders[beyond].status == "open" and broker.orders[beyond].triggered
    assert any(
        isinstance(e, OrderEvent) and e.orderid == beyond and e.status == "open" for e in events
    )
    # resting at 100.8 it is looked at from the next bar: filled there when the low reaches it
    assert fills(broker.on_bar(bar(2, 101.5, 101.6, 100.7, 101))) == [(65, 100.8)]


def test_an_order_placed_during_a_bar_waits_for_the_next(venue) -> None:
    broker, clock = venue
    clock.t = T0 + MIN  # bar 1 starts: its fills are handled at its open
    broker.on_bar(bar(1, 100, 100, 99, 100))
    place(broker, order("BUY", "LIMIT", price=99.5))  # e.g. a bracket's exit, after them
    # bar 1's low reached 99.5, but the order came after bar 1's open: bar 2 decides
    assert fills(broker.on_bar(bar(2, 102, 104, 101.5, 103))) == []
    assert fills(broker.on_bar(bar(3, 101, 101, 99.0, 100))) == [(65, 99.5)]


def test_validation_is_the_simulated_brokers(venue) -> None:
    broker, _ = venue
    res, _ = broker.place_order(
        wire.Order(
            order_id="y",
            intent_id="y",
            strategy="s",
            exchange="NFO",
            symbol=SYM,
            action="BUY",
            quantity=10,
            pricetype="MARKET",
            product="NRML",
            price=0.0,
            trigger_price=0.0,
            approved_by="risk",
        )
    )
    assert not res.ok and "lot size" in res.message
