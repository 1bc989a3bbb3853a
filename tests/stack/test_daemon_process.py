"""A real daemon process: heartbeats, bad input, peer liveness, graceful stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import zmq

from mytrading import venue
from mytrading.messaging import bus, wire
from mytrading.settings import PROJECT_ROOT, Settings
from tests.procs import Watcher, spawn

pytestmark = pytest.mark.integration  # real processes or servers


def fut_order(
    oid: str,
    op: str = "place",
    ref: str = "",
    qty: int = 65,
    px: float = 1.0,
    product: str = "MIS",
) -> wire.Order:
    """A risk-approved LIMIT buy of the December future (``oid`` is ``strategy.intent``)."""
    return wire.Order(
        order_id=oid,
        intent_id=oid.split(".", 1)[1],
        strategy="s",
        exchange="NFO",
        symbol="NIFTY29DEC26FUT",
        action="BUY",
        quantity=qty,
        pricetype="LIMIT",
        product=product,  # type: ignore[arg-type]
        price=px,
        trigger_price=0.0,
        approved_by="risk",
        op=op,  # type: ignore[arg-type]
        ref_order_id=ref,
    )


def updates_of(w: Watcher, oid: str) -> list[wire.OrderUpdate]:
    return [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == oid]


def test_heartbeat_bad_frames_and_graceful_stop(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    w = Watcher(settings, ("sys.status.",))
    risk = spawn("risk", tmp_env)
    try:
        w.wait(lambda: "risk" in w.status, 15, "risk heartbeat")
        st = w.status["risk"]
        assert st.pid == risk.pid and st.state in ("running", "degraded")
        assert st.errors == 0
        # Garbage and a wrong message type on the intent pipe: counted, dropped, still alive.
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.connect(settings.endpoints()["pipe.intents"])
        push.send(b"intent \x01\x02garbage")
        push.send(b"no separator at all")
        push.send(wire.encode("intent", wire.Command(command="kill_switch", value="on")))
        w.wait(lambda: w.status["risk"].errors >= 3, 10, "errors counted")
        assert risk.poll() is None
        beats_before = sum(1 for _, m in w.seen if isinstance(m, wire.Status) and m.name == "risk")
        w.pump(1.5)
        beats_after = sum(1 for _, m in w.seen if isinstance(m, wire.Status) and m.name == "risk")
        assert beats_after > beats_before  # still heartbeating after the garbage
        assert w.status["risk"].detail["kill_switch"] is False  # the misrouted command did nothing
        push.close(0)
        ctx.term()
        t0 = time.monotonic()
        risk.send_signal(signal.SIGTERM)
        assert risk.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 5
        log = (settings.log_dir / "risk.log").read_text()
        assert '"event": "malformed frame dropped"' in log and '"stopped"' in log
        # each names the pipe it came in on
        dropped = [line for line in log.splitlines() if "malformed frame dropped" in line]
        assert len(dropped) == 2
        assert all('"via": "pipe.intents"' in line for line in dropped)
        assert '"timestamp": "' in log and "+05:30" in log  # IST-aware stamps
    finally:
        if risk.poll() is None:
            risk.kill()
        w.close()


def test_peer_declared_down_after_three_missed_beats(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    w = Watcher(settings, ("sys.status.",))
    risk = spawn("risk", tmp_env)
    router = spawn("router", tmp_env)
    try:

        def router_up_at_risk() -> bool:
            st = w.status.get("risk")
            return st is not None and "router" not in st.peers_down

        w.wait(router_up_at_risk, 15, "router up at risk")
        assert w.status["risk"].state == "running"
        router.send_signal(signal.SIGKILL)
        router.wait()
        killed = time.monotonic()
        w.wait(lambda: "router" in w.status["risk"].peers_down, 6, "router down at risk")
        took = time.monotonic() - killed
        assert 2.0 <= took <= 5.0, took  # three missed one-second beats, plus one beat of jitter
        assert w.status["risk"].state == "degraded"
    finally:
        for p in (risk, router):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=5)
        w.close()


def test_router_sends_only_risk_approved_orders_and_each_once(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    from mytrading.messaging.bus import Pusher

    w = Watcher(settings, ("sys.status.", "exec."))
    router = spawn("router", tmp_env)
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    forger = Pusher(ctx, settings.endpoints()["pipe.orders"], "engine", "order")

    def order(oid: str, approved_by: str = "risk") -> wire.Order:
        return wire.Order(
            order_id=oid,
            intent_id=oid,
            strategy="s",
            exchange="NFO",
            symbol="NIFTY29DEC26FUT",
            action="BUY",
            quantity=65,
            pricetype="LIMIT",
            product="MIS",
            price=1.0,
            trigger_price=0.0,
            approved_by=approved_by,
        )

    def send(p: Pusher, o: wire.Order) -> None:
        w.wait(lambda: p.send(o), 10, "pipe connected")

    try:
        w.wait(lambda: "router" in w.status, 15, "router heartbeat")
        send(forger, order("forged-1"))  # right fields, wrong sender
        send(as_risk, order("self-approved", approved_by="engine"))
        send(as_risk, order("s.ok-1"))
        send(as_risk, order("s.ok-1"))  # the same order id again
        send(as_risk, order("s.ok-2"))
        w.wait(lambda: w.status["router"].detail.get("duplicates_dropped") == 1, 10, "counted")
        d = w.status["router"].detail
        assert d["sent"] == 2 and d["unapproved_dropped"] == 2
        opened = [m.order_id for _, m in w.seen if isinstance(m, wire.OrderUpdate)]
        assert sorted(opened) == ["s.ok-1", "s.ok-2"]  # resting limits: one "open" each
        assert router.poll() is None
    finally:
        as_risk.sock.close(0)
        forger.sock.close(0)
        ctx.term()
        router.send_signal(signal.SIGTERM)
        router.wait(timeout=5)
        w.close()


def test_unreadable_kill_switch_state_fails_safe(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    state = venue.current(settings).dir / "risk_state.json"  # the venue's states
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text('{"stack": "act')  # torn write, disk trouble, a hand edit gone wrong
    w = Watcher(settings, ("sys.status.",))
    risk = spawn("risk", tmp_env)
    try:
        w.wait(lambda: "risk" in w.status, 15, "risk heartbeat")
        assert w.status["risk"].detail["kill_switch"] is True
        assert w.status["risk"].errors == 1
        assert "risk state unreadable" in (settings.log_dir / "risk.log").read_text()
    finally:
        risk.send_signal(signal.SIGTERM)
        risk.wait(timeout=5)
        w.close()


def test_router_modifies_and_cancels_working_orders(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    from mytrading.messaging.bus import Pusher

    w = Watcher(settings, ("sys.status.", "exec."))
    router = spawn("router", tmp_env)
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")

    order = fut_order

    def updates(oid: str) -> list[wire.OrderUpdate]:
        return updates_of(w, oid)

    try:
        w.wait(lambda: "router" in w.status, 15, "router heartbeat")
        w.wait(lambda: as_risk.send(order("s.e1")), 10, "pipe connected")
        w.wait(lambda: updates("s.e1"), 10, "the entry is open")
        as_risk.send(order("s.m1", "modify", "s.e1", qty=130, px=2.0))
        w.wait(lambda: len(updates("s.e1")) == 2, 10, "the modified order's update")
        assert (updates("s.e1")[-1].status, updates("s.e1")[-1].quantity) == ("open", 130)
        # A daemon catching up gets the working order, as modified, in the snapshot.
        from mytrading.messaging.catchup import fetch_snapshot

        snap = fetch_snapshot(bus.asking(ctx, settings.endpoints()["rpc.router"]))
        assert snap is not None
        assert [
            (x.order.order_id, x.order.quantity, x.order.price, x.status) for x in snap.working
        ] == [("s.e1", 130, 2.0, "open")]
        as_risk.send(order("s.c1", "cancel", "s.e1"))
        w.wait(lambda: updates("s.e1")[-1].status == "cancelled", 10, "cancelled")
        as_risk.send(order("s.c2", "cancel", "s.e1"))  # final: refused without a broker call
        as_risk.send(order("s.c3", "cancel", "s.nothing"))  # never existed
        w.wait(lambda: updates("s.c3"), 10, "the refusal")
        assert updates("s.c2")[0].status == "rejected"
        assert updates("s.c2")[0].reason == "cancel: s.e1 is not working"
        assert updates("s.c3")[0].reason == "cancel: s.nothing is not working"
        w.pump(1.2)
        d = w.status["router"].detail
        assert (d["modify_ok"], d["cancel_ok"], d.get("cancel_refused", 0), d["sent"]) == (
            1,
            1,
            0,
            1,
        )
    finally:
        as_risk.sock.close(0)
        ctx.term()
        router.send_signal(signal.SIGTERM)
        router.wait(timeout=5)
        w.close()


def test_risk_splits_a_large_intent_and_cancels_every_child(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    from mytrading.messaging.bus import Pusher

    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    env = {**tmp_env, "MT_RISK_ANY_HOUR": "true", "MT_RISK_MAX_POSITION_LOTS": "40"}
    procs = {d: spawn(d, env) for d in ("router", "risk")}
    ctx = zmq.Context()
    engine = Pusher(ctx, settings.endpoints()["pipe.intents"], "engine", "intent")

    def intent(iid: str, qty: int, ref: str = "") -> wire.Intent:
        """A LIMIT buy, or with ``ref`` the cancel of that working order."""
        fields = dict(
            intent_id=iid,
            strategy="s",
            exchange="NFO",
            symbol="NIFTY29DEC26FUT",
            action="BUY",
            quantity=qty,
        )
        if ref:
            return wire.CancelIntent(**fields, ref_intent_id=ref)  # type: ignore[arg-type]
        return wire.PlaceIntent(**fields, pricetype="LIMIT", price=3_000.0)  # type: ignore[arg-type]

    def updates() -> list[wire.OrderUpdate]:
        return [m for _, m in w.seen if isinstance(m, wire.OrderUpdate)]

    try:
        w.wait(lambda: {"router", "risk"} <= set(w.status), 15, "heartbeats")
        w.wait(lambda: engine.send(intent("big", 65 * 23)), 10, "pipe connected")
        w.wait(lambda: len({u.order_id for u in updates()}) == 3, 10, "three child orders")
        kids = sorted({(u.order_id, u.quantity, u.part, u.parts) for u in updates()})
        assert kids == [("s.big.1", 650, 1, 3), ("s.big.2", 650, 2, 3), ("s.big.3", 195, 3, 3)]
        engine.send(intent("stop", 65 * 23, "big"))
        w.wait(
            lambda: (
                {u.order_id for u in updates() if u.status == "cancelled"}
                == {"s.big.1", "s.big.2", "s.big.3"}
            ),
            10,
            "every child cancelled",
        )
        w.wait(
            lambda: w.status["router"].detail.get("cancel_ok") == 3,
            5,
            "the router's count of three sent and three cancelled",
        )
        assert w.status["router"].detail.get("sent") == 3
    finally:
        engine.sock.close(0)
        ctx.term()
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=5)
        w.close()


def test_the_in_process_venue_keeps_its_orders_across_a_router_kill(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    """``MT_BROKER=sim``: the venue in the router's process keeps its books on disk, so a
    router killed with a working order settles it there after the restart, as at a real
    broker (it used to become UNKNOWN), and a cancel then reaches it."""
    from mytrading.messaging.bus import Pusher
    from mytrading.messaging.catchup import fetch_snapshot

    w = Watcher(settings, ("sys.status.", "exec."))
    router = spawn("router", tmp_env)
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")

    def order(oid: str, op: str = "place", ref: str = "") -> wire.Order:
        return fut_order(oid, op, ref, product="NRML")  # at 1 rupee: it stays working

    def updates(oid: str) -> list[wire.OrderUpdate]:
        return updates_of(w, oid)

    try:
        w.wait(lambda: "router" in w.status, 15, "router heartbeat")
        w.wait(lambda: as_risk.send(order("s.e1")), 10, "pipe connected")
        w.wait(lambda: updates("s.e1") and updates("s.e1")[-1].status == "open", 10, "open")
        broker_id = updates("s.e1")[-1].broker_order_id
        router.kill()  # kill -9: no orderly stop
        router.wait(timeout=5)
        w.status.pop("router")
        router = spawn("router", tmp_env)
        w.wait(lambda: "router" in w.status, 15, "the new router's heartbeat")
        snap = fetch_snapshot(bus.asking(ctx, settings.endpoints()["rpc.router"]))
        assert snap is not None
        assert [(x.order.order_id, x.status, x.broker_order_id) for x in snap.working] == [
            ("s.e1", "open", broker_id)
        ]
        w.pump(1.2)
        assert w.status["router"].detail.get("unknown", 0) == 0
        w.wait(lambda: as_risk.send(order("s.c1", "cancel", "s.e1")), 10, "pipe connected")
        w.wait(lambda: updates("s.e1")[-1].status == "cancelled", 10, "cancelled at the venue")
    finally:
        as_risk.sock.close(0)
        ctx.term()
        router.send_signal(signal.SIGTERM)
        router.wait(timeout=5)
        w.close()


def test_a_daemon_failing_at_start_ends_fatal_in_supervisord(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    """A router that cannot start (MT_MODE=live, nobody confirmed it) under a real
    supervisord: after three failed set-ups it exits at once at each start (startguard),
    so supervisord gives up, FATAL and in crashes.log, instead of looping. (Whether a
    failed set-up outlives startsecs or not depends on the machine's speed; either way the
    fourth start is the startguard's quick exit.)"""
    import sys
    import xmlrpc.client

    from supervisor.xmlrpc import SupervisorTransport

    from mytrading.process import startguard

    run = Path(tmp_env["MT_RUN_DIR"])
    run.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, as the stack makes it
    logs = Path(tmp_env["MT_LOG_DIR"])
    logs.mkdir(parents=True, exist_ok=True)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"""[unix_http_server]
file={run}/s.sock
[supervisord]
logfile={logs}/supervisord.log
pidfile={run}/s.pid
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:router]
command={sys.executable} -m mytrading.router
directory={PROJECT_ROOT}
autorestart=true
startsecs=1
startretries=3
stdout_logfile={logs}/router.console.log
redirect_stderr=true
[eventlistener:crashwatch]
command={sys.executable} -m mytrading.process.crashwatch
events=PROCESS_STATE_EXITED,PROCESS_STATE_FATAL,PROCESS_STATE_BACKOFF
buffer_size=100
directory={PROJECT_ROOT}
stderr_logfile=NONE
"""
    )
    env = {
        **os.environ,
        **tmp_env,
        "MT_MODE": "live",
        "MT_BROKER": "openalgo",
        "MT_SIM_SERVER": "false",
        "MT_OPENALGO_API_KEY": "k",
    }
    sup = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf), "-n"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = xmlrpc.client.ServerProxy(
        "http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{run}/s.sock")
    )
    try:
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline and state != "FATAL":
            time.sleep(0.5)
            try:
                state = server.supervisor.getProcessInfo("router")["statename"]
            except OSError:
                continue
        assert state == "FATAL"
        fails = startguard.failures("router", Path(tmp_env["MT_STATE_DIR"]) / "startfail")
        assert fails["count"] == startguard.MAX_FAILED_STARTS  # then the guard said no
        assert "operator's confirmation" in str(fails["error"])
        assert "not starting again" in (logs / "router.console.log").read_text()
        # the FATAL event reaches the crash watcher after supervisord's state changed: on
        # a loaded machine after this test read the state (CI, 2026-11-27)
        end = time.monotonic() + 60
        path = logs / "crashes.log"
        while '"event": "fatal"' not in (crashes := path.read_text() if path.exists() else ""):
            assert time.monotonic() < end, crashes
            time.sleep(0.2)
        assert '"process": "router"' in crashes
    finally:
        sup.send_signal(signal.SIGTERM)
        sup.wait(timeout=20)
