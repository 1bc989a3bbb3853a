"""Crash the router at every step of an order's life (``MT_ROUTER_CRASH_AT``: it dies like
``kill -9``, the journal as the disk has it) and restart it against a real simulator
server. Each time: the order is never sent twice, its fill reaches the bus exactly once,
and an order it cannot match becomes UNKNOWN and halts its strategy."""

from __future__ import annotations

import signal
import subprocess

import pytest
import zmq

from mytrading import wire
from mytrading.bus import Pusher
from mytrading.settings import Settings
from tests.procs import Watcher, spawn
from tests.simhelpers import at_broker, control, order

CRASH_EXIT = 86


def start_router(env: dict[str, str], crash_at: str = "") -> subprocess.Popen[bytes]:
    return spawn("router", {**env, "MT_ROUTER_CRASH_AT": crash_at})


# (crash point, placeorder calls the broker saw, final status, fills on the bus)
CASES = [
    ("new", 0, "rejected", 0),  # durable, never handed over: refused, not sent
    ("sent", 0, "unknown", 0),  # handed over, the call never made: cannot be proved absent
    ("placed", 1, "complete", 1),  # the broker took it, we never heard: found, adopted
    ("open", 1, "complete", 1),  # journaled open, its fill came while we were down
    ("fill", 1, "complete", 1),  # the fill was journaled, not yet published
]


@pytest.mark.integration
@pytest.mark.parametrize(("point", "calls", "final", "fills"), CASES, ids=[c[0] for c in CASES])
def test_router_recovers_from_a_crash_at_every_journal_step(
    sim_broker: tuple[str, dict[str, str]],
    settings: Settings,
    point: str,
    calls: int,
    final: str,
    fills: int,
) -> None:
    host, env = sim_broker
    qty = 65 * (2 + [c[0] for c in CASES].index(point))  # one size per case: easy to find
    w = Watcher(settings, ("sys.status.", "exec."))
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    risk = spawn("risk", env)
    router = start_router(env, point)

    def updates(oid: str) -> list[wire.OrderUpdate]:
        return [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == oid]

    def fills_of(oid: str) -> list[wire.Fill]:
        return [m for _, m in w.seen if isinstance(m, wire.Fill) and m.order_id == oid]

    try:
        before = control(host, "/_sim/counts").get("placeorder", 0)
        w.wait(lambda: as_risk.send(order("a", qty)), 20, "the order pipe")
        assert router.wait(timeout=20) == CRASH_EXIT  # it died at the step
        router = start_router(env)
        w.wait(
            lambda: bool(updates("s.a")) and updates("s.a")[-1].status == final,
            20,
            f"the order to settle as {final}",
        )
        w.pump(1.0)  # polls after the restart: nothing more may arrive
        assert control(host, "/_sim/counts").get("placeorder", 0) - before == calls
        assert len(at_broker(host, qty)) == calls  # never sent twice
        got = fills_of("s.a")
        # one fill per trade (a pushed partial fill is a fill of its own), each published
        # once or, after the crash, again under the same number; never counted twice
        numbers = {f.fill_id: {g.fill_no for g in got if g.fill_id == f.fill_id} for f in got}
        assert all(len(n) == 1 for n in numbers.values()), numbers
        once = {f.fill_id: f.quantity for f in got}
        assert sum(once.values()) == (qty if fills else 0)
        assert (len(once) >= 1) == bool(fills)
        last = updates("s.a")[-1]
        if final == "unknown":
            assert "not found at the broker" in last.reason
            w.wait(
                lambda: w.status["risk"].detail["states"]["strategies"].get("s") == "halted",
                10,
                "risk to halt the strategy",
            )
            log = (settings.log_dir / "router.log").read_text()
            assert "ALERT: order state unknown" in log
        if final == "rejected":
            assert last.reason == "router restarted before sending it; not sent"
        # The restarted router takes new work, once.
        as_risk.send(order("b", qty + 1300))
        w.wait(lambda: bool(fills_of("s.b")), 15, "a new order to fill")
        assert len(at_broker(host, qty + 1300)) == 1
        assert w.status["router"].detail.get("fills_seen_twice", 0) == 0
    finally:
        as_risk.sock.close(0)
        ctx.term()
        for p in (router, risk):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (router, risk):
            p.wait(timeout=10)
        w.close()
