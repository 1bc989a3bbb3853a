"""Risk's gate as a real process: the first intent waits for the funds figure, and an
intent held behind a paused (SIGSTOP) risk is refused as stale. (Nothing goes around
risk while it is down, and an intent waits for the router's positions after a restart:
every seed of ``main.py simulate`` kills risk, and its ``approved`` invariant holds;
``tests/simulation/test_scenarios.py`` restarts it without the router's answer.)"""

from __future__ import annotations

import signal

import pytest

from mytrading.messaging import wire
from mytrading.settings import Settings
from tests.procs import Watcher, spawn


@pytest.mark.integration
def test_the_first_intent_waits_for_the_funds_figure_instead_of_being_refused(
    sim_broker: tuple[str, dict[str, str]], settings: Settings
) -> None:
    """The broker's funds fail three times at start (the router's first poll and risk's
    first two questions): risk's first intent waits for the figure, without holding its
    loop, and is approved and filled, not refused for want of it."""
    from tests.simhelpers import control
    from tests.stack.test_going_live_process import Bus, intent, seen, up

    host, env = sim_broker
    env = {**env, "MT_RISK_ANY_HOUR": "true"}
    control(host, "/_sim/faults", {"endpoint": "funds", "faults": ["500", "500", "500"]})
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    bus = Bus(settings)
    procs = {d: spawn(d, env) for d in ("router", "risk")}
    try:
        up(w, procs)
        w.wait(lambda: bus.engine.send(intent("f1", "BUY")), 10, "the intent pipe")
        w.wait(lambda: seen(w, wire.Fill, order_id="s.f1"), 15, "the first intent's fill")
        refused = [e for e in seen(w, wire.RiskEvent) if e.kind == "rejected"]
        assert refused == [], refused
        assert control(host, "/_sim/counts").get("funds:500", 0) == 3  # the faults were met
        log = (settings.log_dir / "risk.log").read_text()
        assert "judged without a funds figure" not in log
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=10)
        bus.close()
        w.close()


@pytest.mark.integration
def test_an_intent_held_behind_a_paused_risk_is_refused_as_stale(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    """Issue 38: intents decided just before risk stalled (SIGSTOP for longer than the
    2 s limit) are refused as stale when it resumes, never sent late; the next fresh one
    goes. Risk and the router as processes, intents as the engine sends them."""
    import time

    import zmq

    from mytrading.domain.clock import build_clock
    from mytrading.domain.refdata import load_refdata
    from mytrading.messaging.bus import Pusher
    from tests.procs import settings_of
    from tests.simhelpers import FUT

    env = {
        **tmp_env,
        **{"MT_SIM_SPEED": "1", "MT_RISK_ANY_HOUR": "true", "MT_SIM_START": "2026-11-20T10:00"},
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),
    }
    s = settings_of(env)
    clock = build_clock(s, load_refdata(s.config_dir).calendar)
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    ctx = zmq.Context()
    as_engine = Pusher(ctx, settings.endpoints()["pipe.intents"], "engine", "intent")
    procs = {d: spawn(d, env) for d in ("router", "risk")}

    def intent(iid: str) -> wire.PlaceIntent:
        return wire.PlaceIntent(
            intent_id=iid, strategy="s", exchange="NFO", symbol=FUT, action="BUY",
            quantity=65, product="NRML", decided_ns=clock.now_ns(),
        )  # fmt: skip

    def answer(iid: str) -> str:
        for _, m in w.seen:
            if isinstance(m, wire.RiskEvent) and m.intent_id == iid:
                return f"{m.kind} {m.rule}"
            if isinstance(m, wire.OrderUpdate) and m.intent_id == iid:
                return m.status
        return ""

    try:
        w.wait(lambda: "risk" in w.status and "router" in w.status, 30, "risk and router")
        w.wait(lambda: as_engine.send(intent("fresh")), 10, "the intent pipe")
        w.wait(lambda: answer("fresh") not in ("", "rejected margin"), 15, "a first answer")
        procs["risk"].send_signal(signal.SIGSTOP)
        as_engine.send(intent("held1"))
        as_engine.send(intent("held2"))
        time.sleep(3.5)
        procs["risk"].send_signal(signal.SIGCONT)
        w.wait(lambda: answer("held1") and answer("held2"), 15, "the held intents answered")
        assert answer("held1") == answer("held2") == "rejected stale_intent"
        sent = w.status["router"].detail.get("sent", 0)
        w.wait(lambda: as_engine.send(intent("after")), 10, "the intent pipe")
        w.wait(lambda: answer("after") != "", 15, "the next intent answered")
        assert answer("after") != "rejected stale_intent"
        w.pump(1.5)
        assert w.status["router"].detail.get("sent", 0) >= sent  # only fresh ones went
        assert all(
            not (isinstance(m, wire.OrderUpdate) and m.intent_id in ("held1", "held2"))
            for _, m in w.seen
        )
    finally:
        as_engine.sock.close(0)
        ctx.term()
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=10)
        w.close()
