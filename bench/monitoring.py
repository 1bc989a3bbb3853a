#!/usr/bin/env python3
"""What watching the stack costs, and how fast the chain view draws.

1. **The monitor** (alerts, the Prometheus exporter and the dashboard, one process): the
   demo stack runs under supervisord on the simulator (every example strategy, stocks
   included: the demo's message rates), with a dashboard client reading its event stream
   and Prometheus's scrape of ``/metrics`` every second; the monitor's CPU is measured
   over ``--seconds`` (goal: at most 5 % of one core).
2. **The chain view**: a 41-strike NIFTY chain (40 strikes around ATM) fed by the
   simulated market's ticks, drawn to a terminal-sized buffer as fast as it goes (goal:
   at least 10 redraws a second).

    .venv/bin/python bench/monitoring.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from mytrading.commands.chain import ChainModel, render  # noqa: E402
from mytrading.domain.refdata import IST, load_refdata  # noqa: E402
from mytrading.sim.market import SimMarket  # noqa: E402
from tests.simhelpers import free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def chain_rate(seconds: float = 3.0) -> tuple[float, int]:
    refdata = load_refdata(ROOT / "config")
    day = date(2026, 11, 20)
    now = datetime(2026, 11, 20, 11, 0, tzinfo=IST)
    market = SimMarket(refdata, ["NIFTY"], day, 20, seed=7)
    model = ChainModel.build(refdata, "NIFTY", None, 20, day)
    ns = int(now.timestamp() * 1e9)
    for k in range(3):
        for t in market.step(ns + k * 1_000_000_000):
            model.on_tick(t)
    console = Console(file=io.StringIO(), width=220, force_terminal=True)
    console.print(render(model, now))  # warm: numba compiles the Greeks once
    n, t0 = 0, time.perf_counter()
    k = 3
    while time.perf_counter() - t0 < seconds:
        for t in market.step(ns + k * 1_000_000_000):  # new quotes between redraws
            model.on_tick(t)
        k += 1
        console.file = io.StringIO()
        console.print(render(model, now))
        n += 1
    return n / (time.perf_counter() - t0), len({s for s, _ in model.rows})


def monitor_cost(seconds: float) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="mtmon-"))
    port = free_port()
    env = {
        **os.environ,
        "MT_LOG_DIR": str(tmp / "logs"),
        "MT_RUN_DIR": f"/tmp/mtmon-{os.getpid()}",
        "MT_STATE_DIR": str(tmp / "state"),
        "MT_RECORD_DB": str(tmp / "data" / "marketdata.duckdb"),
        "MT_RISK_DB": str(tmp / "data" / "risk.duckdb"),
        "MT_WEBHOOK_DB": str(tmp / "data" / "webhooks.sqlite"),
        "MT_INSTRUMENTS_DB": str(tmp / "data" / "instruments.duckdb"),
        "MT_ALERTS_DB": str(tmp / "data" / "alerts.sqlite"),
        "MT_SIM_REST_PORT": str(free_port()),
        "MT_SIM_WS_PORT": str(free_port()),
        "MT_SIGNALS_PORT": str(free_port()),
        "MT_MONITOR_PORT": str(port),
        "MT_LOG_LEVEL": "WARNING",
    }
    main = [sys.executable, str(ROOT / "main.py")]
    subprocess.run([*main, "start"], env=env, check=True, capture_output=True, timeout=120)
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    try:
        state: dict = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                state = json.loads(urllib.request.urlopen(base + "/api/state", timeout=2).read())
                if state.get("fills", 0) > 0:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        status = json.loads(
            subprocess.run(
                [*main, "status", "--json"], env=env, capture_output=True, text=True, timeout=60
            ).stdout
        )
        pid = status["daemons"]["monitor"]["pid"]

        def dashboard() -> None:  # a browser's event stream, read as it comes
            with urllib.request.urlopen(base + "/events", timeout=10) as r:
                while not stop.is_set():
                    r.readline()

        def prometheus() -> None:  # a 1 s scrape
            while not stop.wait(1.0):
                urllib.request.urlopen(base + "/metrics", timeout=5).read()

        for fn in (dashboard, prometheus):
            threading.Thread(target=fn, daemon=True).start()
        time.sleep(3.0)
        msgs0 = status["daemons"]["monitor"]["msgs_in"]
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(pid), time.monotonic()
        after = json.loads(urllib.request.urlopen(base + "/api/state", timeout=2).read())
        msgs1 = json.loads(
            subprocess.run(
                [*main, "status", "--json"], env=env, capture_output=True, text=True, timeout=60
            ).stdout
        )["daemons"]["monitor"]["msgs_in"]
        return {
            "cpu_pct": 100 * (c1 - c0) / (t1 - t0),
            "msgs_per_s": (msgs1 - msgs0) / max(1e-9, time.monotonic() - t0),
            "fills": after.get("fills", 0),
            "strategies": len(after.get("strategies", [])),
        }
    finally:
        stop.set()
        subprocess.run([*main, "stop"], env=env, capture_output=True, timeout=120)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    rate, strikes = chain_rate()
    print("chain view (NIFTY, simulated market's ticks, drawn to a 220-column terminal)")
    print(f"  {strikes} strikes: {rate:,.1f} redraws/s (goal >= 10)")
    m = monitor_cost(args.seconds)
    print("monitor: alerts + Prometheus exporter + dashboard (demo stack, 2 cores)")
    print(f"  a dashboard client on /events, /metrics scraped every 1 s, {args.seconds:.0f} s")
    print(
        f"  messages read {m['msgs_per_s']:,.0f}/s, {m['strategies']} strategies, "
        f"{m['fills']} fills so far"
    )
    print(f"  CPU {m['cpu_pct']:.2f} % of one core (goal <= 5 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
