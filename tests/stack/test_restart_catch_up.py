"""A restarted engine or risk daemon catches up from the router's books: the positions it
had, no fill counted twice (kill -9 during steady order flow)."""

from __future__ import annotations

import json
import signal

import pytest

from mytrading import venue
from mytrading.messaging import wire
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
        # Risk's charges cover every fill of the day, those before its restart included
        # (replayed from the router), none twice.
        from datetime import date as _date

        from mytrading.domain.refdata import load_refdata
        from mytrading.risk.charges import ZERO, load_charges

        table, ref = load_charges(settings.config_dir), load_refdata(settings.config_dir)

        def expected_charges() -> float:
            total = ZERO
            fills = {m.fill_no: m for _, m in w.seen if isinstance(m, wire.Fill)}
            for f in fills.values():
                kind = ref.instrument(f.exchange, f.symbol).kind
                day = _date.fromtimestamp(w.status["risk"].ts / 1e9)
                total = total + table.trade(f.exchange, kind, f.action, f.quantity, f.price, day)
            return total.total

        w.wait(
            lambda: (
                w.status["risk"].detail["pnl"].get("sma_crossover", {}).get("charges")
                == expected_charges()
            ),
            20,
            "risk's charges to cover every fill once",
        )
        engine_log = (settings.log_dir / "engine.log").read_text()
        risk_log = (settings.log_dir / "risk.log").read_text()
        assert "positions restored" in engine_log and "positions restored" in risk_log
        assert "bracket exits of fills made while the engine was down" not in engine_log
        # the day's marks (trailing peaks, the stack's peak, fired triggers) came back too
        assert "day marks restored" in risk_log
        marks = json.loads((venue.current(settings).dir / "risk_marks.json").read_text())
        assert marks["day"] and marks["stack_peak"] is not None
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=10)
        w.close()
