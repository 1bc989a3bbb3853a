"""What the monitor knows of the stack, from the bus only: every daemon's latest heartbeat
and when it came, orders whose state is unknown, positions and P&L per strategy, recent
risk and reconciliation events, and a day's P&L curve. Rules (``rules.py``), the
Prometheus exporter (``metrics.py``) and the dashboard (``web.py``) all read this one
object; only the monitor's loop writes it.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from mytrading.messaging import wire

EVENTS_KEPT = 200
CURVE_EVERY_S = 5.0
CURVE_POINTS = 24 * 3600 // 5


@dataclass
class Seen:
    status: wire.Status
    at: float  # monotonic seconds of arrival


@dataclass
class View:
    daemons: tuple[str, ...]
    beats: dict[str, Seen] = field(default_factory=dict)
    restarts: collections.deque[tuple[float, str, int]] = field(
        default_factory=lambda: collections.deque(maxlen=EVENTS_KEPT)
    )  # (monotonic, daemon, new pid)
    unknown: dict[str, wire.OrderUpdate] = field(default_factory=dict)  # by order id
    orders: collections.Counter[str] = field(default_factory=collections.Counter)  # by status
    order_status: dict[str, str] = field(default_factory=dict)  # order id -> latest status
    fills: int = 0
    positions: dict[tuple[str, str, str, str, str], wire.PositionSnapshot] = field(
        default_factory=dict
    )
    funds: dict[str, wire.Funds] = field(default_factory=dict)  # by account
    risk_events: collections.deque[tuple[float, wire.RiskEvent]] = field(
        default_factory=lambda: collections.deque(maxlen=EVENTS_KEPT)
    )  # (wall seconds, event)
    recon_events: collections.deque[tuple[float, wire.ReconEvent]] = field(
        default_factory=lambda: collections.deque(maxlen=EVENTS_KEPT)
    )
    curve: collections.deque[tuple[float, float]] = field(
        default_factory=lambda: collections.deque(maxlen=CURVE_POINTS)
    )  # (wall seconds, the stack's net P&L)
    _curve_at: float = 0.0

    # ---------------------------------------------------------------- inputs

    def on_status(self, st: wire.Status, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        before = self.beats.get(st.name)
        if before is not None and before.status.pid != st.pid:
            self.restarts.append((now, st.name, st.pid))
        self.beats[st.name] = Seen(st, now)

    def on_message(self, msg: wire.Msg) -> float | None:
        """Take one message; for an order's first update after it was sent, returns the
        seconds from the market event behind it to its send (for the histogram)."""
        latency = None
        if isinstance(msg, wire.OrderUpdate):
            prev = self.order_status.get(msg.order_id)
            first_answer = prev in (None, "new", "sent") and msg.status not in (
                "new",
                "sent",
                "rejected",
            )
            if first_answer and msg.sent_ns and msg.origin_ns:
                latency = max(0, msg.sent_ns - msg.origin_ns) / 1e9
            if prev != msg.status:
                self.orders[msg.status] += 1
                self.order_status[msg.order_id] = msg.status
            if msg.status == "unknown":
                self.unknown[msg.order_id] = msg
            else:
                self.unknown.pop(msg.order_id, None)
            if msg.status in wire.TERMINAL_STATUSES:
                self.order_status.pop(msg.order_id, None)
        elif isinstance(msg, wire.Fill):
            self.fills += 1
        elif isinstance(msg, wire.PositionSnapshot):
            key = (msg.account, msg.strategy, msg.exchange, msg.symbol, msg.product)
            self.positions[key] = msg
        elif isinstance(msg, wire.Funds):
            self.funds[msg.account] = msg
        elif isinstance(msg, wire.RiskEvent):
            self.risk_events.append((time.time(), msg))
        elif isinstance(msg, wire.ReconEvent):
            self.recon_events.append((time.time(), msg))
        return latency

    def sample_curve(self, wall: float | None = None, market_open: bool = True) -> None:
        """A point of the P&L curve every ``CURVE_EVERY_S`` while the market is open: the
        dashboard draws the points in order (trading time), so a closed market adds none
        (a night would be a flat stretch of 8,000 points)."""
        wall = time.time() if wall is None else wall
        if market_open and wall - self._curve_at >= CURVE_EVERY_S:
            self._curve_at = wall
            self.curve.append((wall, round(self.net_pnl(), 2)))

    # ----------------------------------------------------------------- reads

    def detail(self, daemon: str) -> dict[str, Any]:
        seen = self.beats.get(daemon)
        return seen.status.detail if seen else {}

    def silent_s(self, daemon: str, now: float | None = None) -> float | None:
        """Seconds since its last heartbeat; None if never heard."""
        seen = self.beats.get(daemon)
        if seen is None:
            return None
        return (time.monotonic() if now is None else now) - seen.at

    def strategy_pnl(self) -> dict[str, dict[str, float]]:
        """Risk's figures per book (net of charges) where risk reports them."""
        return self.detail("risk").get("pnl", {})

    def net_pnl(self) -> float:
        pnl = self.strategy_pnl()
        if pnl:
            return float(sum(p.get("net", 0.0) for p in pnl.values()))
        return float(sum(p.realized_pnl + p.unrealized_pnl for p in self.positions.values()))
