"""The running stack as a command-line process sees it: the daemons' heartbeats and the
positions from the bus (``StatusCollector``), and risk's command pipe (a ``Pusher``).
``Control``'s ``StackView`` for the command line."""

from __future__ import annotations

import time
from types import TracebackType

import zmq

from mytrading.messaging import bus, wire
from mytrading.messaging.bus import Pusher
from mytrading.messaging.catchup import fetch_fills_since
from mytrading.process.status import StatusCollector
from mytrading.settings import Settings

FRESH_S = 5.0  # a heartbeat older than this is a daemon not running


class BusView:
    def __init__(self, s: Settings, every_daemon: bool = True) -> None:
        """``every_daemon``: listen for each daemon's beat (a status); else for risk's
        only (a change, or a question risk answers), which comes sooner."""
        self.collector = StatusCollector(s)  # first: on tcp it makes this process's
        # sockets CURVE clients with the operator's key
        self.ctx = zmq.Context()
        self.pusher = Pusher(self.ctx, s.endpoints()["pipe.commands"], "cli", "command")
        self.router = s.endpoints()["rpc.router"]
        self.fresh_s = max(FRESH_S, 3 * s.liveness.heartbeat_s)
        wanted = set(s.daemons) if every_daemon else {"risk", "router"} & set(s.daemons)
        self._listen(wanted, 1.2 * s.liveness.heartbeat_s + 0.3)

    def _listen(self, expected: set[str], seconds: float) -> None:
        """One heartbeat period: every running daemon beats once in it (done sooner when
        every one ``expected`` has: risk and the router, whose beat carries the positions,
        for all but a status)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not expected <= set(self.collector.daemons):
            self.collector.poll(0.05)

    def daemons(self) -> dict[str, wire.Status]:
        now = time.monotonic()
        return {n: s.status for n, s in self.collector.daemons.items() if now - s.at < self.fresh_s}

    def positions(self) -> list[wire.PositionSnapshot]:
        return list(self.collector.positions.values())

    def fills(self) -> list[wire.Fill] | None:
        return fetch_fills_since(bus.asking(self.ctx, self.router), 0)

    def send(self, cmd: wire.Command) -> bool:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # a PUSH may not be connected at once
            if self.pusher.send(cmd):
                return True
            self.collector.poll(0.05)
        return False

    def refresh(self, seconds: float) -> None:
        self.collector.poll(seconds)

    def close(self) -> None:
        self.pusher.sock.close(0)
        self.ctx.term()
        self.collector.close()

    def __enter__(self) -> BusView:
        return self

    def __exit__(
        self,
        t: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def known_strategies(s: Settings) -> list[str]:
    """What may be commanded besides the books risk reports: the enabled strategies and
    the webhook strategies on record."""
    known = s.enabled_strategies()
    if s.stores.webhook_db.exists():
        from mytrading.webhook.store import WebhookStore

        store = WebhookStore(s.stores.webhook_db)
        try:
            known += [w.fields.name for w in store.all()]
        finally:
            store.close()
    return known
