"""Risk's working quantity: what may still fill, counted once.

An order's updates say how much of it the broker filled; its fills move the position.
The two travel apart on the bus, and a fill can be lost there (caught up at the router's
next heartbeat). Until its fills are booked, an order the broker says is done keeps the
unbooked part working, so nothing sees that quantity as neither held nor coming."""

from __future__ import annotations

from mytrading.messaging import wire
from mytrading.risk.book import RiskBook

KEY = ("s", "NFO", "NIFTY29SEP26FUT")


def update(status: str, filled: int, qty: int = 130, action: str = "SELL") -> wire.OrderUpdate:
    return wire.OrderUpdate(
        order_id="s.1", intent_id="1", strategy="s", exchange="NFO", symbol=KEY[2],
        action=action, quantity=qty, status=status, filled_qty=filled,  # type: ignore[arg-type]
    )  # fmt: skip


def fill(qty: int, no: int, action: str = "SELL") -> wire.Fill:
    return wire.Fill(
        fill_no=no, fill_id=f"t{no}", order_id="s.1", broker_order_id="B1", strategy="s",
        exchange="NFO", symbol=KEY[2], product="NRML", action=action, quantity=qty,  # type: ignore[arg-type]
        price=24500.0, exch_ns=1,
    )  # fmt: skip


def test_a_done_order_whose_fill_was_lost_stays_working_until_it_is_booked() -> None:
    """The simulator's seed 195 (the operator's flatten at 240x): the exit's fill lost on
    the bus, its end heard; risk saw the position open and nothing working, and its exit
    job sold the position a second time."""
    book = RiskBook(positions={KEY: 130})
    book.on_approved("s.1", KEY, -130)
    book.on_update(update("complete", 130))  # its fill never came
    assert book.working.of(KEY) == {"s.1": -130}  # still coming: not sold again
    book.on_fill(fill(65, 1))  # caught up, in two trades
    assert book.working.of(KEY) == {"s.1": -65} and book.positions[KEY] == 65
    book.on_fill(fill(65, 2))
    assert book.working.of(KEY) == {} and book.positions[KEY] == 0
    assert not book.awaiting and not book.booked


def test_partial_updates_count_the_rest_of_the_order_once() -> None:
    """Each update's filled quantity is the order's total so far: the working rest is the
    order less it (it had been taken from the rest already counted down, and went to 0,
    then negative, with three trades)."""
    book = RiskBook()
    book.on_approved("s.1", KEY, 195)
    for filled in (65, 130):
        book.on_fill(fill(65, filled // 65, action="BUY"))
        book.on_update(update("open", filled, qty=195, action="BUY"))
    assert book.working.of(KEY) == {"s.1": 65}
    book.on_fill(fill(65, 3, action="BUY"))
    book.on_update(update("complete", 195, qty=195, action="BUY"))
    assert book.working.of(KEY) == {} and book.positions[KEY] == 195
