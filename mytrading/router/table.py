"""The router's order table: every order of the day by our id, its journaled state, and
the index from each account's broker ids to ours.

Every change goes through ``set``: journal first, then the order in memory, so what the
router knows is never ahead of what a restart would replay. A new order read off the pipe
is journaled at the end of that read, not on its own: with its ``sent`` record when it
goes at once (one record, one write: the order and its write-ahead point), else as ``new``
(``journal_unsent``). A router killed inside that read has journaled nothing of it, as if
its frame were still in the socket; risk sends it again when the router is back (its
outbox keeps every order the router has not answered), and it goes once. Sockets, lanes and
publications are the daemon's (``router/daemon.py``); this holds no socket and calls no
broker, so it is tested on its own (``tests/router/test_router_table.py``).

An order's state moves only as ``ALLOWED`` says (``set`` raises ``IllegalMoveError`` for any
other: our own code asking it is a bug); a broker's report of a move no order can make
(``complete`` back to ``open``) is refused by ``changed`` and left to the caller to say.
A finished order stays findable by its broker id for a while (``FINISHED_KEPT``), so a
late update or fill for it (a fill that raced its cancel) is booked, not dropped as an
order we did not send.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

from mytrading import wire
from mytrading.router.journal import (
    FINAL_STATES,
    Journal,
    JournaledOrder,
    OrderState,
    Record,
    order_record,
)

S = OrderState
_WORKING = frozenset({S.OPEN, S.TRIGGER_PENDING, S.PARTIAL})
_BROKER_SAYS = _WORKING | {S.COMPLETE, S.CANCELLED, S.REJECTED}
# The moves an order's state may make; every state may also be journaled again as it is
# (with more filled, a new reason, a modified order).
ALLOWED: dict[OrderState, frozenset[OrderState]] = {
    # never handed over: sent, or ended here (refused before sending, cancelled unsent;
    # an amend that cancelled an unsent order is complete)
    S.NEW: frozenset({S.SENT, S.REJECTED, S.CANCELLED, S.COMPLETE}),
    # handed over: what the broker answers, unknown, or back to new (certainly not sent:
    # it is queued again)
    S.SENT: _BROKER_SAYS | {S.UNKNOWN, S.NEW},
    S.OPEN: _BROKER_SAYS | {S.UNKNOWN},
    S.TRIGGER_PENDING: _BROKER_SAYS | {S.UNKNOWN},
    S.PARTIAL: _BROKER_SAYS | {S.UNKNOWN},
    # found at the broker (adopted), or given up on by it
    S.UNKNOWN: _BROKER_SAYS,
    S.COMPLETE: frozenset(),
    S.CANCELLED: frozenset({S.COMPLETE}),  # a fill that raced the cancel: the broker's word
    S.REJECTED: frozenset(),
}
FINISHED_KEPT = 10_000  # finished orders still found by broker id, for late updates


class IllegalMoveError(ValueError):
    """A change of state no order can make."""


def may_move(old: OrderState, new: OrderState) -> bool:
    return new == old or new in ALLOWED[old]


def broker_state(status: str, filled: int) -> OrderState:
    """The state a broker's reported status puts an order in: ``partial`` for an open
    order with a part filled; a status outside OpenAlgo's set (a broker's own "validation
    pending", say) is an order still working there."""
    state = OrderState.read(status)
    if state not in _BROKER_SAYS:
        return S.OPEN
    return S.PARTIAL if state == S.OPEN and filled else state


