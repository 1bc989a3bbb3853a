"""What the router reads from each account's broker besides the answers to its calls:
order updates pushed on the WebSocket, the order book polled behind them, funds for
risk's margin checks, and the broker's margin per lot of the instruments traded.

Part of the router's shell (``RouterDaemon``, ``router/daemon.py``): it reads each lane's
broker and hands what it finds to the shell's order table and publications."""

from __future__ import annotations

import time

import msgspec
import zmq

from mytrading import wire
from mytrading.router.lanes import Lane
from mytrading.router.session import expired_reply

MARGIN_POLL_S = 60.0  # the broker's margin per lot of each instrument traded
MARGIN_WATCH_MAX = 20  # instruments asked about per poll (OpenAlgo rate limits)


class BrokerReads:
    def _on_ws_updates(self, lane: Lane) -> None:
        lane.updates_pull.recv(zmq.NOBLOCK)
        if lane.inflight is None:  # else they wait in the client's queue (see lanes.py)
            self._take_updates(lane)

    def _take_updates(self, lane: Lane) -> None:
        assert lane.updates is not None
        for item in lane.updates.take():
            if isinstance(item, dict):
                with lane.lock:
                    events = lane.broker.on_order_update(item)
                self._on_broker_events(lane.account, events)

    def _maybe_poll(self) -> None:
        s = self.settings
        for lane in self.lanes.values():
            assert lane.updates is not None
            up = lane.updates.pushing  # subscribed and confirmed: the poll is a repair
            every = s.openalgo_poll_s if up else s.openalgo_poll_no_ws_s
            if lane.session.expired:
                continue  # every call would be refused: the session probe comes first
            if lane.inflight is None and time.monotonic() - lane.last_poll >= every - 1e-3:
                self._poll(lane)

    def _poll(self, lane: Lane) -> None:
        lane.last_poll = time.monotonic()
        with lane.lock:
            events, resolved = lane.broker.poll()
        for order, outcome, broker_id in resolved:
            jo = self.table.get(order.order_id)
            if jo is None:
                continue
            if outcome == "found":
                self.log.warning(
                    "unknown order found at the broker; its strategy stays halted until resumed",
                    order_id=order.order_id,
                    broker_id=broker_id,
                )
                self.table.at_broker(jo, broker_id)
            else:
                self.count_error(
                    "ALERT: unknown order never appeared at the broker; it stays UNKNOWN "
                    "and was not sent again",
                    order_id=order.order_id,
                    account=lane.account,
                )
        self._on_broker_events(lane.account, events)

    def _publish_funds(self) -> None:
        """Each account's funds. A failed poll is a warning (the broker may still be
        starting); three in a row are an error, counted once per outage."""
        for lane in self.lanes.values():
            if lane.session.expired:
                continue
            try:
                funds = self._funds(lane)
            except ConnectionError as exc:
                if expired_reply(403, str(exc)):
                    self._session_expired(lane, str(exc))
                    continue
                self.counts["funds_failures"] += 1
                self._read_failed("funds", lane.account, exc)
                continue
            self.read_failures.pop(("funds", lane.account), None)
            self.pub.publish("exec.funds", funds)

    def _read_failed(self, what: str, account: str, exc: Exception) -> None:
        """A broker read that did not connect: a warning (the broker may still be starting;
        the reader asks again), an error when it is the third in a row for that read and
        account, counted once per outage. Funds polled and funds or positions asked for
        by another daemon all come here; a good read of the same kind resets it."""
        key = (what, account)
        n = self.read_failures[key] = self.read_failures.get(key, 0) + 1
        if n == 3:
            self.count_error(
                f"{what} unavailable three times in a row", account=account, reason=str(exc)
            )
        else:
            self.log.warning(f"{what} unavailable", account=account, reason=str(exc), tries=n)

    @staticmethod
    def _funds(lane: Lane) -> wire.Funds:
        with lane.lock:
            funds = lane.broker.funds()
        return msgspec.structs.replace(funds, account=lane.account)

    def _maybe_margins(self) -> None:
        if self.main.session.expired:
            return
        if self.margin_watch and time.monotonic() >= self.margin_next:
            self.margin_next = time.monotonic() + MARGIN_POLL_S
            self._publish_margins()

    def _publish_margins(self) -> None:
        """Ask the broker what one lot of each recently traded instrument needs, short
        (and long, for futures); publish each answer for risk."""
        for ex, sym, prod in list(self.margin_watch)[-MARGIN_WATCH_MAX:]:
            inst = self.refdata.instrument(ex, sym)
            for action in ("SELL", "BUY") if inst.kind == "FUT" else ("SELL",):
                try:
                    with self.main.lock:
                        per = self.main.broker.margin_per_lot(ex, sym, action, prod, inst.lot_size)
                except ConnectionError as exc:
                    self.log.warning("margin unavailable", symbol=sym, reason=str(exc))
                    return
                if per is not None:
                    self.pub.publish(
                        "exec.margin",
                        wire.MarginQuote(
                            exchange=ex,
                            symbol=sym,
                            action=action,  # type: ignore[arg-type]  # normalised above
                            product=prod,  # type: ignore[arg-type]  # the broker's row
                            per_lot=round(per, 2),
                        ),
                    )
