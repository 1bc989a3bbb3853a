"""Broker faults against a real simulator process: no duplicate order, no silent loss."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mytrading.domain.clock import MarketClock
from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.openalgo.broker import OrderEvent, Outcome, TradeEvent
from mytrading.openalgo.orders import OpenAlgoAdapter, order_report
from mytrading.openalgo.ws import FeedClient
from tests.simhelpers import FUT, KEY, WS_URL, control, start_server

pytestmark = pytest.mark.integration  # real processes or servers

START = datetime(2026, 11, 20, 10, 0, tzinfo=IST)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, MarketClock]]:
    d = tmp_path_factory.mktemp("faults")
    anchor = time.time_ns()
    proc, host = start_server(
        {"MT_LOG_DIR": str(d / "logs"), "MT_STATE_DIR": str(d / "s")},
        MT_SIM_FAULTS="true",
        MT_CLOCK_ANCHOR_NS=str(anchor),
    )
    # The same market clock as the server's, so order-book timestamps line up.
    yield host, MarketClock(anchor, int(START.timestamp() * 1e9), 1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def order(oid: str, qty: int = 65) -> wire.Order:
    return wire.Order(
        order_id=oid,
        intent_id=oid,
        strategy="faults",
        exchange="NFO",
        symbol=FUT,
        action="BUY",
        quantity=qty,
        pricetype="MARKET",
        product="NRML",
        price=0.0,
        trigger_price=0.0,
        approved_by="risk",
    )


def adapter(host: str, clock: MarketClock) -> OpenAlgoAdapter:
    return OpenAlgoAdapter(KEY, host, 1.0, lambda: clock.now_ns() / 1e9)


def matching(a: OpenAlgoAdapter, qty: int) -> list[dict[str, Any]]:
    rows = a.sdk.orderbook()["data"]["orders"]
    return [
        r for r in rows if r["symbol"] == FUT and r["quantity"] == qty and r["product"] == "NRML"
    ]


def test_timeout_after_the_broker_accepted_finds_the_order(faulty: tuple[str, MarketClock]) -> None:
    host, clock = faulty
    a = adapter(host, clock)
    before = control(host, "/_sim/counts").get("placeorder", 0)
    control(
        host, "/_sim/faults", {"endpoint": "placeorder", "faults": ["hang_after"], "hang_s": 2.5}
    )
    res, events = a.place_order(order("t-1", 130))
    assert res.ok, res.message  # found in the order book, not re-sent
    assert control(host, "/_sim/counts")["placeorder"] == before + 1
    assert [r["orderid"] for r in matching(a, 130)] == [res.orderid]
    assert a.counts["recovered_after_timeout"] == 1
    assert any(isinstance(e, TradeEvent) and e.quantity == 130 for e in events)
    assert any(isinstance(e, OrderEvent) and e.status == "complete" for e in events)


def test_500_after_accepting_is_found_not_resent(faulty: tuple[str, MarketClock]) -> None:
    host, clock = faulty
    a = adapter(host, clock)
    before = control(host, "/_sim/counts").get("placeorder", 0)
    control(host, "/_sim/faults", {"endpoint": "placeorder", "faults": ["500_after"]})
    res, _ = a.place_order(order("t-2", 195))
    assert res.ok and control(host, "/_sim/counts")["placeorder"] == before + 1
    assert [r["orderid"] for r in matching(a, 195)] == [res.orderid]


def test_500_without_an_order_stays_unknown_then_gives_up(faulty: tuple[str, MarketClock]) -> None:
    host, clock = faulty
    a = adapter(host, clock)
    before = control(host, "/_sim/counts").get("placeorder", 0)
    control(host, "/_sim/faults", {"endpoint": "placeorder", "faults": ["500"]})
    res, events = a.place_order(order("t-3", 260))
    assert res.outcome is Outcome.UNKNOWN and events == []
    assert "t-3" in a.unknown and matching(a, 260) == []
    events, resolved = a.poll()
    assert resolved == [] and "t-3" in a.unknown  # still looked for, never re-sent
    a.unknown["t-3"].first_seen -= 61
    events, resolved = a.poll()
    assert [(o.order_id, outcome) for o, outcome, _ in resolved] == [("t-3", "absent")]
    assert control(host, "/_sim/counts")["placeorder"] == before + 1  # one attempt, ever


def test_429_is_a_refusal_not_an_unknown(faulty: tuple[str, MarketClock]) -> None:
    host, clock = faulty
    a = adapter(host, clock)
    control(host, "/_sim/faults", {"endpoint": "placeorder", "faults": ["429"]})
    res, _ = a.place_order(order("t-4", 325))
    assert res.outcome is Outcome.RETRY and res.http_status == 429 and res.retry_after_s >= 0
    assert a.unknown == {} and matching(a, 325) == []
    assert a.counts["transient"] == 1


def test_poll_reports_a_resting_order_filling(faulty: tuple[str, MarketClock]) -> None:
    host, clock = faulty
    a = adapter(host, clock)
    from openalgo import api  # the official SDK as the reference client

    ltp = api(api_key=KEY, host=host).quotes(symbol=FUT, exchange="NFO")["data"]["ltp"]
    o = wire.Order(
        order_id="t-5",
        intent_id="t-5",
        strategy="faults",
        exchange="NFO",
        symbol=FUT,
        action="SELL",
        quantity=65,
        pricetype="LIMIT",
        product="NRML",
        price=round(ltp * 1.1, 1),
        trigger_price=0.0,
        approved_by="risk",
    )
    res, events = a.place_order(o)
    assert res.ok and [e.status for e in events if isinstance(e, OrderEvent)] == ["open"]
    assert a.poll() == ([], [])  # nothing changed
    a.sdk.modifyorder(
        order_id=res.orderid,
        strategy="faults",
        symbol=FUT,
        action="SELL",
        exchange="NFO",
        price_type="LIMIT",
        product="NRML",
        quantity=65,
        price=round(ltp * 0.9, 1),
    )  # marketable now
    events, _ = a.poll()
    trades = [e for e in events if isinstance(e, TradeEvent)]
    assert len(trades) == 1 and trades[0].quantity == 65 and trades[0].price > 0
    assert [e.status for e in events if isinstance(e, OrderEvent)][-1] == "complete"
    assert res.orderid not in a.tracked
    assert a.poll() == ([], [])  # the fill is reported once


def test_feed_client_reconnects_and_resubscribes_after_a_drop(
    faulty: tuple[str, MarketClock], tmp_path: Path
) -> None:
    host, _ = faulty
    insts = [("NFO", FUT), ("NSE_INDEX", "NIFTY")]
    woke = threading.Event()
    client = FeedClient(WS_URL[host], KEY, insts, backoff_base_s=0.2, wake=woke.set)
    client.start()
    got: list[wire.Tick] = []

    def drain(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if woke.wait(0.05):
                woke.clear()
                got.extend(client.take())

    try:
        drain(1.5)
        before = len(got)
        assert before > 5 and client.authenticated
        control(host, "/_sim/faults", {"endpoint": "-", "faults": [], "drop_websockets": True})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and client.reconnects == 0:
            drain(0.1)
        assert client.reconnects >= 1
        drain(2.0)
        assert client.authenticated and len(got) > before + 5  # re-subscribed: ticks again
        assert {(t.exchange, t.symbol) for t in got[before:]} == set(insts)
        stamps = [(t.symbol, t.exch_ns) for t in got]
        assert len(stamps) == len(set(stamps))  # no duplicate tick reached the daemon
    finally:
        client.stop()


def tracked_market_buy(faulty: tuple[str, MarketClock], name: str) -> tuple[OpenAlgoAdapter, str]:
    """An adapter, and a 390-lot MARKET buy placed straight at the server (it fills at once)
    that the adapter tracks from nothing filled, as after a restart."""
    host, clock = faulty
    a = adapter(host, clock)
    placed = a.sdk.placeorder(
        strategy="faults",
        symbol=FUT,
        action="BUY",
        exchange="NFO",
        price_type="MARKET",
        product="NRML",
        quantity=390,
    )
    oid = placed["orderid"]
    assert a.recover(order(name, 390), oid, 0, 0.0, 0.0) == oid
    return a, oid


def test_a_live_style_row_takes_fills_and_price_from_the_trade_book(
    faulty: tuple[str, MarketClock],
) -> None:
    """Live order-book rows carry neither filled quantity nor average price (only the
    sandbox adds them): the adapter reads both from the trade book."""
    a, oid = tracked_market_buy(faulty, "t-tb")
    row = next(r for r in a.sdk.orderbook()["data"]["orders"] if r["orderid"] == oid)
    live = {k: v for k, v in row.items() if k not in ("filled_quantity", "average_price")}
    trades = [r for r in a.sdk.tradebook()["data"] if r["orderid"] == oid]
    want = sum(r["quantity"] * r["average_price"] for r in trades) / 390
    events = a._apply(oid, order_report(live))
    fills = [e for e in events if isinstance(e, TradeEvent)]
    assert [(f.quantity, round(f.price, 6)) for f in fills] == [(390, round(want, 6))]
    assert [e.status for e in events if isinstance(e, OrderEvent)] == ["complete"]
    assert a.counts["fills_from_tradebook"] == 1


def test_an_order_filled_in_two_trades_is_priced_at_its_true_average(
    faulty: tuple[str, MarketClock],
) -> None:
    """``orderstatus`` answers as OpenAlgo does against a live broker: no filled quantity,
    and the *first* trade's price as the average of a complete order. The adapter prices
    the fill from the trade book: the average of every trade, weighted by quantity."""
    host, clock = faulty
    a = adapter(host, clock)
    qty = 65 * 40  # more than the simulator's best level ever holds (1-39 lots)
    for _ in range(10):  # a thin book may leave some unfilled, or sweep a second level
        placed = a.sdk.placeorder(  # so little that the average rounds to the first price:
            strategy="faults", symbol=FUT, action="BUY", exchange="NFO",  # then again
            price_type="MARKET", product="NRML", quantity=qty,
        )  # fmt: skip
        assert placed.get("status") == "success", placed
        oid = placed["orderid"]
        trades = [r for r in a.sdk.tradebook()["data"] if r["orderid"] == oid]
        avg = sum(r["quantity"] * r["average_price"] for r in trades) / qty
        if (
            sum(r["quantity"] for r in trades) == qty
            and round(avg, 2) != trades[0]["average_price"]
        ):
            break
        # Not the case wanted: close what filled, or the next try's margin (40 lots more)
        # is more than the account holds (CI saw exactly that refusal).
        if bought := sum(r["quantity"] for r in trades):
            closed = a.sdk.placeorder(
                strategy="faults", symbol=FUT, action="SELL", exchange="NFO",
                price_type="MARKET", product="NRML", quantity=bought,
            )  # fmt: skip
            assert closed.get("status") == "success", closed
        time.sleep(0.25)  # two orders a try: stay under the server's 10 orders a second
    assert len({r["average_price"] for r in trades}) >= 2, trades  # two levels swept
    assert a.recover(order("t-os", qty), oid, 0, 0.0, 0.0) == oid
    true_avg = sum(r["quantity"] * r["average_price"] for r in trades) / qty
    row = a.sdk.orderstatus(order_id=oid)["data"]
    assert "filled_quantity" not in row and row["order_status"] == "complete"
    assert row["average_price"] == trades[0]["average_price"] != round(true_avg, 2)
    events = a._apply(oid, order_report(row))
    fills = [e for e in events if isinstance(e, TradeEvent)]
    # the fill is worth what the trades were, to the paisa: not their average rounded
    assert [(f.quantity, round(f.price, 6)) for f in fills] == [(qty, round(true_avg, 6))]
    assert [e.average_price for e in events if isinstance(e, OrderEvent)] == [true_avg]


def test_a_push_before_the_placement_reply_is_the_orders_first_state(
    faulty: tuple[str, MarketClock],
) -> None:
    """An ``order_update`` for an order whose placement reply is still on the way is kept,
    and is what the order starts as when the reply comes (no assumed "open"); with updates
    pushed, a new order's state is not asked for at all."""
    host, clock = faulty
    a = adapter(host, clock)
    a.pushing = lambda: True
    push = {"orderid": "77", "order_status": "trigger pending", "quantity": 65}
    assert a.on_order_update(push) == []  # not tracked yet: kept
    events = a._adopt(order("t-early", 65), "77")
    assert [(e.status, e.filled_quantity) for e in events] == [("trigger pending", 0)]
    assert a._adopt(order("t-quiet", 65), "78") == []  # the push will say
    assert a.tracked["78"].status == ""


