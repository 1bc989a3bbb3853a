#!/usr/bin/env python3
"""The stack at a desk's size (issue 54): 100, 500 and 2,000 instruments with 7, 25 and
50 strategies, each size at 2 ticks a second an instrument and at the open's burst (5x).

Each phase starts the whole stack as separate processes (the simulator's OpenAlgo server,
then feed, engine, risk, router, reconciler, signals and monitor) on the live code path:
the feed on the simulator's WebSocket, as against a broker. The simulator quotes option
chains of the four indices and the stocks (with their own chains at the largest size),
``MT_SIM_TICK_HZ`` ticks a second each, late as a broker's feed is (0.25 s and up to
0.25 s of jitter). The strategies are ``bench/strategies/scale_worker.py``, each on its
own share of the instruments (every n-th), keeping an EMA of every tick and an SMA
crossover of the 1-minute bars (they decide and do not send: the order path is
``bench/latency.py``'s figure; with ``--orders`` each crossing of a future (SMA 2 over 3)
goes out as a MARKET order to one lot on its side, through risk, the router and the
simulator's REST as live).

For each phase it prints:

- ticks a second through the feed, and ticks lost (the simulator's drops for a slow
  client, the engine's sequence gaps on the bus, the recorder's drops);
- a tick's arrival (the feed's stamp as it publishes it) to its strategy's ``on_tick``,
  p50 and p99;
- a minute's end to its bar in the strategy, p99 (the simulator's delay included: the
  bar closes on the first tick past the minute or on the clock after the grace);
- with ``--orders``: orders sent a second, and each one's decision to its first fill back
  in the strategy (risk, the router's journal and REST call, the simulator's fill, the
  order update over the WebSocket), p50 and p99;
- each process's CPU share (of one core) and RSS, the stack's CPU in cores (the
  simulator left out: it stands in for the broker), and that CPU per 1,000 ticks a
  second, so its growth with the work can be read.

    .venv/bin/python bench/scale.py                    # all three sizes, both rates (~10 min)
    .venv/bin/python bench/scale.py --sizes 2000 --burst 0
    .venv/bin/python bench/scale.py --sizes 2000 --burst 0 --orders --seconds 360

The steady phase measures for 130 s by default, so a minute's bars after the first fall in
it (each instrument's first bar after the start is partial and waits up to
``FIRST_BAR_WAIT_S``, 5 s, for the broker's whole copy: printed apart);
the burst phase for 30 s (a phase at 5x the rate throughout, not a burst inside a steady
one). The goal at 2,000 instruments and 50 strategies: nothing lost, tick to ``on_tick``
p99 at most 50 ms, bars p99 at most the grace plus 50 ms, the stack under 1.5 cores, the
cost per 1,000 ticks a second within 1.5x of that at 100.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import private_state, pump, stop_all, unlimited_config  # noqa: E402
from feed_throughput import cpu_seconds  # noqa: E402

from mytrading import compiled  # noqa: E402
from mytrading.domain.refdata import load_refdata  # noqa: E402
from mytrading.domain.universe import quoted, universe  # noqa: E402
from mytrading.messaging import wire  # noqa: E402
from mytrading.messaging.bus import DAEMONS, Subscriber  # noqa: E402
from mytrading.settings import load_settings  # noqa: E402
from tests.simhelpers import free_port  # noqa: E402

INDICES = ["NIFTY", "BANKNIFTY", "FINNIFTY", "SENSEX"]
START = "2026-11-20T10:00"  # a Friday mid-morning: every chain quoted, no open or close


@dataclass(frozen=True)
class Size:
    """What the simulator quotes and how many strategies share it."""

    instruments: int  # the size's name; the count quoted is printed beside it
    strategies: int
    underlyings: tuple[str, ...]
    strikes: int  # index strikes either side of ATM
    stock_strikes: int  # -1: the stocks' futures and equity only


SIZES = {
    100: Size(100, 7, ("NIFTY", "BANKNIFTY"), 4, -1),
    500: Size(500, 25, tuple(INDICES), 26, -1),
    2000: Size(2000, 50, tuple(INDICES), 50, 14),
}


def quoted_count(size: Size) -> int:
    """How many instruments the simulator quotes for ``size`` (the universe the feed and
    the strategies subscribe to)."""
    refdata = load_refdata(ROOT / "config")
    names = quoted(refdata, list(size.underlyings), ["*"])
    spots = {n: refdata.underlying(n).sim_spot for n in names}
    day = date.fromisoformat(START[:10])
    return len(universe(refdata, names, day, size.strikes, spots.__getitem__, size.stock_strikes))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def phase(
    size: Size,
    hz: float,
    seconds: float,
    warmup: float,
    keep: bool = False,
    log_level: str = "WARNING",
    orders: bool = False,
) -> dict[str, Any] | None:
    """One run of the stack at ``size`` and ``hz``: the window's figures, or None when the
    daemons did not come up."""
    tmp = Path(tempfile.mkdtemp(prefix="mtscale-"))
    strategies = tmp / "strategies"
    strategies.mkdir()
    shutil.copy(ROOT / "bench" / "strategies" / "scale_worker.py", strategies)
    names = [f"scale_{k:02d}" for k in range(size.strategies)]
    for k, name in enumerate(names):
        (strategies / f"{name}.py").write_text(
            "from mytrading.engine.loader import sibling\n\n"
            'base = sibling(__file__, "scale_worker")\n\n\n'
            f"class Scale{k:02d}(base.ScaleWorker):\n"
            f'    name = "{name}"\n'
        )
    out = tmp / "measured.jsonl"
    common = {
        "underlyings": list(size.underlyings),
        "strikes": size.strikes,
        "stocks": ["*"],
        "stock_strikes": size.stock_strikes,
        "shards": size.strategies,
        "out": str(out),
        "trade": orders,
        # with orders, a crossing after three bars (else twenty: none within the window)
        **({"fast": 2, "slow": 3} if orders else {}),
    }
    params = {name: {**common, "shard": k} for k, name in enumerate(names)}
    rest = free_port()
    env = {
        **os.environ,
        **private_state(tmp),
        "MT_CONFIG_DIR": str(unlimited_config(tmp)),
        "MT_LOG_LEVEL": log_level,
        "MT_BROKER": "openalgo",
        "MT_SIM_SERVER": "true",
        "MT_SIM_FAULTS": "true",  # the harness endpoints (its counts): no fault is asked for
        "MT_SIM_REST_PORT": str(rest),
        "MT_SIM_WS_PORT": str(free_port()),
        "MT_SIM_SPEED": "1",
        "MT_SIM_START": START,
        "MT_SIM_TICK_HZ": str(hz),
        "MT_SIM_UNDERLYINGS": ",".join(size.underlyings),
        "MT_SIM_STRIKES": str(size.strikes),
        "MT_SIM_STOCKS": "*",
        "MT_SIM_STOCK_STRIKES": str(size.stock_strikes),
        "MT_SIM_HISTORY_SESSIONS": "0",  # no warm-up history to fetch for 2,000 symbols
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": ",".join(names),
        "MT_STRATEGY_PARAMS": json.dumps(params),
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),
        "MT_RISK_ANY_HOUR": "true",
        "MT_BUS_BASE_PORT": str(20000 + (os.getpid() * 16) % 40000),
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("MT_")})
    settings = load_settings()
    ctx = zmq.Context()
    sub = Subscriber(ctx, [settings.endpoints().pub(d) for d in DAEMONS], ["sys.status."])
    procs = {"simserver": subprocess.Popen([sys.executable, "-m", "mytrading.sim.server"], env=env)}
    time.sleep(1.0)  # the server listens before the feed asks it for quotes
    for d in DAEMONS:
        procs[d] = subprocess.Popen([sys.executable, "-m", f"mytrading.{d}"], env=env)
    status: dict[str, wire.Status] = {}

    def counts() -> tuple[int, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{rest}/_sim/counts", timeout=5) as r:
            c = json.loads(r.read())
        return int(c.get("ws_market_data_sent", 0)), int(c.get("ws_market_data_dropped", 0))

    try:
        deadline = time.monotonic() + 90
        while not set(DAEMONS) <= set(status) and time.monotonic() < deadline:
            pump(sub, status, 1.0)
        if not set(DAEMONS) <= set(status):
            print(f"  not up: {sorted(set(DAEMONS) - set(status))}", file=sys.stderr)
            return None
        pump(sub, status, warmup)
        (s0, d0), f0, g0 = counts(), status["feed"].detail["ticks"], status["engine"].gaps
        r0 = status["feed"].detail.get("recording_dropped", 0)
        c0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        t0, w0 = time.monotonic(), time.time()
        pump(sub, status, seconds)
        dt, w1 = time.monotonic() - t0, time.time()
        (s1, d1), f1, g1 = counts(), status["feed"].detail["ticks"], status["engine"].gaps
        r1 = status["feed"].detail.get("recording_dropped", 0)
        c1 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        rss = {n: rss_mb(p.pid) for n, p in procs.items()}
        instruments = status["feed"].detail["instruments"]
        coverage = status["feed"].detail.get("coverage", "")
        partial = status["engine"].detail.get("first_bars_partial", 0)
        grace = float(status["feed"].detail.get("bar_grace_s", 2.0))
    finally:
        stop_all(procs.values())
        sub.close()
        ctx.term()
    lat: list[float] = []
    bars: list[float] = []
    firsts: list[float] = []
    fill_ms: list[float] = []
    placed: dict[str, tuple[int, int]] = {}  # strategy -> (orders, fills) at its last flush
    placed0: dict[str, tuple[int, int]] = {}  # ... at its last flush before the window
    subscribed: dict[str, int] = {}
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            subscribed[row["strategy"]] = row["instruments"]
            n = (row.get("orders", 0), row.get("fills", 0))
            if row["at"] < w0:
                placed0[row["strategy"]] = n
            if w0 <= row["at"] <= w1:  # flushed within the window
                lat += row["lat_us"]
                bars += row["bar_s"]
                fill_ms += row.get("fill_ms", [])
                placed[row["strategy"]] = n
            firsts += row["first_s"]  # whenever they came: the start's
    if keep:
        print(f"    kept: {tmp} (the daemons' logs under logs/)")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    cpu = {n: (c1[n] - c0[n]) / dt for n in procs}
    stack = sum(v for n, v in cpu.items() if n != "simserver")
    feed = (f1 - f0) / dt
    return {
        "instruments": instruments,
        "strategies": size.strategies,
        "hz": hz,
        "sent": (s1 - s0) / dt,
        "feed": feed,
        "lost": {"simulator": d1 - d0, "bus": g1 - g0, "recorder": r1 - r0},
        "tick_us": np.percentile(lat, [50, 99]).tolist() if lat else None,
        "ticks_measured": len(lat),
        "ticks_in_window": len(lat) / dt,
        "subscribed": sum(subscribed.values()),
        "reporting": len(subscribed),
        "bar_s": np.percentile(bars, [50, 99]).tolist() if bars else None,
        "bars_measured": len(bars),
        "first_bar_s": np.percentile(firsts, [50, 99]).tolist() if firsts else None,
        "first_bars": len(firsts),
        "first_bars_partial": partial,
        "grace_s": grace,
        "coverage": coverage,
        "cpu": cpu,
        "rss_mb": rss,
        "stack_cores": stack,
        "per_1k": stack / (feed / 1000) if feed else None,
        "orders": sum(n[0] - placed0.get(k, (0, 0))[0] for k, n in placed.items()),
        "fills": sum(n[1] - placed0.get(k, (0, 0))[1] for k, n in placed.items()),
        "fill_ms": np.percentile(fill_ms, [50, 99]).tolist() if fill_ms else None,
        "window_s": dt,
    }


def show(r: dict[str, Any]) -> None:
    lost = r["lost"]
    print(
        f"  {r['instruments']} instruments, {r['strategies']} strategies, {r['hz']:g}/s each:"
        f" simulator sent {r['sent']:,.0f} ticks/s, feed out {r['feed']:,.0f} ticks/s"
    )
    print(
        f"    lost: simulator {lost['simulator']}, bus {lost['bus']}, recorder {lost['recorder']}"
    )
    print(
        f"    strategies reporting {r['reporting']}, subscribed to {r['subscribed']} instruments;"
        f" {r['ticks_in_window']:,.0f} ticks/s reached them; feed coverage {r['coverage']}"
    )
    if r["tick_us"]:
        p50, p99 = r["tick_us"]
        print(
            f"    tick to on_tick: p50 {p50 / 1000:.2f} ms, p99 {p99 / 1000:.2f} ms"
            f" ({r['ticks_measured']:,} ticks)"
        )
    if r["bar_s"]:
        b50, b99 = r["bar_s"]
        print(
            f"    minute's end to its bar: p50 {b50:.3f} s, p99 {b99:.3f} s"
            f" ({r['bars_measured']:,} bars; grace {r['grace_s']:g} s)"
        )
    else:
        print("    no bar in the window but the first ones")
    if r["first_bar_s"]:
        f50, f99 = r["first_bar_s"]
        print(
            f"    the first bar of each instrument after the start: p50 {f50:.3f} s,"
            f" p99 {f99:.3f} s ({r['first_bars']:,} bars, {r['first_bars_partial']:,} of"
            " them handed partial: the broker's copy came too late)"
        )
    if r["orders"]:
        rate = r["orders"] / r["window_s"]
        line = f"    orders: {r['orders']:,} sent in the window ({rate:.1f}/s), {r['fills']:,}"
        line += " filled"
        if r["fill_ms"]:
            f50, f99 = r["fill_ms"]
            line += f"; decision to its first fill p50 {f50:.1f} ms, p99 {f99:.1f} ms"
        print(line)
    print(
        "    CPU (of a core) and RSS: "
        + ", ".join(f"{n} {c:.0%} {r['rss_mb'][n]:.0f} MB" for n, c in r["cpu"].items())
    )
    per = r["per_1k"]
    print(
        f"    the stack: {r['stack_cores']:.2f} cores"
        + (f", {per:.3f} cores per 1,000 ticks/s" if per else "")
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="100,500,2000", help="of 100, 500, 2000")
    ap.add_argument("--hz", type=float, default=2.0, help="ticks a second an instrument")
    ap.add_argument(
        "--burst", type=float, default=5.0, help="the open's burst: x the rate (0: none)"
    )
    ap.add_argument("--seconds", type=float, default=130.0, help="the steady phase's window")
    ap.add_argument("--burst-seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=10.0, help="after every daemon is up")
    ap.add_argument("--json", action="store_true", help="the figures as JSON at the end")
    ap.add_argument("--keep", action="store_true", help="keep each phase's directory (logs)")
    ap.add_argument("--log-level", default="WARNING", help="the daemons' (INFO: every bar's)")
    ap.add_argument("--orders", action="store_true", help="each crossing sent as an order")
    args = ap.parse_args()
    print(f"the stack at scale on {os.cpu_count()} cores, build: {compiled.build()}")
    got: list[dict[str, Any]] = []
    for n in (int(x) for x in args.sizes.split(",")):
        size = SIZES[n]
        print(f"size {n}: {quoted_count(size)} instruments quoted, {size.strategies} strategies")
        rates = [(args.hz, args.seconds)]
        if args.burst:
            rates.append((args.hz * args.burst, args.burst_seconds))
        for hz, seconds in rates:
            r = phase(size, hz, seconds, args.warmup, args.keep, args.log_level, args.orders)
            if r is None:
                return 1
            show(r)
            got.append(r)
    steady = [r for r in got if r["hz"] == args.hz and r["per_1k"]]
    if len(steady) >= 2:
        small, big = steady[0], steady[-1]
        print(
            f"cost per 1,000 ticks/s at {big['instruments']} against {small['instruments']}: "
            f"x{big['per_1k'] / small['per_1k']:.2f} (goal: within x1.5)"
        )
    if args.json:
        print(json.dumps(got))
    return 0


if __name__ == "__main__":
    sys.exit(main())
