"""The router's books: each fill booked into its (strategy, instrument, account)
position, marks from the ticks of what is held, position snapshots with P&L every
heartbeat, and the answers on ``rpc.router`` (positions, fills since a number, working orders,
funds, an account's position book) for the reconciler and for a restarted engine or
risk catching up.

A mixin of ``RouterDaemon`` (``router/daemon.py``), which owns the books it reports."""

from __future__ import annotations

import zmq

from mytrading import wire
from mytrading.positions import Ledger
from mytrading.router.journal import PUBLISHED_STATUS
from mytrading.router.session import SESSION_EXPIRED, expired_reply


class Books:
    def _book_fill(self, fill: wire.Fill) -> None:
        key = (fill.strategy, fill.exchange, fill.symbol, fill.product, fill.account)
        self.ledger.apply(
            key, fill.quantity if fill.action == "BUY" else -fill.quantity, fill.price
        )
        self._watch_marks(key)
        self.fill_ids.add((fill.account, fill.fill_id))
        self.fills.append(fill)

    def _watch_marks(self, key: tuple[str, ...]) -> None:
        ex, sym = key[1], key[2]
        if not self.keys_by_symbol[(ex, sym)] and not self.market_taps:
            self.sub.subscribe(wire.exact(wire.tick_topic(ex, sym)))  # for marks
        self.keys_by_symbol[(ex, sym)].add(key)

    def _snapshots(self) -> list[wire.PositionSnapshot]:
        return snapshots(self.ledger)

    def _publish_positions(self) -> None:
        for snap in self._snapshots():
            self.pub.publish(f"exec.position.{snap.strategy}", snap)

    def _on_query(self) -> None:
        try:
            raw = self.rep.recv(zmq.NOBLOCK)
        except zmq.Again:
            return
        self.msgs_in += 1
        try:
            q = wire.decode_body(raw)
            if not isinstance(q, wire.BrokerQuery):
                raise wire.WireError(f"expected a BrokerQuery, got {type(q).__name__}")
        except wire.WireError as exc:
            self.count_error("bad query", reason=str(exc))
            self.rep.send(wire.encode_body(wire.BrokerReply(ok=False, error=str(exc))))
            return
        if q.kind in ("strategy_positions", "orders"):
            # A restarted engine or risk catching up (orders still working), or the
            # reconciler (every order of the day, final or not).
            reply = wire.BrokerReply(
                ok=True,
                snapshots=self._snapshots() if q.kind == "strategy_positions" else [],
                last_fill_no=self.fill_no,
                working=[
                    wire.WorkingOrder(
                        order=jo.order,
                        status=PUBLISHED_STATUS.get(jo.state, jo.state),  # type: ignore[arg-type]
                        filled_qty=jo.filled,
                        avg_price=jo.avg,
                        broker_order_id=jo.broker_id,
                    )
                    for jo in self.orders.values()
                    if jo.order.op == "place" and (q.kind == "orders" or not jo.final)
                ],
                unconfirmed=sorted("|".join(k) for k in self.unconfirmed),
            )
            self.rep.send(wire.encode_body(reply))
            return
        if q.kind in ("funds", "positions"):
            lane = self.lanes.get(q.account)
            try:
                if lane is None:
                    raise ConnectionError(f"no account {q.account!r} at the router")
                if lane.session.expired:
                    reply = wire.BrokerReply(ok=False, error=f"{SESSION_EXPIRED}: {q.account}")
                    self.rep.send(wire.encode_body(reply))
                    return
                if q.kind == "funds":
                    reply = wire.BrokerReply(ok=True, funds=self._funds(lane))
                else:
                    self._quiesce(lane)
                    with lane.lock:
                        book = lane.broker.positionbook()
                    reply = wire.BrokerReply(ok=True, positions=book, last_fill_no=self.fill_no)
            except ConnectionError as exc:
                if lane is not None and expired_reply(403, str(exc)):
                    self._session_expired(lane, str(exc))
                    reply = wire.BrokerReply(ok=False, error=f"{SESSION_EXPIRED}: {q.account}")
                    self.rep.send(wire.encode_body(reply))
                    return
                self.count_error(f"{q.kind} unavailable", account=q.account, reason=str(exc))
                reply = wire.BrokerReply(ok=False, error=str(exc))
        else:
            fills = [f for f in self.fills if f.fill_no > q.since_fill_no]
            reply = wire.BrokerReply(ok=True, fills=fills, last_fill_no=self.fill_no)
        self.rep.send(wire.encode_body(reply))


def snapshots(ledger: Ledger) -> list[wire.PositionSnapshot]:
    """Each (strategy, exchange, symbol, product, account) position of ``ledger``, with
    its P&L."""
    return [
        wire.PositionSnapshot(
            strategy=strategy,
            exchange=ex,
            symbol=sym,
            product=prod,  # type: ignore[arg-type]
            quantity=p.qty,
            avg_price=round(p.avg, 2),
            realized_pnl=round(p.realized, 2),
            unrealized_pnl=round(p.unrealized(), 2),
            ltp=p.ltp,
            account=account,
        )
        for (strategy, ex, sym, prod, account), p in ledger.positions.items()  # type: ignore[misc]
    ]
