#!/usr/bin/env python3
"""Ticks per second from the simulator's WebSocket, through the feed, onto the bus, into
the engine, with loss checked by sequence numbers.

Starts the simulator server, the feed (OpenAlgo WebSocket client) and the engine (with
``bench/strategies/tick_counter.py`` subscribed to every instrument) as real processes.
The server quotes ``--instruments`` symbols at ``--hz`` each. Over the measured window
it reports what the server sent, what the feed published and what the engine received,
the engine's sequence gaps, and the CPU each process used (where the time goes).

    .venv/bin/python bench/feed_throughput.py [--hz 250] [--strikes 10] [--seconds 15] [--no-record]
    .venv/bin/python bench/feed_throughput.py --stocks '*' --strikes 11 --hz 100   # 208 symbols

The simulator's feed is late as a broker's by default (``MT_SIM_FEED_DELAY_S`` 0.25 s plus
up to ``MT_SIM_FEED_JITTER_S`` 0.25 s), so every tick goes through the feed's watermark
bars and lag measurement; ``--immediate`` turns the delay off (the simulator then sends
each tick at once, as before the late feed existed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import pump as pump_bus  # noqa: E402
from common import stop_all  # noqa: E402

from mytrading.messaging import wire  # noqa: E402
from mytrading.messaging.bus import DAEMONS, Subscriber  # noqa: E402
from mytrading.settings import load_settings  # noqa: E402
from tests.simhelpers import free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hz", type=float, default=250.0, help="quotes per second per instrument")
    ap.add_argument("--strikes", type=int, default=10, help="strikes either side of ATM")
    ap.add_argument("--stocks", default="", help='stocks quoted too: "" none, "*" all 21')
    ap.add_argument("--stock-strikes", type=int, default=-1, help="-1: no stock options")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument(
        "--no-record", action="store_true", help="turn off DuckDB recording in the feed"
    )
    ap.add_argument("--immediate", action="store_true", help="no simulated feed delay")
    args = ap.parse_args()
    extra = {"MT_SIM_FEED_DELAY_S": "0", "MT_SIM_FEED_JITTER_S": "0"} if args.immediate else {}
    r = measure(
        args.hz, args.strikes, args.stocks, args.stock_strikes, args.seconds, args.warmup,
        not args.no_record, extra,
    )  # fmt: skip
    if r is None:
        print("daemons not up", file=sys.stderr)
        return 1
    rec = "off" if args.no_record else "on (DuckDB)"
    print(f"feed throughput: simulator WebSocket -> feed -> bus -> engine ({os.cpu_count()} cores)")
    print(f"  recording    {rec}")
    offered = r["instruments"] * args.hz
    print(
        f"  offered      {r['instruments']} instruments x {args.hz:.0f}/s = {offered:,.0f} ticks/s"
    )
    print(f"  server sent  {r['sent']:10,.0f} ticks/s   (dropped for a slow client {r['dropped']})")
    print(f"  feed out     {r['feed']:10,.0f} ticks/s   (duplicates dropped {r['dups']})")
    print(f"  engine in    {r['engine']:10,.0f} msgs/s    (ticks + ~4 heartbeats/s)")
    print(f"  engine sequence gaps in the window: {r['gaps']}")
    for src, lag in sorted(r["lag"].items()):
        print(
            f"  lag ({src})   p50 {lag['p50_ms']:.0f} ms, p99 {lag['p99_ms']:.0f} ms over the "
            f"last minute (the simulator's MT_SIM_FEED_DELAY_S + JITTER_S and the path)"
        )
    print(f"  late ticks   {r['late']} (left out of bars); feed bars by data {r['by_data']}, "
          f"by clock {r['by_clock']}")  # fmt: skip
    print("  CPU used (share of one core):", ", ".join(f"{n} {c:.0%}" for n, c in r["cpu"].items()))
    return 0


def measure(
    hz: float,
    strikes: int,
    stocks: str = "",
    stock_strikes: int = -1,
    seconds: float = 15.0,
    warmup: float = 5.0,
    record: bool = True,
    extra_env: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Run server, feed and engine; the window's rates (per second), or None if the
    daemons did not come up."""

    tmp = Path(tempfile.mkdtemp(prefix="mtfeed-"))
    rest, ws = free_port(), free_port()
    env = {
        **os.environ,
        "MT_LOG_DIR": str(tmp / "logs"),
        "MT_RUN_DIR": str(tmp / "run"),
        "MT_STATE_DIR": str(tmp / "state"),
        "MT_RECORD_DB": str(tmp / "data" / "marketdata.duckdb"),
        "MT_LOG_LEVEL": "WARNING",
        "MT_BROKER": "openalgo",
        "MT_SIM_SERVER": "true",
        "MT_SIM_FAULTS": "true",
        "MT_SIM_REST_PORT": str(rest),
        "MT_SIM_WS_PORT": str(ws),
        "MT_SIM_SPEED": "1",
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_TICK_HZ": str(hz),
        "MT_SIM_STRIKES": str(strikes),
        "MT_STRATEGIES": "tick_counter",
        "MT_STRATEGIES_DIR": str(ROOT / "bench" / "strategies"),
        "MT_SIM_STOCKS": stocks,
        "MT_SIM_STOCK_STRIKES": str(stock_strikes),
        "MT_STRATEGY_PARAMS": json.dumps(
            {
                "tick_counter": {
                    "strikes": strikes,
                    "stocks": [x for x in stocks.split(",") if x],
                    "stock_strikes": stock_strikes,
                    **(params or {}),
                }
            }
        ),
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),
        "MT_RECORD": "true" if record else "false",
        **(extra_env or {}),
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("MT_")})
    settings = load_settings()
    ctx = zmq.Context()
    sub = Subscriber(ctx, [settings.endpoints().pub(d) for d in DAEMONS], ["sys.status."])
    procs = {"simserver": subprocess.Popen([sys.executable, "-m", "mytrading.sim.server"], env=env)}
    time.sleep(1.0)  # the server must listen before the feed asks it for quotes (not a bus sync)
    for d in ("engine", "feed"):
        procs[d] = subprocess.Popen([sys.executable, "-m", f"mytrading.{d}"], env=env)
    status: dict[str, wire.Status] = {}

    def pump(seconds: float) -> None:
        pump_bus(sub, status, seconds)

    def server_counts() -> tuple[int, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{rest}/_sim/counts", timeout=5) as r:
            c = json.loads(r.read())
        return int(c.get("ws_market_data_sent", 0)), int(c.get("ws_market_data_dropped", 0))

    try:
        pump(warmup)
        if not {"feed", "engine"} <= set(status):
            return None
        (s0, d0), f0, e0, g0 = (
            server_counts(),
            status["feed"].detail["ticks"],
            status["engine"].msgs_in,
            status["engine"].gaps,
        )
        c0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        t0 = time.monotonic()
        pump(seconds)
        dt = time.monotonic() - t0
        (s1, d1), f1, e1 = server_counts(), status["feed"].detail["ticks"], status["engine"].msgs_in
        c1 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        gaps = status["engine"].gaps - g0
        feed = status["feed"].detail
    finally:
        stop_all(procs.values())
        sub.close()
        ctx.term()

    return {
        "instruments": feed["instruments"],
        "sent": (s1 - s0) / dt,
        "dropped": d1 - d0,
        "feed": (f1 - f0) / dt,
        "dups": feed["duplicates_dropped"],
        "engine": (e1 - e0) / dt,
        "gaps": gaps,
        "cpu": {n: (c1[n] - c0[n]) / dt for n in procs},
        "lag": feed.get("lag") or {},
        "late": feed.get("late_ticks", 0),
        "by_clock": feed.get("bars_by_clock", 0),
        "by_data": feed.get("bars_by_data", 0),
    }


if __name__ == "__main__":
    sys.exit(main())
