"""What the router's parts (``Recovery``, ``BrokerReads``) may ask of the router's shell:
the few acts that publish, alert or book, named once here so each part's inputs are its
constructor's arguments and this Protocol, nothing reached for by attribute.

``RouterDaemon`` (``router/daemon.py``) provides them; a part is given the order table,
the books and the lanes it works on, and the shell for these acts.
"""

from __future__ import annotations

from typing import Any, Protocol

from mytrading.messaging import wire
from mytrading.openalgo.broker import OrderEvent, TradeEvent
from mytrading.orders.tracker import TrackedOrder
from mytrading.router.lanes import Lane


class RouterPorts(Protocol):
    log: Any

    def count_error(self, what: str, **ctx: Any) -> None:
        """Log at error level with context, and count it in the heartbeat."""
        ...

    def fill(self, jo: TrackedOrder, trade: TradeEvent) -> None:
        """A broker trade of ``jo``: numbered, journaled, booked, published (once)."""
        ...

    def reject(self, jo: TrackedOrder, reason: str) -> None: ...

    def alert_unknown(self, jo: TrackedOrder, why: str) -> None:
        """An order that may or may not be at the broker: alerted, its strategy halted."""
        ...

    def unknown_resolved(self, jo: TrackedOrder, fate: str) -> None:
        """An unknown order found at the broker or certainly absent: its strategy's halt
        for it lifts."""
        ...

    def publish_order(self, jo: TrackedOrder) -> None:
        """``jo``'s state as an ``OrderUpdate`` (held back while recovery runs)."""
        ...

    def on_broker_events(self, account: str, events: list[OrderEvent | TradeEvent]) -> None: ...

    def session_expired(self, lane: Lane, why: str) -> None: ...

    def publish(self, topic: str, msg: wire.Msg) -> None:
        """On the bus at once (a heartbeat-paced figure, not an order's state)."""
        ...