@pytest.mark.parametrize(
    "reply, wait",
    [
        ({"code": 429, "message": 'HTTP 429: {"message": "10 per 1 second"}'}, 1.0),
        ({"code": 429, "message": 'HTTP 429: {"message": "40 per 1 minute"}'}, 60.0),
        ({"code": 429, "message": 'HTTP 429: {"message": "10 per second;40 per minute"}'}, 1.0),
        ({"code": 429, "message": 'HTTP 429: {"status": "error", "retry_after": 60}'}, 60.0),
        ({"code": 429, "message": "HTTP 429: <html>Too Many Requests</html>"}, 0.0),
        (
            {"code": 429, "message": 'HTTP 429: {"message": "5 per 1 second"}', "retry_after": 3},
            3.0,
        ),
        # a retry_after that is no number is no answer: the limit's text decides
        (
            {"code": 429, "message": 'HTTP 429: {"message": "5 per 1 second"}', "retry_after": "x"},
            1.0,
        ),
        (
            {"code": 429, "message": 'HTTP 429: {"retry_after": "soon", "message": "1/minute"}'},
            60.0,
        ),
    ],
)
def test_a_429_is_waited_out_whatever_its_body(reply: dict, wait: float) -> None:
    """The real /api/v1 body names the limit (no retry_after): wait out its window; a
    Retry-After header (kept as ``retry_after`` by the client) or body field wins; a body
    that says nothing leaves the router's own backoff."""
    from mytrading.openalgo.replies import classify

    f = classify({"status": "error", "error_type": "http_error", **reply})
    assert f is not None and f.not_sent and f.retry_after_s == wait


