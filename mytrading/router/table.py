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
"""

from __future__ import annotations

import time
from typing import Any

from mytrading import wire
from mytrading.router.journal import Journal, JournaledOrder, Record, order_record


class OrderTable:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.orders: dict[str, JournaledOrder] = {}  # today's, by our (client) order id
        # (account, broker id) -> our id, for orders not yet final
        self._by_broker_id: dict[tuple[str, str], str] = {}
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
        jo = self.orders[order.order_id] = JournaledOrder(order, "new", recv_ns=time.time_ns())
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
        state: str,
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
        if sync is None:
            sync = state == "sent"
        if self._unjournaled.pop(jo.order.order_id, None) is not None:
            with_order = True  # its first record
        for k, v in changes.items():
            setattr(jo, k, v)
        jo.state = state
        record = order_record(
            jo.order.order_id, jo, jo.order if with_order else None, time.time_ns()
        )
        self.journal.append(record, sync=sync)

    def at_broker(self, jo: JournaledOrder, broker_id: str, state: str = "open") -> None:
        """The broker took ``jo`` as ``broker_id``: journaled, and its events find it."""
        self.set(jo, state, broker_id=broker_id)
        self.index(jo)

    def index(self, jo: JournaledOrder) -> None:
        self._by_broker_id[(jo.order.account, jo.broker_id)] = jo.order.order_id

    def of_broker(self, account: str, broker_id: str) -> JournaledOrder | None:
        """Our order behind an account's broker id, while it is not final."""
        return self.orders.get(self._by_broker_id.get((account, broker_id), ""))

    def changed(self, jo: JournaledOrder, state: str, filled: int, avg: float, reason: str) -> None:
        """A broker's event for ``jo``: journaled; a final order leaves the index."""
        self.set(jo, state, filled=filled, avg=avg, reason=reason)
        if jo.final:
            self._by_broker_id.pop((jo.order.account, jo.broker_id), None)

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
