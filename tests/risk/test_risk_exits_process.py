"""Post-trade exits on real processes: a breached max loss closes the strategy's position
through the router, is confirmed against the broker's book, leaves the strategy REDUCING
(its next entry is refused), and every step is a risk event on the bus and in DuckDB."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from mytrading.messaging import wire
from mytrading.risk.events import read_events
from mytrading.settings import PROJECT_ROOT, Settings
from tests.procs import Watcher, spawn


@pytest.mark.integration
def test_max_loss_closes_confirms_and_blocks_reentry(
    settings: Settings, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    risk = config / "risk.toml"
    # charges alone (about 90 rupees on one lot) breach a 1-rupee max loss
    text = risk.read_text()
    assert "[strategies.sma_crossover]\nmax_loss = 12000.0" in text
    risk.write_text(text.replace("[strategies.sma_crossover]\nmax_loss = 12000.0",
                                 "[strategies.sma_crossover]\nmax_loss = 1.0"))  # fmt: skip
    env = {
        **tmp_env,
        "MT_CONFIG_DIR": str(config),
        "MT_SIM_SPEED": "120",
        "MT_STRATEGY_PARAMS": json.dumps({"sma_crossover": {"fast": 2, "slow": 3}}),
    }
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def events(kind: str) -> list[wire.RiskEvent]:
        return [m for _, m in w.seen if isinstance(m, wire.RiskEvent) and m.kind == kind]

    try:
        w.wait(lambda: events("exit_confirmed"), 45, "an exit confirmed by the broker's book")
        (trigger,) = [e for e in events("trigger") if e.strategy == "sma_crossover"]
        assert (trigger.rule, trigger.threshold, trigger.action) == ("max_loss", -1.0, "close")
        assert trigger.value < -1.0
        (exit_,) = events("exit")
        assert exit_.order_ids and exit_.order_ids[0].startswith("sma_crossover.risk-")
        fills = [m for _, m in w.seen if isinstance(m, wire.Fill)]
        net = sum(f.quantity if f.action == "BUY" else -f.quantity for f in fills)
        assert net == 0, fills  # flat by the fills everyone saw
        assert any(f.order_id in exit_.order_ids for f in fills)

        # REDUCING: the strategy's next entry goes nowhere: the engine holds it (it knows
        # risk's state), or risk refuses it if it went before the engine heard
        def held() -> bool:
            eng = w.status.get("engine")
            d = eng.detail["strategies"]["sma_crossover"] if eng else {}
            return d.get("entries_held", 0) >= 1 and d.get("trading") == "reducing"

        w.wait(
            lambda: held() or any(e.rule == "reducing" for e in events("rejected")),
            30,
            "the strategy's next entry held as REDUCING",
        )
        w.pump(1.2)
        risk = w.status["risk"].detail
        assert risk["states"]["strategies"] == {"sma_crossover": "reducing"}
        assert risk["triggers"] == {"max_loss": 1} and risk["exits_open"] == 0
        assert risk["pnl"]["sma_crossover"]["charges"] > 0
        eng = w.status["engine"].detail["strategies"]["sma_crossover"]
        assert eng["positions"] == {}  # the engine saw risk's exit fill too
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=10)
        w.close()
    rows = read_events(Path(tmp_env["MT_RISK_DB"]), 100)
    kinds = [r[2] for r in rows]
    assert {"trigger", "state", "exit", "exit_confirmed"} <= set(kinds), kinds
