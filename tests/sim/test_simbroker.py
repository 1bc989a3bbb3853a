"""The simulated broker's acceptance and fill rules (docs/openalgo.md §7)."""

from __future__ import annotations

import pytest

from mytrading.domain.clock import MarketClock
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.openalgo.broker import OrderEvent, TradeEvent
from mytrading.sim.matching import SimBroker

FUT = "NIFTY29DEC26FUT"


@pytest.fixture
def broker(refdata: RefData) -> SimBroker:
    b = SimBroker(refdata, MarketClock.wall())
    b.on_tick(quote(100.0, 99.95, 100.05))
    return b


def quote(ltp: float, bid: float | None = None, ask: float | None = None) -> wire.Tick:
    return wire.Tick(
        exchange="NFO",
        symbol=FUT,
        ltp=ltp,
        bid=bid or ltp,
        ask=ask or ltp,
        bid_qty=650,
        ask_qty=650,
        volume=0,
        exch_ns=1,
    )


def order(
    action: str = "BUY",
    pricetype: str = "MARKET",
    qty: int = 65,
    price: float = 0.0,
    trigger: float = 0.0,
    product: str = "MIS",
    symbol: str = FUT,
    exchange: str = "NFO",
) -> wire.Order:
    return wire.Order(
        order_id="o",
        intent_id="i",
        strategy="s",
        exchange=exchange,
        symbol=symbol,
        action=action,
        quantity=qty,
        pricetype=pricetype,
        product=product,  # type: ignore[arg-type]
        price=price,
        trigger_price=trigger,
        approved_by="risk",
    )


def trades(events: list) -> list[tuple[int, float]]:
    return [(e.quantity, e.price) for e in events if isinstance(e, TradeEvent)]


def statuses(events: list) -> list[str]:
    return [e.status for e in events if isinstance(e, OrderEvent)]


def test_market_fills_at_ask_and_bid(broker: SimBroker) -> None:
    res, ev = broker.place_order(order("BUY"))
    assert res.ok and len(res.orderid) == 14
    assert trades(ev) == [(65, 100.05)] and statuses(ev) == ["open", "complete"]
    _, ev = broker.place_order(order("SELL"))
    assert trades(ev) == [(65, 99.95)]


def test_market_slippage_in_ticks(refdata: RefData) -> None:
    b = SimBroker(refdata, MarketClock.wall(), slippage_ticks=2)
    b.on_tick(quote(100.0, 99.95, 100.05))
    assert trades(b.place_order(order("BUY"))[1]) == [(65, 100.15)]
    assert trades(b.place_order(order("SELL"))[1]) == [(65, 99.85)]


def test_marketable_limit_fills_at_ltp(broker: SimBroker) -> None:
    _, ev = broker.place_order(order("BUY", "LIMIT", price=101.0))
    assert trades(ev) == [(65, 100.0)]


def test_resting_limit_fills_at_its_price_when_crossed(broker: SimBroker) -> None:
    _res, ev = broker.place_order(order("BUY", "LIMIT", price=99.0))
    assert statuses(ev) == ["open"] and trades(ev) == []
    assert broker.on_tick(quote(99.05)) == []
    ev = broker.on_tick(quote(98.5))
    assert trades(ev) == [(65, 99.0)] and statuses(ev) == ["complete"]
    assert broker.on_tick(quote(90.0)) == []  # filled once, never again


def test_sl_m_triggers_and_fills_at_ltp(broker: SimBroker) -> None:
    _, ev = broker.place_order(order("SELL", "SL-M", trigger=98.0))
    assert statuses(ev) == ["trigger pending"]
    assert broker.on_tick(quote(98.05)) == []
    assert trades(broker.on_tick(quote(97.9))) == [(65, 97.9)]


def test_sl_triggered_with_limit_unsatisfiable_rests_open(broker: SimBroker) -> None:
    _, ev = broker.place_order(order("BUY", "SL", price=102.0, trigger=101.0))
    assert statuses(ev) == ["trigger pending"]
    ev = broker.on_tick(quote(102.5))  # triggered, but LTP is above the limit
    assert statuses(ev) == ["open"] and trades(ev) == []
    assert trades(broker.on_tick(quote(101.5))) == [(65, 102.0)]  # then a resting limit


def test_sl_triggered_with_limit_satisfiable_fills_at_ltp(broker: SimBroker) -> None:
    broker.place_order(order("BUY", "SL", price=102.0, trigger=101.0))
    assert trades(broker.on_tick(quote(101.5))) == [(65, 101.5)]


