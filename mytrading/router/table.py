"""The router's order table: every order of the day by our id, its journaled state, and
the index from each account's broker ids to ours.

Every change goes through ``set``: journal first, then the order in memory, so what the
router knows is never ahead of what a restart would replay. Sockets, lanes and
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
        """A new order read off the pipe, journaled with its whole content."""
        jo = self.orders[order.order_id] = JournaledOrder(order, "new", recv_ns=time.time_ns())
        self.set(jo, "new", with_order=True)
        return jo

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
