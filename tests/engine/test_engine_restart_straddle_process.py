"""An engine killed with a short straddle open comes back knowing it: the positions and the
protective stops are given back before ``on_start``, so the example does not sell a
second straddle (it did before: its "traded today" flag lived only in memory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mytrading.messaging import wire
from tests.procs import Watcher, settings_of, spawn, stop_all


def _entries(w: Watcher) -> set[str]:
    """The straddle's option sells (entries; its stops are buys)."""
    return {
        m.order_id
        for _, m in w.seen
        if isinstance(m, wire.Fill)
        and m.strategy == "nifty_short_straddle"
        and m.action == "SELL"
        and m.symbol.endswith(("CE", "PE"))
    }


@pytest.mark.integration
def test_a_restarted_engine_does_not_sell_a_second_straddle(tmp_env: dict[str, str]) -> None:
    env = {
        **tmp_env,
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_STRATEGIES": "nifty_short_straddle",
        "MT_SIM_STRIKES": "3",
    }
    w = Watcher(settings_of(env), ("sys.status.", "exec."))
    procs = {d: spawn(d, env) for d in ("router", "risk", "feed", "engine")}
    try:
        w.wait(lambda: len(_entries(w)) == 2, 60, "the straddle sold")
        first = _entries(w)
        w.pump(1.0)  # its stops placed
        stops = {
            m.order_id
            for _, m in w.seen
            if isinstance(m, wire.OrderUpdate) and m.action == "BUY" and m.status != "rejected"
        }
        assert stops, "the legs' protective stops"
        old = w.status["engine"].pid
        procs["engine"].kill()  # SIGKILL: nothing saved on the way out
        procs["engine"].wait(timeout=10)
        procs["engine"] = spawn("engine", env)
        w.wait(lambda: w.status["engine"].pid != old, 30, "the engine back")
        w.pump(6.0)  # three market minutes at 30x: it would have sold again at once
        assert _entries(w) == first
        log = Path(tmp_env["MT_LOG_DIR"]) / "engine.log"
        assert "straddle already open: watching it" in log.read_text()
    finally:
        stop_all(procs.values())
        w.close()
