"""A webhook strategy's book: an intent counts as working from the moment it is sent until
its orders are final, what fills of it moves to the position, a split intent is final
only with every child, and a restored book, with the daemon's ``FillSequence`` started at
its snapshot's number, skips the fills the snapshot holds."""

from __future__ import annotations

import msgspec

from mytrading.messaging import wire
from mytrading.messaging.catchup import FillSequence
from mytrading.webhook.book import StrategyBook

FUT = "NIFTY23NOV26FUT"
KEY = ("tv", "NFO", FUT, "NRML")


def intent(iid: str, action: str, qty: int) -> wire.PlaceIntent:
    return wire.PlaceIntent(
        intent_id=iid, strategy="tv", exchange="NFO", symbol=FUT, action=action,  # type: ignore[arg-type]
        quantity=qty, product="NRML",
    )  # fmt: skip


def update(iid: str, status: str, qty: int, part: int = 0, parts: int = 1) -> wire.OrderUpdate:
    oid = f"tv.{iid}" + (f".{part}" if parts > 1 else "")
    return wire.OrderUpdate(
        order_id=oid, intent_id=iid, strategy="tv", exchange="NFO", symbol=FUT, action="BUY",
        quantity=qty, status=status, part=part, parts=parts,  # type: ignore[arg-type]
    )  # fmt: skip


def fill(n: int, oid: str, qty: int, action: str = "BUY") -> wire.Fill:
    return wire.Fill(
        fill_no=n, fill_id=f"f{n}", order_id=oid, broker_order_id="b", strategy="tv",
        exchange="NFO", symbol=FUT, product="NRML", action=action, quantity=qty,  # type: ignore[arg-type]
        price=100.0, exch_ns=0,
    )  # fmt: skip


def test_working_from_sent_to_final_and_fills_to_the_position() -> None:
    b = StrategyBook()
    b.sent(intent("a", "BUY", 130))
    assert b.working_qty(KEY) == 130 and b.position(KEY) == 0
    assert not b.on_update(update("a", "open", 130))
    b.on_fill(fill(1, "tv.a", 65))
    assert (b.position(KEY), b.working_qty(KEY)) == (65, 65)  # never both, never neither
    b.on_fill(fill(2, "tv.a", 65))
    assert b.on_update(update("a", "complete", 130))
    assert (b.position(KEY), b.working_qty(KEY)) == (130, 0)
    b.sent(intent("s", "SELL", 65))
    assert b.working_qty(KEY) == -65
    assert b.refused("s") and b.working_qty(KEY) == 0  # risk said no: nothing of it fills
    assert b.positions_of("tv") == {KEY: 130} and b.fills_by == {"tv": 2}


def test_a_split_intent_is_final_with_its_last_child() -> None:
    b = StrategyBook()
    b.sent(intent("big", "BUY", 1950))
    assert not b.on_update(update("big", "complete", 1800, part=1, parts=2))
    b.on_fill(fill(1, "tv.big.1", 1800))
    assert b.working_qty(KEY) == 150
    b.on_fill(fill(2, "tv.big.2", 150))
    assert b.on_update(update("big", "complete", 150, part=2, parts=2))
    assert (b.position(KEY), b.working_qty(KEY)) == (1950, 0)


def test_a_restored_book_skips_the_fills_of_its_snapshot() -> None:
    b = StrategyBook()
    snap = wire.PositionSnapshot(
        strategy="tv", exchange="NFO", symbol=FUT, product="NRML", quantity=65,
        avg_price=100.0, realized_pnl=0.0, unrealized_pnl=0.0, ltp=100.0,
    )  # fmt: skip
    order = wire.Order(
        order_id="tv.w", intent_id="w", strategy="tv", exchange="NFO", symbol=FUT,
        action="BUY", quantity=130, pricetype="MARKET", product="NRML", price=0.0,
        trigger_price=0.0, approved_by="risk",
    )  # fmt: skip
    b.restore([snap], [wire.WorkingOrder(order=order, status="open", filled_qty=65)])
    seq = FillSequence(lambda after: [])
    seq.start_at(7)  # as the signals daemon does with the snapshot's last fill number
    assert (b.position(KEY), b.working_qty(KEY)) == (65, 65)
    assert seq.take(fill(7, "tv.w", 65)) == ([], 0)  # in the snapshot already
    for f in seq.take(fill(8, "tv.w", 65))[0]:
        b.on_fill(f)
    assert (b.position(KEY), b.working_qty(KEY)) == (130, 0)


def test_a_strategys_snapshot_taken_in_skips_its_fills_below_it_not_others() -> None:
    """The square-off's re-read of the router's book: the strategy's position is taken
    from it, so its fills up to the snapshot's number are in it already; another
    strategy's fill below that number, still on the bus, is booked."""
    b = StrategyBook()
    snap = wire.PositionSnapshot(
        strategy="tv", exchange="NFO", symbol=FUT, product="NRML", quantity=130,
        avg_price=100.0, realized_pnl=0.0, unrealized_pnl=0.0, ltp=100.0,
    )  # fmt: skip
    b.restore([snap], [], upto=9)
    b.on_fill(fill(8, "tv.w", 65))  # in the snapshot: not booked again
    other = msgspec.structs.replace(fill(9, "ot.w", 65), strategy="ot")
    b.on_fill(other)
    b.on_fill(fill(10, "tv.x", 65))
    assert b.position(KEY) == 195
    assert b.position(("ot", "NFO", FUT, "NRML")) == 65
