"""A seed's bad day: which faults, when, for how long, all drawn from the seed.

Every kind the product claims to survive is drawn from, a few of them every day
(``KINDS``, cycled from a shuffle so a day meets many kinds, not one kind many times):

* the bus: frames lost, duplicated, delayed, reordered; the router not answering;
* a daemon killed at any moment (kill -9) and started again from what it keeps on disk;
* the broker: a reply lost after placing, 5xx, 429, refused connections, garbled books,
  order updates late or missing, a session that expires, a clock off ours either way;
* the feed: late, jittered, reordered, stalled, dropped (a reconnect and a backfill);
* the disk under the router's journal filling up.

The operator's moments (pause, stop, the kill switch, a parameter change) are drawn by
``simulation/operator.py``. Each fault is a window: switched on at its start, off at its
end; each is traced and counted by kind.
"""

from __future__ import annotations

import collections
import errno
import functools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import msgspec

from mytrading.messaging import wire

# the ``SimStack`` (``simulation/stack.py``) that composes this part: typed loosely,
# so that no part imports the module that imports it
Sim = Any

if TYPE_CHECKING:
    from mytrading.simulation.venue import SimAccount

KINDS = (
    "bus_lose",
    "bus_dup",
    "bus_delay",
    "bus_reorder",
    "rpc_lost",
    "kill",
    "broker_lose_reply",
    "broker_5xx",
    "broker_429",
    "broker_refuse",
    "broker_garble",
    "updates_late",
    "updates_lost",
    "session_expired",
    "feed_late",
    "feed_jitter",
    "feed_reorder",
    "feed_stall",
    "feed_drop",
    "disk_full",
    "kill",
    "kill_in_call",
    "crash_at",
)
# the router's steps of an order's life where ``crash_at`` kills it (router/daemon.py's
# ``_crash``): read and not yet journaled, queued, handed to its lane, placed at the
# broker and not yet heard, journaled open, a fill journaled and not yet published
CRASH_POINTS = ("new", "queued", "sent", "placed", "open", "fill")
# faults that need a person (the product says so, and waits): none of these by design
KILLABLE = ("router", "risk", "engine", "feed", "reconciler", "signals")


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float  # wall seconds after the open
    for_s: float
    detail: str = ""  # a daemon, a probability


class FeedFaults:
    """How the market data reaches the feed now: late, jittered, reordered, stalled."""

    def __init__(self, stack: Sim, rng: random.Random) -> None:
        self.stack = stack
        self.rng = rng
        self.late_s = 0.0
        self.jitter_s = 0.0
        self.reorder = 0.0
        self.stall_until_ns = 0
        self.offset_ns = 0  # the broker's clock less ours

    def deliver(self, account: SimAccount, ticks: list[wire.Tick]) -> None:
        if self.offset_ns:
            off = self.offset_ns
            ticks = [msgspec.structs.replace(t, exch_ns=t.exch_ns + off) for t in ticks]
        now = self.stack.world.now_ns
        extra = self.late_s + (self.rng.random() * self.jitter_s if self.jitter_s else 0.0)
        if self.stall_until_ns > now:
            extra += (self.stall_until_ns - now) / 1e9
        for conn in list(account.connections):
            if not conn.server.authed or conn.server.orders:
                continue  # the router's order-update session takes no market data
            if self.reorder:
                late = [t for t in ticks if self.rng.random() < self.reorder]
                on_time = [t for t in ticks if t not in late]
                self.stack.push_ticks(conn, on_time, extra)
                if late:  # sent by the broker after the next step's: out of order (one
                    # connection keeps its order: they must be sent later, not slower)
                    self.stack.world.after(
                        self.stack.options.step_s * 1.5,
                        functools.partial(self._send_late, conn, late, extra),
                    )
            else:
                self.stack.push_ticks(conn, ticks, extra)

    def _send_late(self, conn: Any, ticks: list[wire.Tick], extra: float) -> None:
        if conn.open:
            self.stack.push_ticks(conn, ticks, extra)


