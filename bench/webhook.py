#!/usr/bin/env python3
"""Webhook alert to order: latency at a steady rate, and the highest sustained rate.

Starts router, risk, feed and signals as separate processes (the simulated broker in the
router's process, so the figure is the stack's part, broker excluded), creates a LONG
webhook strategy mapped to the NIFTY future, and sends TradingView-style alerts over HTTP
(a new connection per request, as TradingView does).

1. **Latency** at ``--rate`` requests/s (default 10) for ``--seconds``: for every alert,
   the request's arrival at the signals server (the gate's stamp, carried as the intent's
   ``origin_ns``) to the router handing the order to the broker adapter (``sent_ns``);
   and, beside it, the HTTP round trip as the client sees it.
2. **Throughput**: paced at rising rates (``--rates``) for ``--step`` seconds each, from
   an asyncio client with up to 256 requests in flight; a step passes when every request
   was answered 200 and the achieved rate is within 5 % of the target. The highest
   passing step is the sustained rate. Every accepted alert is an order too.

    .venv/bin/python bench/webhook.py [--rate 10] [--seconds 20] [--rates 250,500,1000,1500]

Goal (issue 14): p50 <= 5 ms for the stack's part; >= 500 requests/s accepted and queued.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import pump, stop_all, unlimited_config  # noqa: E402

from mytrading.messaging import wire  # noqa: E402
from mytrading.messaging.bus import Subscriber  # noqa: E402
from mytrading.settings import load_settings  # noqa: E402
from mytrading.webhook.model import StrategyFields, SymbolMap  # noqa: E402
from mytrading.webhook.store import WebhookStore  # noqa: E402
from tests.simhelpers import free_port  # noqa: E402

FUT = "NIFTY23NOV26FUT"
BODY = json.dumps({"symbol": "NIFTY1!", "action": "buy", "contracts": "1"}).encode()
DAEMONS = ("router", "risk", "feed", "signals")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=float, default=10.0, help="requests/s for the latency run")
    ap.add_argument("--seconds", type=float, default=20.0, help="latency run duration")
    ap.add_argument("--rates", default="250,500,1000,1500", help="throughput steps, req/s")
    ap.add_argument(
        "--warmup-orders", type=int, default=5, help="first orders after start, shown apart"
    )
    ap.add_argument("--step", type=float, default=4.0, help="seconds per throughput step")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mtbench-wh-"))
    port = free_port()
    env = {
        **os.environ,
        "MT_LOG_DIR": str(tmp / "logs"),
        "MT_RUN_DIR": str(tmp / "run"),
        "MT_STATE_DIR": str(tmp / "state"),
        "MT_RECORD_DB": str(tmp / "data" / "marketdata.duckdb"),
        "MT_RISK_DB": str(tmp / "data" / "risk.duckdb"),
        "MT_WEBHOOK_DB": str(tmp / "data" / "webhooks.sqlite"),
        "MT_LOG_LEVEL": "WARNING",
        "MT_SIM_STOCKS": "",  # the indices only, as these figures were first measured
        "MT_BROKER": "sim",
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "1",
        "MT_SIM_UNDERLYINGS": "NIFTY",
        "MT_SIM_STRIKES": "0",
        "MT_CONFIG_DIR": str(unlimited_config(tmp)),
        "MT_RISK_ANY_HOUR": "true",
        "MT_ROUTER_ORDERS_PER_S": "100000",
        "MT_SIM_CAPITAL": "1e13",
        "MT_SIGNALS_PORT": str(port),
        "MT_WEBHOOK_RATE_PER_MIN": "100000",
        "MT_WEBHOOK_DUP_WINDOW_S": "0",  # the same body each time, each one an alert
        "MT_WEBHOOK_QUEUE": "100000",
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("MT_")})
    settings = load_settings()
    store = WebhookStore(settings.stores.webhook_db)
    # entries all day: the benchmark may run at any hour of the simulated session
    fields = StrategyFields(name="bench", start="09:15", end="15:29", squareoff="15:30")
    _, wid = store.create(fields)
    store.add_symbol("bench", SymbolMap(external="NIFTY1!", exchange="NFO", symbol=FUT))
    store.close()
    url = f"http://127.0.0.1:{port}/strategy/webhook/{wid}"

    ctx = zmq.Context()
    eps = settings.endpoints()
    sub = Subscriber(ctx, [eps.pub(d) for d in DAEMONS], ["exec.order.", "sys.status."])
    procs = [
        subprocess.Popen([sys.executable, "-m", f"mytrading.{d}"], env=env, cwd=ROOT)
        for d in DAEMONS
    ]
    status: dict[str, wire.Status] = {}
    try:
        if not _wait_up(sub, status):
            print(f"daemons not up: {sorted(set(DAEMONS) - set(status))}", file=sys.stderr)
            return 1
        stack_ns, http_ns = _latency(url, sub, status, args.rate, args.seconds)
        first, stack_ns = stack_ns[: args.warmup_orders], stack_ns[args.warmup_orders :]
        pump(sub, status, 1.2)
        own = dict(status)  # the daemons' own figures from the latency run, not the flood
        steps = [(float(r), *_throughput(url, float(r), args.step)) for r in args.rates.split(",")]
        pump(sub, status, 1.0)
    finally:
        stop_all(procs)
        sub.close()
        ctx.term()

    print(f"webhook alert -> order leaving the router ({os.cpu_count()} cores, broker excluded)")
    if len(stack_ns):
        print(f"  latency at {args.rate:g} req/s, {len(stack_ns)} orders after the first few:")
        print(
            f"    arrival at the server -> router hands the order to the broker: "
            f"p50 {np.percentile(stack_ns, 50) / 1e6:.2f} ms, "
            f"p99 {np.percentile(stack_ns, 99) / 1e6:.2f} ms  (goal p50 <= 5 ms)"
        )
        print(
            f"    the first {len(first)} orders after start, apart (not investigated): "
            + ", ".join(f"{x / 1e6:.1f}" for x in first)
            + " ms"
        )
    if len(http_ns):
        print(
            f"    HTTP round trip seen by the client (new connection each): "
            f"p50 {np.percentile(http_ns, 50) / 1e6:.2f} ms, "
            f"p99 {np.percentile(http_ns, 99) / 1e6:.2f} ms"
        )
    best = 0.0
    print("  throughput, paced, 200 = accepted and queued:")
    for target, achieved, ok, bad in steps:
        passed = bad == 0 and achieved >= 0.95 * target
        best = max(best, target) if passed else best
        print(
            f"    target {target:6.0f}/s  achieved {achieved:7.1f}/s  200: {ok:6d}  "
            f"other: {bad:4d}  {'pass' if passed else 'FAIL'}"
        )
    print(f"  highest sustained rate with no error: {best:.0f} requests/s (goal >= 500)")
    print("  each daemon's own figure during the latency run (signals: request in -> taken):")
    for n in ("signals", "risk", "router"):
        st = own.get(n)
        if st:
            print(f"  {n:<8} own figure  p50 {st.lat_p50_us:8.1f} us  p99 {st.lat_p99_us:8.1f} us")
    sig = status.get("signals")
    if sig:
        d = sig.detail
        print(
            f"  signals: answered {d.get('answered')}, intents {d.get('intents')}, "
            f"refused {d.get('refused')}, errors {sig.errors}"
        )
    return 0


def _wait_up(sub: Subscriber, status: dict[str, wire.Status]) -> bool:
    end = time.monotonic() + 40
    while time.monotonic() < end:
        pump(sub, status, 0.2)
        if all(d in status and status[d].state == "running" for d in DAEMONS):
            return bool(status["signals"].detail.get("http", "").startswith("listening"))
    return False


def _latency(
    url: str, sub: Subscriber, status: dict[str, wire.Status], rate: float, seconds: float
) -> tuple[np.ndarray, np.ndarray]:
    stack: list[int] = []
    http: list[int] = []
    seen: set[str] = set()
    n = int(rate * seconds)
    t0 = time.monotonic()
    for k in range(n):
        wait = t0 + k / rate - time.monotonic()
        if wait > 0:
            _sent(pump(sub, status, wait), seen, stack)
        start = time.perf_counter_ns()
        req = urllib.request.Request(url, data=BODY, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()
        http.append(time.perf_counter_ns() - start)
    _sent(pump(sub, status, 1.0), seen, stack)
    return np.array(stack, dtype=float), np.array(http, dtype=float)


def _sent(msgs: list[wire.Msg], seen: set[str], into: list[int]) -> None:
    """The first update of each order that carries the router's hand-off stamp."""
    for m in msgs:
        if isinstance(m, wire.OrderUpdate) and m.sent_ns and m.origin_ns and m.order_id not in seen:
            seen.add(m.order_id)
            into.append(m.sent_ns - m.origin_ns)


def _throughput(url: str, rate: float, seconds: float) -> tuple[float, int, int]:
    """(achieved rate, 200s, other answers) for requests paced at ``rate``."""
    import aiohttp

    async def run() -> tuple[float, int, int]:
        n = int(rate * seconds)
        ok = bad = 0
        gate = asyncio.Semaphore(256)
        conn = aiohttp.TCPConnector(limit=256, force_close=True)  # a new connection each
        async with aiohttp.ClientSession(connector=conn) as session:

            async def one() -> None:
                nonlocal ok, bad
                try:
                    async with session.post(url, data=BODY) as r:
                        await r.read()
                        ok, bad = (ok + 1, bad) if r.status == 200 else (ok, bad + 1)
                except aiohttp.ClientError:
                    bad += 1
                finally:
                    gate.release()

            tasks = []
            t0 = time.monotonic()
            for k in range(n):
                wait = t0 + k / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await gate.acquire()
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
            return n / (time.monotonic() - t0), ok, bad

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
