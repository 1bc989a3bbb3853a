#!/usr/bin/env python3
"""A resting order's fill at the broker to the strategy's ``on_fill``, over the OpenAlgo
path: the simulator server as the broker (REST + WebSocket, pushing ``order_update`` only
to clients that sent ``subscribe_orders``, as OpenAlgo's proxy does), and the router,
risk, feed and engine as separate processes.

A strategy keeps one LIMIT buy of one lot resting a tick under the best ask of the NIFTY
future; the simulated market trades down to it and the broker fills it. For each fill:
the wall time the simulator booked the trade (``/_sim/trades_wall``) to the wall time
the strategy's ``on_fill`` ran (logged by the strategy). It then sells the lot back at
market and rests the next buy. The order-book poll runs at its default (every 10 s), so
a figure far under that says the push, not the poll, carried the fill.

    .venv/bin/python bench/fill_latency.py [--fills 60]

Goal (issue 24): p50 <= 50 ms, p99 <= 250 ms (before: up to 10 s against the real server).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import stop_all, unlimited_config  # noqa: E402

from tests.procs import spawn  # noqa: E402
from tests.simhelpers import KEY, WS_URL, start_server  # noqa: E402

STRATEGY = '''
import time
from datetime import datetime

from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class Rester(BaseStrategy):
    """One LIMIT buy resting a tick under the ask; on its fill, sold back at market."""

    name = "rester"

    def on_start(self) -> None:
        self.fut = self.near_future("NIFTY")
        self.subscribe_ticks(*self.fut)
        self.set_timer("rest", 0.2)
        self.ask = 0.0
        self.placed = 0.0

    def on_tick(self, tick: wire.Tick) -> None:
        self.ask = tick.ask

    def on_timer(self, name: str, now: datetime) -> None:
        if self.has_open_orders():
            if time.monotonic() - self.placed > 3.0:  # the market went away: follow it
                self.cancel_all()
            return
        if self.position(*self.fut) or self.ask <= 0:
            return
        self.placed = time.monotonic()
        px = self.round_price(*self.fut, self.ask - self.tick_size(*self.fut))
        self.buy(*self.fut, self.lot_size(*self.fut), pricetype="LIMIT", price=px,
                 product="NRML")

    def on_fill(self, fill: wire.Fill) -> None:
        if fill.action == "BUY":
            self.log.info("rested fill", broker_id=fill.broker_order_id,
                          wall_ns=time.time_ns())
            self.sell(*self.fut, fill.quantity, product="NRML")
'''


def measure(tmp: Path, fills: int, timeout_s: float) -> list[float]:
    """Milliseconds from the broker's trade to ``on_fill``, one per rested fill."""
    strategies = tmp / "strats"
    strategies.mkdir(parents=True, exist_ok=True)
    (strategies / "rester.py").write_text(textwrap.dedent(STRATEGY))
    base = {
        "MT_LOG_DIR": str(tmp / "logs"),
        "MT_RUN_DIR": f"/tmp/mtfl-{os.getpid()}",
        "MT_STATE_DIR": str(tmp / "state"),
        "MT_RECORD_DB": str(tmp / "data" / "marketdata.duckdb"),
        "MT_RISK_DB": str(tmp / "data" / "risk.duckdb"),
        "MT_ALERTS_DB": str(tmp / "data" / "alerts.sqlite"),
        "MT_WEBHOOK_DB": str(tmp / "data" / "webhooks.sqlite"),
        "MT_INSTRUMENTS_DB": str(tmp / "data" / "instruments.duckdb"),
        "MT_SIM_STOCKS": "",
    }
    anchor = str(time.time_ns())
    server, host = start_server(
        {**base, "MT_STATE_DIR": str(tmp / "state-sim")},
        MT_SIM_FAULTS="true",
        MT_CLOCK_ANCHOR_NS=anchor,
        MT_SIM_PARTIAL_FILLS="false",  # one trade per fill: its time is the fill's
        MT_SIM_SPEED="10",  # the market moves ten times faster: more fills a minute
    )
    env = {
        **base,
        "MT_CONFIG_DIR": str(unlimited_config(tmp)),
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
        "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "10",
        "MT_CLOCK_ANCHOR_NS": anchor,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "rester",
    }
    procs = [spawn(d, env) for d in ("router", "risk", "feed", "engine")]
    log = tmp / "logs" / "engine.log"
    got: dict[str, int] = {}
    try:
        end = time.monotonic() + timeout_s
        while len(got) < fills and time.monotonic() < end:
            time.sleep(0.5)
            if log.exists():
                for line in log.read_text().splitlines():
                    if '"rested fill"' in line:
                        x = json.loads(line)
                        got[x["broker_id"]] = x["wall_ns"]
        with urllib.request.urlopen(f"{host}/_sim/trades_wall", timeout=5) as r:
            booked = json.loads(r.read())
    finally:
        stop_all(procs)
        stop_all([server])
    return [(ns - booked[oid]) / 1e6 for oid, ns in got.items() if oid in booked]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--fills", type=int, default=60)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds, at most")
    args = ap.parse_args()
    ms = measure(Path(tempfile.mkdtemp(prefix="mtbench-fl-")), args.fills, args.timeout)
    if not ms:
        print("no rested fill seen")
        return 1
    a = np.array(ms)
    p50, p99 = np.percentile(a, 50), np.percentile(a, 99)
    print(f"rested fills: {len(a)}")
    print(
        f"broker trade -> strategy on_fill: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {a.max():.1f} ms, min {a.min():.1f} ms"
    )
    print(f"goal p50 <= 50 ms: {'met' if p50 <= 50 else 'NOT MET'}; "
          f"p99 <= 250 ms: {'met' if p99 <= 250 else 'NOT MET'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