class FaultSchedule:
    """The seed's faults, drawn at the start and switched on and off by the world."""

    def __init__(self, stack: Sim, rng: random.Random, n: int, day_s: float) -> None:
        self.stack = stack
        self.rng = rng
        self.day_s = day_s
        self.injected: collections.Counter[str] = collections.Counter()
        self.faults: list[Fault] = []
        self.person_needed: list[str] = []  # what an injected fault leaves for a person
        kinds = list(KINDS)
        rng.shuffle(kinds)
        for i in range(n):
            kind = kinds[i % len(kinds)]
            at = rng.uniform(0.03, 0.92) * day_s
            self.faults.append(self._draw(kind, at))
        offset = rng.choice((0.0, 0.0, -60.0, 60.0, -5.0, 5.0))  # the broker's clock
        if offset:
            self.faults.append(Fault("clock_offset", 0.0, day_s, str(offset)))
        self.faults.sort(key=lambda f: f.at_s)

    def _draw(self, kind: str, at: float) -> Fault:
        r = self.rng
        d = self.day_s  # windows as shares of the day: a short day's are as long as a long one's
        if kind == "kill":
            return Fault(kind, at, r.uniform(0.2, 4.0), r.choice(KILLABLE))
        if kind == "kill_in_call":  # the router killed while a placement is at the broker
            return Fault(kind, at, r.uniform(0.2, 2.0), "router")
        if kind == "crash_at":  # the router dies at the next order to reach this step
            return Fault(kind, at, r.uniform(0.2, 2.0), r.choice(CRASH_POINTS))
        if kind in ("bus_lose", "bus_dup"):
            return Fault(kind, at, r.uniform(0.02, 0.08) * d, f"{r.uniform(0.02, 0.2):.3f}")
        if kind in ("bus_delay", "bus_reorder"):
            return Fault(kind, at, r.uniform(0.02, 0.08) * d, f"{r.uniform(0.05, 0.8):.3f}")
        if kind == "rpc_lost":
            return Fault(kind, at, r.uniform(0.01, 0.05) * d, f"{r.uniform(0.3, 1.0):.3f}")
        if kind.startswith("broker_") or kind == "updates_lost":
            return Fault(kind, at, r.uniform(0.02, 0.1) * d, f"{r.uniform(0.2, 0.7):.3f}")
        if kind == "updates_late":
            return Fault(kind, at, r.uniform(0.02, 0.1) * d, f"{r.uniform(0.5, 6.0):.3f}")
        if kind == "session_expired":
            return Fault(kind, at, r.uniform(0.02, 0.08) * d)
        if kind in ("feed_late", "feed_jitter"):
            return Fault(kind, at, r.uniform(0.03, 0.12) * d, f"{r.uniform(0.05, 1.5):.3f}")
        if kind == "feed_reorder":
            return Fault(kind, at, r.uniform(0.03, 0.12) * d, f"{r.uniform(0.05, 0.3):.3f}")
        if kind == "feed_stall":
            return Fault(kind, at, r.uniform(0.01, 0.05) * d)
        if kind == "feed_drop":
            return Fault(kind, at, r.uniform(0.5, 3))
        if kind == "disk_full":
            return Fault(kind, at, r.uniform(0.01, 0.06) * d)
        raise ValueError(kind)

    def arm(self) -> None:
        """Each fault on the world's heap, at its time."""
        world = self.stack.world
        for f in self.faults:
            world.after(f.at_s, functools.partial(self._on, f))
            if f.kind not in ("kill", "kill_in_call", "crash_at"):
                world.after(f.at_s + f.for_s, functools.partial(self._off, f))
        # a kill in a call waits for the next placement: none by the faults' end, none at
        # all (the simulator's seed 160 at 240x: armed at 15:00, it met a placement at
        # 15:22, and the order it left unknown had no time to be found absent)
        world.after(self.day_s, self._disarm)

    def _disarm(self) -> None:
        if self.stack.kill_at_next_place:
            self.stack.kill_at_next_place = 0.0
            self.stack.trace_event("fault", "off kill_in_call (no placement met it)")
        if self.stack.crash_armed is not None:
            self.stack.arm_crash("", 0.0)
            self.stack.trace_event("fault", "off crash_at (no order met it)")

    # ------------------------------------------------------------------ on and off

    def _on(self, f: Fault) -> None:
        s = self.stack
        self.injected[f.kind] += 1
        s.trace_event("fault", f"on {f.kind} {f.detail} for {f.for_s:.2f}s")
        p = float(f.detail) if f.detail and not f.kind.startswith(("kill", "crash")) else 0.0
        bus, broker, feed = s.bus.faults, s.main.faults, s.feed_faults
        match f.kind:
            case "kill":
                s.restart_daemon(f.detail, f.for_s)
            case "kill_in_call":  # at the next placement the broker takes, before its answer
                s.kill_at_next_place = f.for_s
            case "crash_at":  # the next order to reach the step kills the router there
                s.arm_crash(f.detail, f.for_s)
            case "bus_lose":
                bus.lose = p
            case "bus_dup":
                bus.dup = p
            case "bus_delay":
                bus.delay_s = p
            case "bus_reorder":
                bus.reorder_s = p
            case "rpc_lost":
                bus.rpc_lost = p
            case "broker_lose_reply":
                broker.lose_place = p
                broker.lose_next = 1
            case "broker_5xx":
                broker.error_5xx = p
            case "broker_429":
                broker.throttle = p / 4  # every call may meet it: fewer
            case "broker_refuse":
                broker.refuse = p
            case "broker_garble":
                broker.garble = p
            case "updates_late":
                broker.updates_late_s = p
            case "updates_lost":
                broker.updates_lost = p
            case "session_expired":
                s.main.server.session_expired = True
            case "clock_offset":
                broker.plan = replace(broker.plan, clock_offset_s=p)
                feed.offset_ns = int(p * 1e9)
            case "feed_late":
                feed.late_s = p
            case "feed_jitter":
                feed.jitter_s = p
            case "feed_reorder":
                feed.reorder = p
            case "feed_stall":
                feed.stall_until_ns = s.world.now_ns + int(f.for_s * 1e9)
            case "feed_drop":
                s.main.ws_refused = True
                for c in list(s.main.connections):
                    if not c.server.orders:  # the feed's session; the router's stays
                        c.drop("the server dropped the connection")
            case "disk_full":
                s.disk_full = True

    def _off(self, f: Fault) -> None:
        s = self.stack
        s.trace_event("fault", f"off {f.kind}")
        bus, broker, feed = s.bus.faults, s.main.faults, s.feed_faults
        match f.kind:
            case "bus_lose":
                bus.lose = 0.0
            case "bus_dup":
                bus.dup = 0.0
            case "bus_delay":
                bus.delay_s = 0.0
            case "bus_reorder":
                bus.reorder_s = 0.0
            case "rpc_lost":
                bus.rpc_lost = 0.0
            case "broker_lose_reply":
                broker.lose_place = 0.0
            case "broker_5xx":
                broker.error_5xx = 0.0
            case "broker_429":
                broker.throttle = 0.0
            case "broker_refuse":
                broker.refuse = 0.0
            case "broker_garble":
                broker.garble = 0.0
            case "updates_late":
                broker.updates_late_s = 0.0
            case "updates_lost":
                broker.updates_lost = 0.0
            case "session_expired":
                s.main.server.session_expired = False
            case "feed_late":
                feed.late_s = 0.0
            case "feed_jitter":
                feed.jitter_s = 0.0
            case "feed_reorder":
                feed.reorder = 0.0
            case "feed_drop":
                s.main.ws_refused = False
            case "disk_full":
                s.disk_full = False


def full_disk_write(stack: Sim) -> Callable[[int, bytes], int]:
    """The router journal's write on the simulated disk: refused while it is full."""

    def write(fd: int, data: bytes) -> int:
        if stack.disk_full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)

    return write
