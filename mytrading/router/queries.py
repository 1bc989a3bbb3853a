"""The router's answers on ``rpc.router``: positions per strategy and the fills since a
number (a restarted engine, risk or signals daemon catching up), every order of the day
(the reconciler), an account's funds and position book (risk, the reconciler), and the
reconciler's hand-over of an unknown order it matched at the broker.

A part the router's shell composes (``router/daemon.py`` reads the socket and sends the
reply); it reads the order table, the books and the lanes, and asks a broker only where
no order call is in flight on that account (the loop never waits for one: the asker asks
again)."""

from __future__ import annotations

from collections.abc import Callable

from mytrading.messaging import wire
from mytrading.openalgo.broker import SESSION_EXPIRED
from mytrading.orders.state import OrderState, published
from mytrading.router.books import Books
from mytrading.router.broker_reads import BrokerReads
from mytrading.router.lanes import Lane
from mytrading.router.ports import RouterPorts
from mytrading.router.recovery import Recovery
from mytrading.router.session import expired_reply
from mytrading.router.table import OrderTable


class Queries:
    def __init__(
        self,
        table: OrderTable,
        books: Books,
        lanes: dict[str, Lane],
        reads: BrokerReads,
        recovery: Recovery,
        quiesce: Callable[[Lane], bool],
        ports: RouterPorts,
    ) -> None:
        self.table = table
        self.books = books
        self.lanes = lanes
        self.reads = reads
        self.recovery = recovery
        self.quiesce = quiesce  # the lane's batch answered and journaled (False: in flight)
        self.ports = ports

    def answer(self, q: wire.BrokerQuery) -> wire.BrokerReply:
        if q.kind in ("strategy_positions", "orders"):
            return self._orders(q.kind)
        if q.kind in ("funds", "positions"):
            return self._broker(q.kind, q.account)
        if q.kind == "adopt":
            return self._claim(q)
        return wire.BrokerReply(
            ok=True, fills=self.books.since(q.since_fill_no), last_fill_no=self.books.fill_no
        )

    def _claim(self, q: wire.BrokerQuery) -> wire.BrokerReply:
        """The reconciler found an order at the broker that matches one of ours whose
        placement is unknown: the lane's adapter takes it as that order at its next read
        of the order book, if the row still matches (the poll then adopts it, and its
        fills are booked once, as for any order found)."""
        jo = self.table.get(q.order_id)
        lane = self.lanes.get(q.account)
        if (
            jo is None
            or lane is None
            or jo.state != OrderState.UNKNOWN
            or jo.order.account != q.account
        ):
            return wire.BrokerReply(ok=False, error=f"{q.order_id} is not unknown here")
        if lane.busy():
            return wire.BrokerReply(ok=False, error=f"busy: an order call in flight at {q.account}")
        with lane.lock:
            took = lane.broker.claim(q.order_id, q.broker_id)
        if not took:
            return wire.BrokerReply(ok=False, error=f"{q.broker_id} cannot be {q.order_id}")
        self.ports.log.warning("the reconciler matched an unknown order at the broker",
                               order_id=q.order_id, broker_id=q.broker_id,
                               account=q.account)  # fmt: skip
        lane.last_poll = 0.0  # read the order book at the next timer
        return wire.BrokerReply(ok=True)

    def _orders(self, kind: str) -> wire.BrokerReply:
        """A restarted engine or risk catching up (orders still working), or the
        reconciler (every order of the day, final or not)."""
        return wire.BrokerReply(
            ok=True,
            snapshots=self.books.snapshots() if kind == "strategy_positions" else [],
            last_fill_no=self.books.fill_no,
            working=[
                wire.WorkingOrder(
                    order=jo.order,
                    status=published(jo.state),
                    filled_qty=jo.filled,
                    avg_price=jo.avg,
                    broker_order_id=jo.broker_id,
                    sent_ns=jo.sent_ns,
                    done_ns=jo.done_ns,
                )
                for jo in self.table.orders.values()
                if jo.order.op == "place" and (kind == "orders" or not jo.final)
            ],
            unconfirmed=sorted("|".join(k) for k in self.recovery.unconfirmed),
            unread=sorted(self.recovery.unread),
        )

    def _broker(self, kind: str, account: str) -> wire.BrokerReply:
        """An account's funds or position book, read from its broker now."""
        lane = self.lanes.get(account)
        try:
            if lane is None:
                raise ConnectionError(f"no account {account!r} at the router")
            if lane.session.expired:
                return wire.BrokerReply(ok=False, error=f"{SESSION_EXPIRED}: {account}")
            if lane.busy():  # the asker asks again; the loop never waits for the call
                return wire.BrokerReply(
                    ok=False, error=f"busy: an order call in flight at {account}"
                )
            if kind == "funds":
                reply = wire.BrokerReply(ok=True, funds=self.reads.funds(lane))
                self.reads.read_ok(kind, account)
                return reply
            if not self.quiesce(lane):
                return wire.BrokerReply(
                    ok=False, error=f"busy: an order call in flight at {account}"
                )
            with lane.lock:
                book = lane.broker.positionbook()
            self.reads.read_ok(kind, account)
            return wire.BrokerReply(ok=True, positions=book, last_fill_no=self.books.fill_no)
        except ConnectionError as exc:
            if lane is not None and expired_reply(403, str(exc)):
                self.ports.session_expired(lane, str(exc))
                return wire.BrokerReply(ok=False, error=f"{SESSION_EXPIRED}: {account}")
            self.reads.read_failed(kind, account, exc)
            return wire.BrokerReply(ok=False, error=str(exc))
