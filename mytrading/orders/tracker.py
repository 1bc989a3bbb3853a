"""One order tracker: each order of the day by our id, its state, what has filled of it,
and the index from each account's broker ids to ours; every book of orders in the stack is
this (the router's table adds its journal, ``router/table.py``; the backtest's venue uses
it as it is, ``backtest/venue.py``).

Every change goes through ``set``, which refuses a move ``state.ALLOWED`` does not name
(our own code asking it is a bug). A broker's report goes through ``report``, which
refuses such a move quietly (the caller says it) and keeps a finished order findable by
its broker id for a while (``FINISHED_KEPT``), so a late update or fill for it (a fill
that raced its cancel) is booked, not dropped as an order we did not send. Fills are
numbered here, 1, 2, 3... with no hole: the number every reader's ``FillSequence`` checks.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import msgspec

from mytrading.messaging import wire
from mytrading.orders.state import FINAL_STATES, IllegalMoveError, OrderState, may_move

FINISHED_KEPT = 10_000  # finished orders still found by broker id, for late updates


class TrackedOrder(msgspec.Struct, gc=False):
    """What is known of one order. Not tracked by the garbage collector (it holds no
    reference cycle): the day's orders pile up, and a full collection walked each of them
    at every pass (35-50 ms at 1,000 orders/s, collecting nothing)."""

    order: wire.Order
    state: OrderState
    broker_id: str = ""
    filled: int = 0
    avg: float = 0.0
    reason: str = ""
    attempt: int = 0
    sent_ns: int = 0  # market-clock time of the last hand-over (broker books use it)
    wall_sent_ns: int = 0  # wall time of the same (latency figures; not journaled)
    recv_ns: int = 0  # wall time the router read it off the pipe (its own latency figure)
    # market-clock time it became final (not journaled): the day it belongs to in the
    # broker's books when its answer crossed a night (a demo clock at speed)
    done_ns: int = 0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class OrderTracker:
    def __init__(self, market_ns: Callable[[], int] | None = None) -> None:
        self.market_ns = market_ns  # when an order becomes final (``done_ns``)
        self.orders: dict[str, TrackedOrder] = {}  # today's, by our (client) order id
        # (account, broker id) -> our id, for orders not yet final
        self._by_broker_id: dict[tuple[str, str], str] = {}
        # ... and for the latest finished ones (late updates and fills find them)
        self._finished: collections.OrderedDict[tuple[str, str], str] = collections.OrderedDict()
        self.fill_no = 0  # the last fill numbered

    def __contains__(self, order_id: str) -> bool:
        return order_id in self.orders

    def get(self, order_id: str) -> TrackedOrder | None:
        return self.orders.get(order_id)

    def working(self) -> int:
        """Orders at a broker not yet final."""
        return len(self._by_broker_id)

    def accounts_working(self) -> set[str]:
        return {a for a, _ in self._by_broker_id}

    def add(self, order: wire.Order) -> TrackedOrder:
        """A new order, ``new`` until it is sent or ends here."""
        t = self.orders[order.order_id] = TrackedOrder(order, OrderState.NEW)
        return t

    def set(self, t: TrackedOrder, state: OrderState, **changes: Any) -> None:
        """Move ``t`` to ``state`` with ``changes`` to its fields."""
        if not may_move(t.state, state):
            raise IllegalMoveError(f"{t.order.order_id}: {t.state} cannot become {state}")
        for k, v in changes.items():
            setattr(t, k, v)
        if state in FINAL_STATES and not t.done_ns and self.market_ns is not None:
            t.done_ns = self.market_ns()
        t.state = state

    def amend(self, t: TrackedOrder, msg: wire.Order) -> None:
        """A modify of ``t`` the broker took: its quantity, type and prices are ``msg``'s
        (its state stays; the router's table journals the whole order again)."""
        t.order = msgspec.structs.replace(
            t.order,
            quantity=msg.quantity,
            pricetype=msg.pricetype,
            price=msg.price,
            trigger_price=msg.trigger_price,
        )

    def at_broker(
        self, t: TrackedOrder, broker_id: str, state: OrderState = OrderState.OPEN
    ) -> None:
        """The broker took ``t`` as ``broker_id``: its events find it from now."""
        self.set(t, state, broker_id=broker_id)
        self.index(t)

    def index(self, t: TrackedOrder) -> None:
        self._by_broker_id[(t.order.account, t.broker_id)] = t.order.order_id

    def of_broker(self, account: str, broker_id: str) -> TrackedOrder | None:
        """Our order behind an account's broker id, while it is working or among the
        latest finished."""
        key = (account, broker_id)
        oid = self._by_broker_id.get(key) or self._finished.get(key, "")
        return self.orders.get(oid)

    def report(
        self, t: TrackedOrder, state: OrderState, filled: int, avg: float, reason: str
    ) -> bool:
        """A broker's word on ``t``: kept, a final order kept among the finished; False
        (nothing kept) for a move no order can make."""
        if not may_move(t.state, state):
            return False
        if state == t.state and (filled, avg) == (t.filled, t.avg) and t.final:
            return True  # a repeat of what a finished order is: nothing new to keep
        self.set(t, state, filled=filled, avg=avg, reason=reason)
        if t.final:
            key = (t.order.account, t.broker_id)
            if self._by_broker_id.pop(key, None) is not None:
                self._finished[key] = t.order.order_id
                while len(self._finished) > FINISHED_KEPT:
                    self._finished.popitem(last=False)
        return True

    def next_fill_no(self) -> int:
        """The number of the fill about to be booked."""
        self.fill_no += 1
        return self.fill_no

    def forget_finished(self, keep: frozenset[str]) -> int:
        """Finished orders not in ``keep`` go (a new day: as a broker's book clears
        overnight); working ones stay. How many went."""
        before = len(self.orders)
        self.orders = {k: v for k, v in self.orders.items() if not v.final or k in keep}
        for key, oid in list(self._finished.items()):
            if oid not in self.orders:
                del self._finished[key]
        return before - len(self.orders)
