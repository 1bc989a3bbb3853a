"""Schedules on real daemons (router, risk, monitor; the market clock from 09:00 at 120x):
risk halts a scheduled strategy before its start and arms it at its start by itself, halts
it again at its stop; a strategy paused by an operator stays paused at its start and the
monitor says "missed start" once; a schedule's own halt raises no "strategy halted"
alert; today's plan in risk's heartbeat and ``main.py control schedule``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mytrading.monitor.store import AlertStore
from mytrading.settings import PROJECT_ROOT
from tests.procs import Watcher, cli, settings_of, spawn, stop_all

A, B = "sma_crossover", "rsi_mean_reversion"


@pytest.mark.integration
def test_risk_follows_the_schedule_and_the_monitor_says_a_missed_start(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    cfg = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", cfg)
    st = cfg / "strategies.toml"
    st.write_text(
        st.read_text()
        + f'\n[{A}.schedule]\nstart = "09:40"\nstop = "09:43"\n'
        + f'\n[{B}.schedule]\ndays = "all"\nstart = "09:40"\nstop = "15:00"\n'
    )
    alerts = cfg / "alerts.toml"
    alerts.write_text(alerts.read_text().replace("threshold = 60\n", "threshold = 1\n", 1))
    env = {
        **tmp_env,
        "MT_CONFIG_DIR": str(cfg),
        "MT_STRATEGIES": f"{A},{B}",
        "MT_SIM_START": "2026-11-20T09:00",  # a Friday; 20 s to the start: a loaded
        # machine took more than 15 s to bring risk up
        "MT_SIM_SPEED": "120",
        "MT_HEARTBEAT_S": "0.5",
    }
    s = settings_of(env)
    w = Watcher(s, ("sys.status.",))
    procs = {d: spawn(d, env) for d in ("router", "risk", "monitor")}

    def risk() -> dict:  # type: ignore[type-arg]
        return w.status["risk"].detail if "risk" in w.status else {}

    def own(name: str) -> str:
        return str((risk().get("states") or {}).get("strategies", {}).get(name, "active"))

    try:
        w.wait(lambda: own(A) == "halted" and own(B) == "halted", 60, "both halted before 09:40")
        why = risk()["states"]["why"][A]
        assert why["by"] == "schedule" and "before its start 09:40" in why["reason"], why
        plan = json.loads(cli("control", "schedule", "--json", env=env).stdout.splitlines()[-1])
        assert plan["schedule"][A]["phase"] == "before" and plan["schedule"][A]["trades_today"]
        status = cli("control", "status", env=env).stdout
        assert f"today: {A:<22} every trading day 09:40-09:43: before its start" in status

        # the operator pauses B before its start: the start arms A only
        r = cli("control", "pause", B, "--json", env=env)
        assert json.loads(r.stdout.splitlines()[-1])["ok"], r.stdout
        w.wait(lambda: risk()["schedule"][A]["phase"] == "during", 60, "09:40")
        w.wait(lambda: own(A) == "active", 5, "A armed")
        w.pump(1.0)
        assert own(B) == "halted" and "paused by cli:" in risk()["states"]["why"][B]["reason"]

        # A's stop at 09:23: halted by its schedule again
        w.wait(lambda: own(A) == "halted", 30, "A halted at its stop")
        assert "after its stop 09:43" in risk()["states"]["why"][A]["reason"]

        store = AlertStore(s.stores.alerts_db)
        try:

            def missed() -> list[dict]:  # type: ignore[type-arg]
                return [a for a in store.log(100) if a["rule"] == "missed_start"]

            w.wait(lambda: bool(missed()), 30, "the missed-start alert")
            got = missed()
            assert len(got) == 1 and got[0]["key"] == B, got
            assert "should trade from 09:40" in got[0]["text"] and "paused by" in got[0]["text"]
            halted = {a["key"] for a in store.log(100) if a["rule"] == "strategy_halted"}
            assert A not in halted and B in halted, halted  # the schedule's halts: no news
        finally:
            store.close()
    finally:
        stop_all(procs.values())
        w.close()
