#!/usr/bin/env python3
"""Tick-to-order latency through the real daemons.

Starts feed, engine, risk, router and reconciler as separate processes on ipc sockets,
drives the simulated feed at ``--rate`` ticks per second (NIFTY spot and its future),
and runs ``bench/strategies/tick_echo.py``, which answers every ``--every``-th tick with a
MARKET order. For each order the router stamps ``sent_ns`` just before handing it to the
broker adapter; the tick carries the ``ts`` stamped as it left the feed. The figure is
``sent_ns - tick.ts``: feed PUB -> engine -> risk -> router, three hops and the work in each.
Each daemon's own figure: engine and risk, the hop into them (message ``ts`` to receipt);
the router, reading the order off its pipe to handing it to the broker, the journal's
flush included (its flush alone is printed too). The broker is the simulated venue in the
router's process (``MT_BROKER=sim``), reached through the same OpenAlgo adapter as live.

    .venv/bin/python bench/latency.py [--rate 1000] [--every 1] [--seconds 20]
    .venv/bin/python bench/latency.py --broker openalgo --every 100

``--broker openalgo`` measures the live code path instead: the simulator server in its
own process, the feed on its WebSocket, the router's OpenAlgo lane with its worker thread
and REST over HTTP (the figure still ends when the router hands the order to the call).

``--bus tcp-curve`` runs the same chain twice in one invocation, on ipc and then on tcp
with CURVE (encrypted, every connection authenticated by the ZAP handler: the bus between
hosts, docs/security.md), and prints the CURVE p50 against ipc's (``--bus tcp``: tcp
without CURVE, loopback only, for comparison).

It also runs bench/bare_chain.py, the same four-process chain with no daemon logic, so
every run reports the floor of this machine at that moment beside the stack's figure:
the issue's floor (an intent for every tick, nothing written) and, with ``--every`` above
1, the like-for-like one (an intent every ``--every`` ticks, so the hops idle between
orders as the stack's do, and each journaled with a write and an ``fdatasync`` before it
counts, as the router's write-ahead journal must be). The second says how much of the
stack's figure is this machine's cold path and disk, the rest being our own work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import stop_all, unlimited_config  # noqa: E402

from mytrading.messaging import wire  # noqa: E402
from mytrading.messaging.bus import Subscriber  # noqa: E402
from mytrading.messaging.curve import TOOLS, init_keys, secure_bus  # noqa: E402
from mytrading.settings import load_settings  # noqa: E402
from tests.simhelpers import free_port  # noqa: E402

STARTED = ("router", "risk", "reconciler", "engine", "feed")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=float, default=1000.0, help="ticks per second from the feed")
    ap.add_argument("--every", type=int, default=1, help="one order per this many ticks")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured duration")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds discarded at the start")
    ap.add_argument(
        "--log-level", default="WARNING", help="daemon log level (INFO logs every order)"
    )
    ap.add_argument("--no-baseline", action="store_true", help="skip the bare-chain floor")
    ap.add_argument(
        "--broker",
        choices=("sim", "openalgo"),
        default="sim",
        help="sim: the venue in the router's process; openalgo: the simulator server over HTTP",
    )
    ap.add_argument(
        "--bus",
        choices=("ipc", "tcp", "tcp-curve"),
        default="ipc",
        help="tcp / tcp-curve: run on ipc first, then on that bus, and compare the two",
    )
    args = ap.parse_args()
    buses = ["ipc"] if args.bus == "ipc" else ["ipc", args.bus]
    results = {}
    for bus in buses:
        got = run_chain(args, bus)
        if got is None:
            return 1
        results[bus] = got
        report(args, bus, *got)
    if len(buses) == 2:
        p50 = {b: float(np.percentile(results[b][0], 50)) for b in buses}
        print(
            f"{args.bus} against ipc, same run: p50 {p50[args.bus]:.1f} us vs {p50['ipc']:.1f} us"
            f" = x{p50[args.bus] / p50['ipc']:.2f} (the goal: within x1.3)"
        )
    if not args.no_baseline:
        import bare_chain

        us = results["ipc"][0]
        base, _ = bare_chain.run(args.rate, 10_000)
        b = np.percentile(base, [50, 99, 99.9])
        ours = np.percentile(us, [50, 99, 99.9])
        print(f"bare 4-process chain on this machine now, {args.rate:.0f}/s (bench/bare_chain.py):")
        print(f"  p50 {b[0]:8.1f} us   p99 {b[1]:8.1f} us   p99.9 {b[2]:8.1f} us")
        print(f"  ipc stack / bare:  p50 x{ours[0] / b[0]:.2f}  p99 x{ours[1] / b[1]:.2f}")
        if args.every > 1:
            like, own = bare_chain.run(args.rate, 200 * args.every, args.every, journal=True)
            f = np.percentile(like, [50, 99, 99.9])
            print(
                f"the same chain like for like: one intent in {args.every}, each journaled"
                f" (write + fdatasync) before it counts ({len(like)} measured):"
            )
            print(f"  p50 {f[0]:8.1f} us   p99 {f[1]:8.1f} us   p99.9 {f[2]:8.1f} us")
            print(
                f"  ipc stack / like for like:  p50 x{ours[0] / f[0]:.2f}"
                f"  p99 x{ours[1] / f[1]:.2f}   (the stack's own work over it,"
                f" p50: {ours[0] - f[0]:.0f} us)"
            )
            print(
                "  its router stage's read to written (decode + write, the flush left out)"
                f" p50 {np.median(own):.1f} us: this machine's floor under the router's"
                " own figure less its flush"
            )
        warm, idle = idle_penalty()
        print(
            "the router's journal write of one order (record, frame, write), in this process:"
            f" warm p50 {warm:.1f} us, after 100 ms idle p50 {idle:.1f} us (x{idle / warm:.1f}:"
            " an order every 100 ticks finds the CPU cold)"
        )
    return 0


def idle_penalty(n: int = 30) -> tuple[float, float]:
    """The same small piece of the router's work, timed back to back and after 100 ms of
    sleep (p50s, microseconds): one order's ``sent`` record through ``OrderTable.set``
    into a real journal, flushed after (the flush not timed). On a machine whose CPU and
    caches cool between orders, the router's own figure at one order per 100 ms is this
    ratio times its warm cost."""
    from mytrading.orders.state import S
    from mytrading.router.journal import Journal
    from mytrading.router.recovery import carried
    from mytrading.router.table import OrderTable
    from tests.simhelpers import order

    with tempfile.TemporaryDirectory() as d:
        journal = Journal(Path(d) / "journal.bin")
        journal.open("2026-11-25", carried)
        table = OrderTable(journal)
        out: dict[bool, list[float]] = {False: [], True: []}
        for k in range(2 * n):
            idle = k >= n  # back to back first, then each after a pause
            jo = table.add(order(f"i{k}", 65))
            if idle:
                time.sleep(0.1)
            t0 = time.perf_counter_ns()
            table.set(jo, S.SENT, sync=False, attempt=1, sent_ns=1)
            out[idle].append((time.perf_counter_ns() - t0) / 1000)
            journal.sync()
        journal.close()
    return float(np.median(out[False])), float(np.median(out[True]))


def run_chain(
    args: argparse.Namespace, bus: str
) -> tuple[np.ndarray, dict[str, wire.Status], list[int]] | None:
    """One run of the chain on ``bus``: the latencies (us), the last statuses, the queue."""
    tmp = Path(tempfile.mkdtemp(prefix="mtbench-"))
    env = {
        **os.environ,
        "MT_LOG_DIR": str(tmp / "logs"),
        "MT_RUN_DIR": str(tmp / "run"),
        "MT_STATE_DIR": str(tmp / "state"),
        "MT_RECORD_DB": str(tmp / "data" / "marketdata.duckdb"),
        "MT_LOG_LEVEL": args.log_level,
        "MT_SIM_SPEED": "1",
        "MT_SIM_STOCKS": "",  # the indices only, as these figures were first measured
        "MT_BROKER": "sim",  # the bus path alone; HTTP to a broker is another figure
        "MT_SIM_UNDERLYINGS": "NIFTY",
        "MT_SIM_STRIKES": "0",
        "MT_SIM_TICK_HZ": str(args.rate / 2),  # two instruments
        "MT_STRATEGIES_DIR": str(ROOT / "bench" / "strategies"),
        "MT_STRATEGIES": "tick_echo",
        "MT_STRATEGY_PARAMS": json.dumps({"tick_echo": {"every": args.every}}),
        "MT_CONFIG_DIR": str(unlimited_config(tmp)),  # limits that cannot bind
        "MT_RISK_DB": str(tmp / "data" / "risk.duckdb"),
        "MT_RISK_ANY_HOUR": "true",
        "MT_ROUTER_ORDERS_PER_S": "100000",  # the broker limit is not what is measured
        "MT_SIM_CAPITAL": "1e13",  # margin for a position that grows by a lot each order
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),
        "MT_BUS_TRANSPORT": "ipc" if bus == "ipc" else "tcp",
        "MT_BUS_CURVE": "" if bus != "tcp" else "false",
        "MT_BUS_BASE_PORT": str(20000 + (os.getpid() * 16) % 40000),
        "MT_BUS_KEYS_DIR": str(tmp / "keys"),
    }
    if bus == "tcp-curve":
        init_keys(tmp / "keys")
    if args.broker == "openalgo":
        env.update(
            MT_BROKER="openalgo",
            MT_SIM_SERVER="true",
            MT_SIM_REST_PORT=str(free_port()),
            MT_SIM_WS_PORT=str(free_port()),
            MT_SIM_START="2026-11-20T10:00",
            # the server's limits lifted, like the router's: the limits are not measured
            MT_SIM_ORDER_RATE_LIMIT="100000",
            MT_SIM_SMART_RATE_LIMIT="100000",
            MT_SIM_API_RATE_LIMIT="100000",
        )
    os.environ.update({k: v for k, v in env.items() if k.startswith("MT_")})
    for k in [k for k, v in env.items() if k.startswith("MT_") and v == ""]:
        os.environ.pop(k, None)
        env.pop(k)
    settings = load_settings()
    secure_bus(settings, TOOLS, lambda *_a, **_k: None)
    ctx = zmq.Context()
    sub = Subscriber(
        ctx, [settings.endpoints().pub(d) for d in STARTED], ["exec.order.", "sys.status."]
    )
    procs = []
    if args.broker == "openalgo":
        procs.append(
            subprocess.Popen([sys.executable, "-m", "mytrading.sim.server"], env=env, cwd=ROOT)
        )
        time.sleep(1.0)  # the server must listen before the feed asks it for quotes
    procs += [
        subprocess.Popen([sys.executable, "-m", f"mytrading.{d}"], env=env, cwd=ROOT)
        for d in STARTED
    ]
    samples: list[int] = []
    queued: list[int] = []  # orders waiting in the router, once a second
    status: dict[str, wire.Status] = {}
    try:
        t_end = time.monotonic() + 30
        while not set(STARTED) <= set(status) and time.monotonic() < t_end:
            if sub.sock.poll(200):
                _, m = sub.recv()
                if isinstance(m, wire.Status):
                    status[m.name] = m
        if not set(STARTED) <= set(status):
            print(f"daemons not up: {sorted(set(STARTED) - set(status))}", file=sys.stderr)
            return None
        measure_from = time.monotonic() + args.warmup
        stop_at = measure_from + args.seconds
        while (now := time.monotonic()) < stop_at:
            if not sub.sock.poll(int((stop_at - now) * 1000) + 1):
                continue
            _, m = sub.recv()
            if isinstance(m, wire.Status):
                status[m.name] = m
                if m.name == "router" and time.monotonic() >= measure_from:
                    queued.append(int(m.detail.get("queued", 0)))
            elif (
                isinstance(m, wire.OrderUpdate)
                and m.status == "open"
                and m.origin_ns
                and time.monotonic() >= measure_from
            ):
                samples.append(m.sent_ns - m.origin_ns)
    finally:
        stop_all(procs)
        sub.close()
        ctx.term()
    if not samples:
        print("no orders measured", file=sys.stderr)
        return None
    return np.array(samples, dtype=float) / 1000.0, status, queued


def report(
    args: argparse.Namespace,
    bus: str,
    us: np.ndarray,
    status: dict[str, wire.Status],
    queued: list[int],
) -> None:
    feed = status.get("feed")
    print(
        f"tick-to-order latency, feed -> engine -> risk -> router ({bus}, {os.cpu_count()} "
        f"cores, broker {args.broker})"
    )
    print(f"  feed rate        {args.rate:.0f} ticks/s, one order per {args.every} tick(s)")
    print(
        f"  orders measured  {len(us)} over {args.seconds:.0f} s"
        f" (after {args.warmup:.0f} s warm-up)"
    )
    print(f"  p50    {np.percentile(us, 50):8.1f} us")
    print(f"  p99    {np.percentile(us, 99):8.1f} us")
    print(f"  p99.9  {np.percentile(us, 99.9):8.1f} us")
    print(f"  max    {us.max():8.1f} us")
    for n in ("engine", "risk", "router"):
        st = status.get(n)
        if st:
            print(f"  {n:<7} own figure  p50 {st.lat_p50_us:7.1f} us  p99 {st.lat_p99_us:7.1f} us")
    for n, what in (("engine", "a tick read to its intent sent"),
                    ("risk", "an intent read to its order sent")):  # fmt: skip
        st = status.get(n)
        work = st.detail.get("own_work_p50_us") if st else None
        if work is not None:
            print(f"  {n:<7} own work    p50 {work:7.1f} us  ({what})")
    router = status.get("router")
    if router is not None:
        print(
            "  router's journal flush (fdatasync) p50"
            f" {router.detail.get('journal_flush_p50_us', 0.0):7.1f} us (inside its own figure)"
        )
        print(
            "  router's own figure less its order's flush, per order, p50"
            f" {router.detail.get('work_p50_us', 0.0):7.1f} us   (goal <= 50: issue 54)"
        )
        split = router.detail.get("work_split_p50_us") or {}
        if split:
            print(
                "    stage by stage, p50 us: " + "  ".join(f"{k} {v:.1f}" for k, v in split.items())
            )
    if queued:
        print(f"  router queue, once a second: {queued} (a growing queue would not keep up)")
    gaps = {n: s.gaps for n, s in status.items() if s.gaps}
    errs = {n: s.errors for n, s in status.items() if s.errors}
    print(
        f"  gaps {gaps or 0}, errors {errs or 0},"
        f" feed ticks {feed.detail.get('ticks') if feed else '?'}"
    )


if __name__ == "__main__":
    sys.exit(main())
