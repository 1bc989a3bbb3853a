#!/usr/bin/env python3
"""The floor under bench/latency.py: four processes chained by our bus classes, no daemons.

feed PUB -> engine SUB/PUSH -> risk PULL/PUSH -> router PULL, one message per tick at the
given rate, each stage decoding and re-encoding like the real one but doing no other work
and blocking in ``recv``. Whatever the real stack measures above this is our own cost.

``--every N --journal`` is the like-for-like floor for ``bench/latency.py --every N``: the
engine stage passes on one tick in N (the hops between orders idle, as the stack's are)
and the router stage appends each message to a file and ``fdatasync``s it before taking
its time, as the router's write-ahead journal must before a broker hears of an order.
The issue's floor (every tick passed on, nothing written) is the default.

    .venv/bin/python bench/bare_chain.py [--rate 1000] [--count 10000] [--every 1] [--journal]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mytrading.messaging import wire  # noqa: E402
from mytrading.messaging.bus import Publisher, Puller, Pusher, Subscriber  # noqa: E402


def _tick() -> wire.Tick:
    return wire.Tick(
        exchange="NFO",
        symbol="NIFTY29DEC26FUT",
        ltp=1.0,
        bid=1.0,
        ask=1.0,
        bid_qty=65,
        ask_qty=65,
        volume=0,
    )


def stage(
    role: str, d: str, rate: float, count: int, out: str, every: int = 1, journal: bool = False
) -> None:
    ctx = zmq.Context()
    if role == "feed":
        pub = Publisher(ctx, f"ipc://{d}/pub", "feed", 100_000)
        ready = Puller(ctx, f"ipc://{d}/ready")
        ready.sock.poll(30_000)  # the router says the chain is connected end to end
        period = 1.0 / rate
        nxt = time.perf_counter()
        for _ in range(count + 2000):
            pub.publish("md.t", _tick())
            nxt += period
            if (wait := nxt - time.perf_counter()) > 0:
                time.sleep(wait)
        return
    if role == "engine":
        sub = Subscriber(ctx, [f"ipc://{d}/pub"], ["md.", "sync"])
        push = Pusher(ctx, f"ipc://{d}/p1", "engine", "intent")
        seen = 0
        while True:
            _, m = wire.decode(sub.sock.recv())
            seen += 1
            if seen % every:
                continue
            intent = wire.PlaceIntent(
                intent_id="a",
                strategy="s",
                exchange="NFO",
                symbol="X",
                action="BUY",
                quantity=65,
                origin_ns=m.ts,
            )
            while not push.send(intent):
                time.sleep(0.001)
    if role == "risk":
        pull = Puller(ctx, f"ipc://{d}/p1")
        push = Pusher(ctx, f"ipc://{d}/p2", "risk", "order")
        while True:
            _, m = wire.decode(pull.sock.recv())
            while not push.send(m):
                time.sleep(0.001)
    if role == "router":
        pull = Puller(ctx, f"ipc://{d}/p2")
        ready = Pusher(ctx, f"ipc://{d}/ready", "router", "ready")
        while not ready.send(wire.Command(command="kill_switch", value="off")):
            time.sleep(0.01)
        fd = os.open(f"{d}/journal", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        lat: list[int] = []
        own: list[int] = []  # read to written: the router's own work less its flush
        skip = 2000 // every  # the first two seconds' worth: the chain settling
        while len(lat) < count // every + skip:
            if not pull.sock.poll(10_000):  # a message lost upstream: report what came
                break
            raw = pull.sock.recv()
            t0 = time.perf_counter_ns()
            _, m = wire.decode(raw)
            assert isinstance(m, wire.PlaceIntent)  # the chain's last hop carries intents
            if journal:
                os.write(fd, raw)
                own.append(time.perf_counter_ns() - t0)
                os.fdatasync(fd)
            lat.append(time.time_ns() - m.origin_ns)
        os.close(fd)
        np.save(out, np.array(lat[skip:], dtype=np.int64))
        np.save(out + ".own.npy", np.array(own[skip:], dtype=np.int64))


def run(
    rate: float, count: int, every: int = 1, journal: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Run the chain in four processes (``count`` ticks measured, an intent every
    ``every``-th, each written and flushed with ``journal``); return the latencies and,
    journaled, the router stage's read to written (its decode and write, the flush left
    out), in microseconds."""
    d = tempfile.mkdtemp(prefix="mtchain-")
    out = os.path.join(d, "lat.npy")
    args = [sys.executable, __file__, "--stage"]
    common = ["--dir", d, "--rate", str(rate), "--count", str(count), "--out", out]
    common += ["--every", str(every), *(["--journal"] if journal else [])]
    router = subprocess.Popen([*args, "router", *common])
    others = [subprocess.Popen([*args, r, *common]) for r in ("risk", "engine", "feed")]
    try:
        router.wait(timeout=count / rate + 60)
    finally:
        for p in (*others, router):  # the router too, if it never finished: no stray process
            if p.poll() is None:
                p.kill()
            p.wait()
    try:
        return np.load(out) / 1000.0, np.load(out + ".own.npy") / 1000.0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--every", type=int, default=1, help="an intent per this many ticks")
    ap.add_argument("--journal", action="store_true", help="the router stage fdatasyncs each")
    ap.add_argument("--stage")
    ap.add_argument("--dir")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.stage:
        stage(a.stage, a.dir, a.rate, a.count, a.out, a.every, a.journal)
        return 0
    us, own = run(a.rate, a.count, a.every, a.journal)
    p = np.percentile(us, [50, 99, 99.9])
    shape = f", one in {a.every}" if a.every > 1 else ""
    shape += ", each journaled (write + fdatasync)" if a.journal else ""
    print(
        f"bare 4-process chain at {a.rate:.0f}/s{shape} ({len(us)} measured): "
        f"p50 {p[0]:.1f} us, p99 {p[1]:.1f} us, p99.9 {p[2]:.1f} us"
    )
    if a.journal:
        print(f"the router stage's read to written (decode + write), p50 {np.median(own):.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