class OrderTable:
    def __init__(self, journal: Journal, market_ns: Callable[[], int] | None = None) -> None:
        self.journal = journal
        self.market_ns = market_ns  # when an order becomes final (``done_ns``)
        self.orders: dict[str, JournaledOrder] = {}  # today's, by our (client) order id
        # (account, broker id) -> our id, for orders not yet final
        self._by_broker_id: dict[tuple[str, str], str] = {}
        # ... and for the latest finished ones (late updates and fills find them)
        self._finished: collections.OrderedDict[tuple[str, str], str] = collections.OrderedDict()
        self._unjournaled: dict[str, JournaledOrder] = {}  # read off the pipe this read

    def __contains__(self, order_id: str) -> bool:
        return order_id in self.orders

    def get(self, order_id: str) -> JournaledOrder | None:
        return self.orders.get(order_id)

    def working(self) -> int:
        """Orders at a broker not yet final."""
        return len(self._by_broker_id)

    def accounts_working(self) -> set[str]:
        return {a for a, _ in self._by_broker_id}

    def add(self, order: wire.Order) -> JournaledOrder:
        """A new order read off the pipe: its first record, which carries the whole order,
        is its first change (``set``) or ``journal_unsent``, at the end of the read."""
        jo = self.orders[order.order_id] = JournaledOrder(order, S.NEW, recv_ns=time.time_ns())
        self._unjournaled[order.order_id] = jo
        return jo

    def journal_unsent(self) -> int:
        """The orders of this read that did not go (rate limits, a busy lane): journaled
        as ``new`` with their whole content, in one write; how many."""
        if not self._unjournaled:
            return 0
        now = time.time_ns()
        records = [order_record(oid, jo, jo.order, now) for oid, jo in self._unjournaled.items()]
        self._unjournaled.clear()
        self.journal.append(*records, sync=False)
        return len(records)

    def set(
        self,
        jo: JournaledOrder,
        state: OrderState,
        *,
        sync: bool | None = None,
        with_order: bool = False,
        **changes: Any,
    ) -> None:
        """Journal a change of ``jo``, then keep it.

        Only ``sent`` is flushed to the disk before the call that follows it: it is the
        write-ahead point (it covers the ``new`` before it). What the broker told us after
        is written at once (a killed process loses none of it: the page cache keeps it) and
        flushed within the daemon's sync interval; a power cut in that window loses at
        most the latest answers, which recovery reads again from the broker's books."""
        if not may_move(jo.state, state):
            raise IllegalMoveError(f"{jo.order.order_id}: {jo.state} cannot become {state}")
        if sync is None:
            sync = state == S.SENT
        if self._unjournaled.pop(jo.order.order_id, None) is not None:
            with_order = True  # its first record
        for k, v in changes.items():
            setattr(jo, k, v)
        if state in FINAL_STATES and not jo.done_ns and self.market_ns is not None:
            jo.done_ns = self.market_ns()
        jo.state = state
        record = order_record(
            jo.order.order_id, jo, jo.order if with_order else None, time.time_ns()
        )
        self.journal.append(record, sync=sync)

    def at_broker(self, jo: JournaledOrder, broker_id: str, state: OrderState = S.OPEN) -> None:
        """The broker took ``jo`` as ``broker_id``: journaled, and its events find it."""
        self.set(jo, state, broker_id=broker_id)
        self.index(jo)

    def index(self, jo: JournaledOrder) -> None:
        self._by_broker_id[(jo.order.account, jo.broker_id)] = jo.order.order_id

    def of_broker(self, account: str, broker_id: str) -> JournaledOrder | None:
        """Our order behind an account's broker id, while it is working or among the
        latest finished."""
        key = (account, broker_id)
        oid = self._by_broker_id.get(key) or self._finished.get(key, "")
        return self.orders.get(oid)

    def changed(
        self, jo: JournaledOrder, state: OrderState, filled: int, avg: float, reason: str
    ) -> bool:
        """A broker's event for ``jo``: journaled, a final order kept among the finished;
        False (nothing journaled) for a move no order can make."""
        if not may_move(jo.state, state):
            return False
        if state == jo.state and (filled, avg) == (jo.filled, jo.avg) and jo.final:
            return True  # a repeat of what a finished order is: nothing new to keep
        self.set(jo, state, filled=filled, avg=avg, reason=reason)
        if jo.final:
            key = (jo.order.account, jo.broker_id)
            if self._by_broker_id.pop(key, None) is not None:
                self._finished[key] = jo.order.order_id
                while len(self._finished) > FINISHED_KEPT:
                    self._finished.popitem(last=False)
        return True

    def of_today(self, since_ns: int) -> frozenset[str]:
        """The finished orders that belong to the day that began at ``since_ns``: sent
        since, or finished since (an answer that crossed the night at speed)."""
        return frozenset(
            k
            for k, v in self.orders.items()
            if v.final and (v.sent_ns >= since_ns or v.done_ns >= since_ns)
        )

    def roll(self, since_ns: int) -> int:
        """A new trading day (the journal rolled), which began at ``since_ns`` (market
        time): the finished orders of earlier days go, as they went from the journal and as
        a broker's book clears overnight; the working ones stay, and so does every order of
        the day (``of_today``: its first orders can go out before the roll). How many went."""
        before = len(self.orders)
        today = self.of_today(since_ns)
        self.orders = {k: v for k, v in self.orders.items() if not v.final or k in today}
        for key, oid in list(self._finished.items()):
            if oid not in self.orders:
                del self._finished[key]
        return before - len(self.orders)

    def target_of(self, jo: JournaledOrder) -> str | None:
        """The broker id an amend acts on ("" for a place), or None when it has nothing to
        act on: no such order, not working, or on another account (its broker id means
        nothing there)."""
        o = jo.order
        if o.op == "place":
            return ""
        target = self.orders.get(o.ref_order_id)
        if target is None or not target.broker_id or target.final:
            return None
        return target.broker_id if target.order.account == o.account else None

    def fill(self, fill: wire.Fill) -> None:
        """A fill, journaled before anyone hears of it."""
        self.journal.append(
            Record("fill", time.time_ns(), order_id=fill.order_id, fill=fill), sync=False
        )
