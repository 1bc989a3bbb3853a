#!/usr/bin/env python3
"""Recovery and journal figures (issue 6).

1. **kill -9 to back**, per daemon: the whole stack under supervisord on the simulator
   server with steady order flow (``sma_crossover`` on fast parameters); each daemon is
   killed ``--rounds`` times. "Back" is the first heartbeat of the new process, timed by
   its own send stamp (what every peer sees), from the moment of the kill.
2. **Orders per second through the router with the journal on**: the router alone against
   the simulator server, both rate limits lifted, ``--orders`` MARKET orders pushed at once
   as risk would; the figure is orders over the time until the last one is final. Run with
   the journal flushed (the default) and without flushing, to show what ``fdatasync`` costs.
3. **One account against two**, with every REST answer 20 ms late (a broker's round trip;
   ``MT_SIM_REST_DELAY_MS``): the same orders on one account, then split between two
   simulator servers as two accounts. Each account's calls run on its own lane, in
   parallel, so two accounts should take about half the time. (Without the delay the
   loopback calls are CPU-bound and three processes share two cores: no gain to see.)

    .venv/bin/python bench/recovery.py [--rounds 3] [--orders 500]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mytrading import venue  # noqa: E402
from mytrading.messaging import wire  # noqa: E402
from mytrading.messaging.bus import DAEMONS, Pusher  # noqa: E402
from mytrading.settings import load_settings  # noqa: E402
from tests.procs import Watcher, live_on, run_cli, spawn  # noqa: E402
from tests.simhelpers import KEY, WS_URL, free_port, order, start_server  # noqa: E402

VICTIMS = ("router", "risk", "engine", "feed", "reconciler")


def base_env(tmp: Path, name: str) -> dict[str, str]:
    return {
        "MT_LOG_DIR": str(tmp / name / "logs"),
        "MT_RUN_DIR": f"/tmp/mtrec-{os.getpid()}-{name}",
        "MT_STATE_DIR": str(tmp / name / "state"),
        "MT_RECORD_DB": str(tmp / name / "md.duckdb"),
        "MT_RISK_DB": str(tmp / name / "risk.duckdb"),
        "MT_LOG_LEVEL": "WARNING",
        "MT_SIM_STOCKS": "",  # the indices only, as these figures were first measured
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
    }


def kill_to_back(tmp: Path, rounds: int) -> dict[str, list[float]]:
    env = {
        **base_env(tmp, "stack"),
        "MT_SIM_REST_PORT": str(free_port()),
        "MT_SIM_WS_PORT": str(free_port()),
        "MT_SIM_SPEED": "120",
        "MT_STRATEGIES": "sma_crossover",
        "MT_STRATEGY_PARAMS": json.dumps({"sma_crossover": {"fast": 2, "slow": 3}}),
    }
    os.environ.update(env)
    full = {**os.environ, **env}
    w = Watcher(load_settings(), ("sys.status.",))
    out: dict[str, list[float]] = {v: [] for v in VICTIMS}
    r = run_cli("start", env=full)
    if r.returncode != 0:
        raise SystemExit(f"stack did not start: {r.stdout}{r.stderr}")
    try:
        w.wait(lambda: set(w.status) == set(DAEMONS), 40, "every daemon")
        w.pump(3.0)
        for _ in range(rounds):
            for victim in VICTIMS:
                out[victim].append(w.kill_9(victim, timeout=20))
                w.pump(1.5)  # let it settle before the next kill
    finally:
        run_cli("stop", env=full)
        w.close()
    return out


def router_throughput(
    tmp: Path, n: int, fsync: bool, accounts: int = 1, delay_ms: int = 0
) -> tuple[float, int]:
    name = f"router-{'fsync' if fsync else 'nofsync'}-{accounts}-{delay_ms}"
    env = base_env(tmp, name)
    anchor = str(time.time_ns())
    servers = []
    for k in range(accounts):
        servers.append(
            start_server(
                {"MT_LOG_DIR": env["MT_LOG_DIR"], "MT_STATE_DIR": env["MT_STATE_DIR"] + f"-sim{k}"},
                MT_SIM_ORDER_RATE_LIMIT="1000000",
                MT_SIM_API_RATE_LIMIT="1000000",
                MT_CLOCK_ANCHOR_NS=anchor,
                MT_LOG_LEVEL="WARNING",
                MT_SIM_REST_DELAY_MS=str(delay_ms),
            )
        )
    host = servers[0][1]
    if accounts > 1:
        second = servers[1][1]
        path = tmp / name / "accounts.toml"
        path.write_text(
            f'[accounts.second]\nhost = "{second}"\nws_url = "{WS_URL[second]}"\n'
            'api_key_env = "MT_BENCH_SECOND_KEY"\norders_per_s = 100000\n'
        )
        env.update({"MT_ACCOUNTS_FILE": str(path), "MT_BENCH_SECOND_KEY": KEY})
    env.update(
        {
            "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
            "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
            "MT_SIM_START": "2026-11-20T10:00",
            "MT_SIM_SPEED": "1",
            "MT_CLOCK_ANCHOR_NS": anchor,
            "MT_ROUTER_ORDERS_PER_S": "100000",
            "MT_JOURNAL_FSYNC": "true" if fsync else "false",
        }
    )
    if accounts > 1:
        # paper would fill the second account in the router's process: the two servers
        # stand in for real OpenAlgo accounts, so the run is live, confirmed as start does
        env = live_on(env, host)
    os.environ.update(env)
    settings = load_settings()
    w = Watcher(settings, ("sys.status.", "exec.order."))
    ctx = zmq.Context()
    pusher = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    router = spawn("router", env)
    final: set[str] = set()
    try:
        w.wait(lambda: "router" in w.status, 20, "router")
        orders = []
        for i in range(n):
            o = order(f"t{i}", 65)
            o = msgspec.structs.replace(o, action="SELL") if i % 2 else o
            two = accounts > 1 and i % 4 > 1
            orders.append(msgspec.structs.replace(o, account="second") if two else o)
        w.wait(lambda: pusher.send(orders[0]), 10, "the order pipe")
        t0 = time.monotonic()
        for o in orders[1:]:
            while not pusher.send(o):
                time.sleep(0.001)
        end = time.monotonic() + 120
        while len(final) < n and time.monotonic() < end:
            w.pump(0.05)
            final |= {
                m.order_id
                for _, m in w.seen
                if isinstance(m, wire.OrderUpdate) and m.status in wire.TERMINAL_STATUSES
            }
            w.seen.clear()
        took = time.monotonic() - t0
        # live names its venue's directory at start by the broker account each OpenAlgo
        # reports: the one journal under the venues is this run's
        (path,) = venue.current(settings).dir.parent.glob("*/router/journal.bin")
        journal = path.stat().st_size
    finally:
        pusher.sock.close(0)
        ctx.term()
        for p in (router, *(s for s, _ in servers)):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
        w.close()
    if len(final) < n:
        raise SystemExit(f"only {len(final)} of {n} orders became final")
    return n / took, journal


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3, help="kills per daemon")
    ap.add_argument("--orders", type=int, default=500, help="orders for the throughput run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mtrecovery-"))
    back = kill_to_back(tmp, args.rounds)
    print(f"kill -9 to back (first heartbeat of the new process), {args.rounds} kills each:")
    for victim, xs in back.items():
        print(
            f"  {victim:<11} median {statistics.median(xs):5.2f} s"
            f"  min {min(xs):5.2f} s  max {max(xs):5.2f} s"
        )
    print(f"router to the simulator server, {args.orders} MARKET orders, rate limits lifted:")
    for fsync in (True, False):
        rate, size = router_throughput(tmp, args.orders, fsync)
        label = "journal flushed (fdatasync)" if fsync else "journal not flushed"
        print(f"  {label:<28} {rate:7.1f} orders/s  (journal {size / 1024:.0f} KiB)")
    n = args.orders // 4
    print(f"{n} orders, every REST answer 20 ms late, journal flushed:")
    for accounts in (1, 2):
        rate, _ = router_throughput(tmp, n, True, accounts=accounts, delay_ms=20)
        label = "one account" if accounts == 1 else "two accounts, half each"
        print(f"  {label:<28} {rate:7.1f} orders/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