def parts_priced(
    steps: tuple[float, int] | None,
    rows: list[tuple[int, float]],
    book: dict[str, tuple[int, float]] | list[dict[str, tuple[int, float]]] | None = None,
    quantity: int = 130,
) -> tuple[list[float], int]:
    """The fills' prices an adapter books for the order-book rows ``rows`` ((filled,
    average) each), with ``steps`` (tick, unit) known, and the trade book's reads (a list:
    what each read says, the last one for ever)."""
    from mytrading.openalgo.orders import Tracked

    a = OpenAlgoAdapter(KEY, "http://127.0.0.1:9", 1.0, lambda: 0.0)
    a.steps_of = None if steps is None else (lambda ex, sym: steps)
    reads: list[int] = []
    books = book if isinstance(book, list) else [book or {}]
    a._trades = (  # type: ignore[method-assign]
        lambda: reads.append(1) or books[min(len(reads), len(books)) - 1]
    )
    a.tracked["9"] = Tracked(order("t-px", quantity), "9", "open")
    got = []
    for filled, avg in rows:
        status = "complete" if filled == quantity else "open"
        row = {"order_status": status, "filled_quantity": filled, "average_price": avg}
        got += [e.price for e in a._apply("9", order_report(row)) if isinstance(e, TradeEvent)]
    return got, len(reads)