@pytest.mark.parametrize(
    "o, why",
    [
        (order(qty=60), "multiple of lot size"),
        (order(pricetype="LIMIT"), "Price must be greater than 0"),
        (order(pricetype="SL", price=10.0), "Trigger price"),
        (order(product="CNC"), "CNC product"),
        (order(symbol="NIFTY29DEC26NOPE"), "not found"),
        (order(symbol="NIFTY29DEC2624000CE"), "unable to fetch current price"),
    ],
)
def test_rejections(broker: SimBroker, o: wire.Order, why: str) -> None:
    res, ev = broker.place_order(o)
    assert not res.ok and why in res.message and res.http_status == 400 and ev == []


def test_cancel(broker: SimBroker) -> None:
    res, _ = broker.place_order(order("BUY", "LIMIT", price=90.0))
    ok, ev = broker.cancel_order(res.orderid)
    assert ok.ok and statuses(ev) == ["cancelled"]
    assert broker.on_tick(quote(80.0)) == []
    again, _ = broker.cancel_order(res.orderid)
    assert not again.ok and "cancelled" in again.message
    assert broker.cancel_order("nope")[0].http_status == 404


def test_position_book_nets_fills(broker: SimBroker) -> None:
    broker.place_order(order("BUY", qty=130))
    broker.place_order(order("SELL", qty=65))
    (p,) = broker.positionbook()
    assert (p.symbol, p.product, p.quantity, p.avg_price) == (FUT, "MIS", 65, 100.05)
    broker.place_order(order("SELL", qty=65))
    (p,) = broker.positionbook()
    assert p.quantity == 0  # closed rows stay, with quantity 0, as in OpenAlgo


# ------------------------------------------------------------- the realistic fill model


@pytest.fixture
def real(refdata: RefData) -> SimBroker:
    b = SimBroker(refdata, MarketClock.wall(), model="realistic", partial_fills=True)
    b.on_tick(thin(100.0, 99.95, 100.05, 65))
    return b


def thin(ltp: float, bid: float, ask: float, size: int) -> wire.Tick:
    return wire.Tick(
        exchange="NFO",
        symbol=FUT,
        ltp=ltp,
        bid=bid,
        ask=ask,
        bid_qty=size,
        ask_qty=size,
        volume=0,
        exch_ns=1,
    )


def test_realistic_market_walks_the_book(real: SimBroker) -> None:
    # 4 lots against 1 lot per level: one trade per level, each a tick worse
    res, ev = real.place_order(order("BUY", qty=260))
    assert trades(ev) == [(65, 100.05), (65, 100.1), (65, 100.15), (65, 100.2)]
    assert statuses(ev)[-1] == "complete"
    assert real.orders[res.orderid].avg == pytest.approx(100.125)


def test_realistic_marketable_limit_at_touch_partially(real: SimBroker) -> None:
    res, ev = real.place_order(order("BUY", "LIMIT", qty=195, price=101.0))
    assert trades(ev) == [(65, 100.05)]  # the touch price, the touch size
    assert statuses(ev) == ["open", "open"]
    so = real.orders[res.orderid]
    assert (so.filled, so.status) == (65, "open")
    # The rest now rests at its limit, so the next seller trades at the limit (maker price).
    ev = real.on_tick(thin(100.0, 99.95, 100.05, 130))
    assert trades(ev) == [(130, 101.0)] and statuses(ev) == ["complete"]
    assert so.avg == pytest.approx((65 * 100.05 + 130 * 101.0) / 195)
    (p,) = real.positionbook()
    assert p.quantity == 195


def test_realistic_resting_limit_fills_at_its_price_when_touched(real: SimBroker) -> None:
    _, ev = real.place_order(order("SELL", "LIMIT", qty=65, price=100.5))
    assert trades(ev) == []
    assert real.on_tick(thin(100.3, 100.25, 100.35, 65)) == []  # bid below the limit
    assert trades(real.on_tick(thin(100.6, 100.55, 100.65, 65))) == [(65, 100.5)]


def test_realistic_sl_triggers_on_ltp_and_takes_the_touch(real: SimBroker) -> None:
    _, ev = real.place_order(order("SELL", "SL", qty=65, price=97.0, trigger=98.0))
    assert statuses(ev) == ["trigger pending"]
    ev = real.on_tick(thin(97.9, 97.85, 97.95, 65))
    assert trades(ev) == [(65, 97.85)]  # sold at the bid, above the limit
