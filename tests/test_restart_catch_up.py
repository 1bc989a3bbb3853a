"""A restarted engine or risk daemon catches up from the router's books: the positions it
had, no fill counted twice (kill -9 during steady order flow)."""

from __future__ import annotations

import json
import signal

import pytest

from mytrading import wire
from mytrading.settings import Settings
from tests.procs import Watcher, spawn


@pytest.mark.integration
def test_engine_and_risk_restarted_with_kill_9_keep_their_positions(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    env = {
        **tmp_env,
        "MT_SIM_SPEED": "120",  # a bar every half second: steady order flow
        "MT_STRATEGY_PARAMS": json.dumps({"sma_crossover": {"fast": 2, "slow": 3}}),
    }
    w = Watcher(settings, ("sys.status.", "exec."))
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def router_net() -> dict[str, int]:
        snaps = {}
        for _, m in w.seen:
            if isinstance(m, wire.PositionSnapshot):
                snaps[m.symbol] = m.quantity
        return {s: q for s, q in snaps.items() if q}

    def engine_net() -> dict[str, int]:
        st = w.status["engine"].detail["strategies"]["sma_crossover"]["positions"]
        return {k.split(":")[1]: q for k, q in st.items()}

    try:
        w.wait(lambda: router_net(), 40, "an open position")
        for daemon in ("engine", "risk"):
            old = w.status[daemon].pid
            procs[daemon].send_signal(signal.SIGKILL)
            procs[daemon].wait(timeout=5)
            procs[daemon] = spawn(daemon, env)
            w.wait(
                lambda d=daemon, o=old: d in w.status and w.status[d].pid != o,
                15,
                f"{daemon} back",
            )
        # Positions agree once the books settle (orders keep flowing meanwhile).
        w.wait(
            lambda: router_net() and engine_net() == router_net(),
            20,
            "the restarted engine's positions to equal the router's",
        )
        w.wait(
            lambda: (
                w.status["risk"].detail["use"].get("sma_crossover", {}).get("lots", 0)
                == sum(abs(q) for q in router_net().values()) / 65
            ),
            20,
            "the restarted risk daemon to see the same position",
        )
        engine_log = (settings.log_dir / "engine.log").read_text()
        risk_log = (settings.log_dir / "risk.log").read_text()
        assert "positions restored" in engine_log and "positions restored" in risk_log
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=10)
        w.close()
