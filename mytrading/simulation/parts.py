"""What a daemon's process has besides its core that the simulation gives otherwise:
risk's event store (DuckDB on a writer thread: here a list) and the signals daemon's
door (an HTTP server on its own thread: here the gate itself, handed alerts)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from mytrading.messaging import wire
from mytrading.webhook.gate import Answer, Gate


class MemoryEvents:
    """Risk's events, kept in memory (``risk/events.EventLog``)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, wire.RiskEvent]] = []
        self.markets: list[datetime] = []  # each event's market moment, in step
        self.stored = 0
        self.pending = 0
        self.held = ""

    def add(self, ev: wire.RiskEvent, wall_ns: int, market: datetime) -> None:
        self.events.append((wall_ns, ev))
        self.markets.append(market)
        self.stored += 1

    def close(self) -> None:
        """Nothing to flush."""

    def store(self, path: Path) -> None:
        """Every event into risk's DuckDB file at ``path``, as the process's store keeps
        them (what the day's shadow reads), in the order risk made them."""
        from mytrading.risk.events import EventStore

        def fail(why: str) -> None:
            raise RuntimeError(f"risk events not stored in {path}: {why}")

        store = EventStore(path, fail)
        for (wall_ns, ev), market in zip(self.events, self.markets, strict=True):
            store.add(ev, wall_ns, market)
        store.close(timeout=60.0)


class _Shed:
    def detail(self) -> dict[str, Any]:
        return {}


class SimDoor:
    """The webhook server of the simulation: the gate made once, as the server makes it
    on its thread; alerts are handed to it (``post``) by the simulation."""

    def __init__(self, make_gate: Callable[[], Gate]) -> None:
        self.make_gate = make_gate
        self.gate: Gate | None = None
        self.listening = False
        self.error = ""
        self.shed = _Shed()

    def start(self) -> None:
        self.gate = self.make_gate()
        self.listening = True

    def stop(self) -> None:
        self.listening = False
        if self.gate is not None:
            self.gate.housekeep(force=True)
            self.gate.store.close()

    def post(self, webhook_id: str, body: bytes) -> Answer | None:
        """One request to ``/strategy/webhook/<id>``; None while not listening."""
        if not self.listening or self.gate is None:
            return None
        return self.gate.handle(webhook_id, body, "203.0.113.7")
