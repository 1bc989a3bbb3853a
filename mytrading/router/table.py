"""The router's order table: the order tracker (``orders/tracker.py``: every order of the
day by our id, its state, the index from each account's broker ids to ours, finished
orders kept for late updates, fill numbering) with the router's journal under it.

Every change goes through ``set``: journal first, then the order in memory, so what the
router knows is never ahead of what a restart would replay. A new order read off the pipe
is journaled at the end of that read, not on its own: with its ``sent`` record when it
goes at once (one record, one write: the order and its write-ahead point), else as ``new``
(``journal_unsent``). A router killed inside that read has journaled nothing of it, as if
its frame were still in the socket; risk sends it again when the router is back (its
outbox keeps every order the router has not answered), and it goes once. Sockets, lanes and
publications are the daemon's (``router/daemon.py``); this holds no socket and calls no
broker, so it is tested on its own (``tests/router/test_router_table.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mytrading import hosttime
from mytrading.messaging import wire
from mytrading.orders.state import OrderState
from mytrading.orders.tracker import OrderTracker, TrackedOrder
from mytrading.router.journal import Journal, Record, order_record

S = OrderState


class OrderTable(OrderTracker):
    def __init__(self, journal: Journal, market_ns: Callable[[], int] | None = None) -> None:
        super().__init__(market_ns)
        self.journal = journal
        self._unjournaled: dict[str, TrackedOrder] = {}  # read off the pipe this read

    def add(self, order: wire.Order) -> TrackedOrder:
        """A new order read off the pipe: its first record, which carries the whole order,
        is its first change (``set``) or ``journal_unsent``, at the end of the read."""
        jo = super().add(order)
        jo.recv_ns = hosttime.time_ns()  # the router's own latency figure starts here
        self._unjournaled[order.order_id] = jo
        return jo

    def journal_unsent(self) -> int:
        """The orders of this read that did not go (rate limits, a busy lane): journaled
        as ``new`` with their whole content, in one write; how many."""
        if not self._unjournaled:
            return 0
        now = hosttime.time_ns()
        records = [order_record(oid, jo, jo.order, now) for oid, jo in self._unjournaled.items()]
        self._unjournaled.clear()
        self.journal.append(*records, sync=False)
        return len(records)

    def set(
        self,
        t: TrackedOrder,
        state: OrderState,
        *,
        sync: bool | None = None,
        with_order: bool = False,
        **changes: Any,
    ) -> None:
        """Journal a change of ``t``, then keep it.

        Only ``sent`` is flushed to the disk before the call that follows it: it is the
        write-ahead point (it covers the ``new`` before it). What the broker told us after
        is written at once (a killed process loses none of it: the page cache keeps it) and
        flushed within the daemon's sync interval; a power cut in that window loses at
        most the latest answers, which recovery reads again from the broker's books."""
        super().set(t, state, **changes)  # refuses a move no order can make, first
        if sync is None:
            sync = state == S.SENT
        if self._unjournaled.pop(t.order.order_id, None) is not None:
            with_order = True  # its first record
        whole = t.order if with_order else None
        record = order_record(t.order.order_id, t, whole, hosttime.time_ns())
        self.journal.append(record, sync=sync)

    def amend(self, t: TrackedOrder, msg: wire.Order) -> None:
        super().amend(t, msg)
        self.set(t, t.state, with_order=True)  # journaled: a restart knows the new terms

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
        return self.forget_finished(self.of_today(since_ns))

    def target_of(self, jo: TrackedOrder) -> str | None:
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
            Record("fill", hosttime.time_ns(), order_id=fill.order_id, fill=fill), sync=False
        )
