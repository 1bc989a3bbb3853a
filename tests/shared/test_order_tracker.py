"""The one order tracker every book of orders is built on: the moves it allows and refuses,
a finished order still found for a late update, fills numbered without a hole, a split
order's one status, and a broker's words read as our states in one place."""

from __future__ import annotations

import pytest

from mytrading.messaging import wire
from mytrading.openalgo.broker import broker_state
from mytrading.orders.state import IllegalMoveError, OrderState, published, whole_status
from mytrading.orders.tracker import FINISHED_KEPT, OrderTracker

S = OrderState


def order(oid: str, account: str = "main") -> wire.Order:
    return wire.Order(
        order_id=oid, intent_id=oid, strategy="s", exchange="NFO", symbol="X", action="BUY",
        quantity=65, pricetype="LIMIT", product="NRML", price=100.0, trigger_price=0.0,
        approved_by="risk", account=account,
    )  # fmt: skip


def test_moves_allowed_refused_and_a_late_fill_after_the_end() -> None:
    t = OrderTracker(market_ns=lambda: 42)
    a = t.add(order("a"))
    with pytest.raises(IllegalMoveError, match="new cannot become open"):
        t.set(a, S.OPEN)  # never sent: our own code asking it is a bug
    t.set(a, S.SENT)
    t.at_broker(a, "B1")
    assert t.working() == 1 and t.of_broker("main", "B1") is a
    assert t.of_broker("second", "B1") is None  # a broker id means nothing on another account
    assert t.report(a, S.CANCELLED, 0, 0.0, "") and a.final and a.done_ns == 42
    assert t.working() == 0
    # the fill that raced the cancel: the finished order is still found, and may complete
    assert t.of_broker("main", "B1") is a
    assert t.report(a, S.COMPLETE, 65, 100.5, "")
    assert not t.report(a, S.OPEN, 65, 100.5, "")  # complete back to open: refused
    assert a.state == S.COMPLETE and published(a.state) == "complete"


def test_finished_orders_are_kept_for_late_updates_up_to_a_bound() -> None:
    t = OrderTracker()
    for i in range(FINISHED_KEPT + 1):
        o = t.add(order(f"o{i}"))
        t.set(o, S.SENT)
        t.at_broker(o, f"B{i}")
        t.report(o, S.COMPLETE, 65, 1.0, "")
    assert t.of_broker("main", "B1") is not None
    assert t.of_broker("main", "B0") is None  # the oldest went past the bound
    assert t.forget_finished(frozenset({"o5"})) == FINISHED_KEPT
    assert list(t.orders) == ["o5"]


def test_fills_are_numbered_without_a_hole() -> None:
    t = OrderTracker()
    assert [t.next_fill_no() for _ in range(3)] == [1, 2, 3]
    t.fill_no = 10  # as a restart restores it from the journal
    assert t.next_fill_no() == 11


def test_a_split_orders_status_and_a_brokers_words() -> None:
    assert whole_status(["complete"], 2, 65) == "open"  # a child not heard of yet
    assert whole_status(["complete", "trigger pending"], 2, 65) == "trigger pending"
    assert whole_status(["complete", "open"], 2, 65) == "open"
    assert whole_status(["complete", "complete"], 2, 130) == "complete"
    assert whole_status(["complete", "cancelled"], 2, 65) == "cancelled"
    assert whole_status(["rejected", "rejected"], 2, 0) == "rejected"
    assert whole_status(["rejected", "complete"], 2, 65) == "cancelled"  # some filled
    assert broker_state("Canceled", 0) == S.CANCELLED  # a broker's own word, OpenAlgo's set
    assert broker_state("filled", 65) == S.COMPLETE
    assert broker_state("pending", 20) == S.PARTIAL
    assert broker_state("validation pending", 0) == S.OPEN