def test_a_later_part_of_a_fill_is_priced_on_its_tick() -> None:
    """65 at 24,544.50, then the order complete at 130 with OpenAlgo's paisa-rounded
    average 24,544.53 (truly 24,544.525): derived, the second part is 24,544.56; its
    value is a whole number of ticks times the lot, and only 24,544.55's fits within
    the rounding's reach. No tick known: the derived price, a paisa off the trade."""
    rows = [(65, 24544.5), (130, 24544.53)]
    assert [round(p, 6) for p in parts_priced(None, rows)[0]] == [24544.5, 24544.56]
    got, reads = parts_priced((0.05, 65), rows)
    assert [round(p, 6) for p in got] == [24544.5, 24544.55] and reads == 0


def test_a_fill_of_several_trades_is_priced_exactly() -> None:
    """The simulator's seed 30: 130 sold in two trades, 65 at 24,609.25 and 65 at
    24,609.30, first seen complete (the router restarted in the call) at the average
    24,609.28, rounded from 24,609.275: a fill at 24,609.28 is worth 0.65 more than its
    trades. The value is a multiple of 0.05 x 65 and only 3,199,205.75 is within reach:
    priced exactly, the trade book unread."""
    got, reads = parts_priced((0.05, 65), [(130, 24609.28)])
    assert abs(got[0] * 130 - 3199205.75) < 1e-6 and reads == 0


def test_where_more_than_one_value_fits_the_trade_book_prices_the_fill() -> None:
    """The simulator's seed 141: 106 shares, 100 at 942.75 and 6 at 942.80, average
    942.7528 shown as 942.75; shares trade one at a time, so many values are within the
    rounding's reach. The trade book's value prices it (read once for the update);
    unread, the fill waits for the next read (the simulator's seed 54: a 429 on the trade
    book booked six shares a tick off), and after three the average stands."""
    traded = 100 * 942.75 + 6 * 942.80
    got, reads = parts_priced((0.05, 1), [(106, 942.75)], {"9": (106, traded)}, quantity=106)
    assert abs(got[0] * 106 - traded) < 0.001 and reads == 1  # booked to 6 places
    # unread (a 429): the fill waits for the next read, three reads, then the averages
    got, reads = parts_priced((0.05, 1), [(106, 942.75)] * 3, {}, quantity=106)
    assert got == [] and reads == 3
    got, reads = parts_priced((0.05, 1), [(106, 942.75)] * 4, {}, quantity=106)
    assert [round(p, 6) for p in got] == [942.75] and reads == 4
    # read at the second try: priced from it
    books = [{}, {"9": (106, traded)}]
    got, reads = parts_priced((0.05, 1), [(106, 942.75)] * 2, books, quantity=106)
    assert len(got) == 1 and abs(got[0] * 106 - traded) < 0.001 and reads == 2
