"""Crash the router at steps of an order's life (``MT_ROUTER_CRASH_AT``: it dies by
``os._exit``, the journal as the disk has it) and restart it as a process against a real
simulator server: the wiring of a real crash (a real journal file read back, real sockets).
Each time: the order is never sent twice, its fill reaches the bus exactly once, and an
order it cannot match becomes UNKNOWN and halts its strategy. Every step (``new``,
``queued``, ``sent``, ``placed``, ``open``, ``fill``) is crashed on the simulator, in one
seed each (``tests/simulation/test_scenarios.py``) and as the ``crash_at`` fault of every
seed's day; here the two whose recovery reads the most from disk. An order that waits
(rate limits) is journaled ``new`` at the end of the read; a restart refuses it, never sent
(``test_an_order_journaled_waiting_is_refused_after_a_restart``)."""

from __future__ import annotations

import subprocess

import pytest
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher
from mytrading.settings import Settings
from tests.procs import Watcher, spawn, stop
from tests.simhelpers import FUT, at_broker, control, order

CRASH_EXIT = 86


def start_router(env: dict[str, str], crash_at: str = "") -> subprocess.Popen[bytes]:
    return spawn("router", {**env, "MT_ROUTER_CRASH_AT": crash_at})


# (crash point, placeorder calls the broker saw, final status, fills on the bus)
CASES = [
    ("sent", 0, "unknown", 0),  # handed over, the call never made: cannot be proved absent
    ("fill", 1, "complete", 1),  # the fill was journaled, not yet published
]


@pytest.mark.integration
@pytest.mark.parametrize(("point", "calls", "final", "fills"), CASES, ids=[c[0] for c in CASES])
def test_router_recovers_from_a_real_crash_at_a_journal_step(
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
        if point == "new":  # what risk's outbox does on the router's restart
            w.wait(lambda: as_risk.send(order("a", qty)), 20, "the restarted router's pipe")
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
        # The restarted router takes new work, once.
        as_risk.send(order("b", qty + 1300))
        w.wait(lambda: bool(fills_of("s.b")), 15, "a new order to fill")
        assert len(at_broker(host, qty + 1300)) == 1
        assert w.status["router"].detail.get("fills_seen_twice", 0) == 0
    finally:
        as_risk.sock.close(0)
        ctx.term()
        stop([router, risk])
        w.close()


@pytest.mark.integration
def test_an_order_journaled_waiting_is_refused_after_a_restart(
    sim_broker: tuple[str, dict[str, str]], settings: Settings
) -> None:
    """One order every 5 s: the first is at the broker, the second, sent right after,
    waits, journaled ``new``; the router dies right then. Restarted, it refuses the
    waiting one (its moment passed: it is never sent late) and settles the first against
    the broker, each sent at most once. (The first is waited for at the broker: killed
    while its call was in flight, it might never have reached it, which is case
    ``sent``'s, not this one's.)"""
    host, env = sim_broker
    env = {**env, "MT_ROUTER_ORDERS_PER_S": "0.2"}
    w = Watcher(settings, ("sys.status.", "exec."))
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    risk = spawn("risk", env)
    router = start_router(env, "queued")

    def last(oid: str) -> wire.OrderUpdate | None:
        got = [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == oid]
        return got[-1] if got else None

    try:
        w.wait(lambda: as_risk.send(order("a", 65 * 31)), 20, "the order pipe")
        w.wait(lambda: len(at_broker(host, 65 * 31)) == 1, 4, "a at the broker")
        assert as_risk.send(order("b", 65 * 32))  # within 5 s of a: it must wait
        assert router.wait(timeout=20) == CRASH_EXIT  # died with b journaled waiting
        router = start_router(env)
        w.wait(lambda: (u := last("s.b")) is not None and u.status == "rejected", 20, "b")
        assert last("s.b").reason == "router restarted before sending it; not sent"  # type: ignore[union-attr]
        w.wait(lambda: (u := last("s.a")) is not None and u.status == "complete", 20, "a")
        assert len(at_broker(host, 65 * 31)) == 1 and at_broker(host, 65 * 32) == []
    finally:
        as_risk.sock.close(0)
        ctx.term()
        stop([router, risk])
        w.close()


@pytest.mark.integration
def test_an_order_read_as_the_router_dies_is_sent_again_by_risk_and_goes_once(
    sim_broker: tuple[str, dict[str, str]], settings: Settings
) -> None:
    """The real resend behind case ``new``: an intent through a real risk daemon, the
    router killed after reading its order and before journaling anything of it. Risk's
    outbox holds the order unanswered and sends it again to the restarted router: the
    broker gets it once, and it fills."""
    host, env = sim_broker
    qty = 65 * 9
    w = Watcher(settings, ("sys.status.", "exec."))
    ctx = zmq.Context()
    as_engine = Pusher(ctx, settings.endpoints()["pipe.intents"], "engine", "intent")
    risk = spawn("risk", env)
    router = start_router(env, "new")

    def updates() -> list[wire.OrderUpdate]:
        return [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == "s.r1"]

    intent = wire.PlaceIntent(
        intent_id="r1", strategy="s", exchange="NFO", symbol=FUT, action="BUY",
        quantity=qty, product="NRML",
    )  # fmt: skip
    try:
        w.wait(lambda: {"risk", "router"} <= set(w.status), 20, "risk and the router")
        w.wait(lambda: as_engine.send(intent), 20, "the intent pipe")  # refused: not queued
        assert router.wait(timeout=20) == CRASH_EXIT  # read the order, journaled nothing
        assert at_broker(host, qty) == []
        router = start_router(env)
        w.wait(lambda: bool(updates()) and updates()[-1].status == "complete", 30, "filled")
        w.pump(1.0)
        assert len(at_broker(host, qty)) == 1  # sent once, by the restarted router
        assert (
            "orders sent again after a router restart"
            in (settings.log_dir / "risk.log").read_text()
        )
    finally:
        as_engine.sock.close(0)
        ctx.term()
        stop([router, risk])
        w.close()
