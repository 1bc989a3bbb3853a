"""The live half of ``test_author_values.py``, on real daemons: a strategy with a misspelt
product fails at its call with the backtest's message, sends nothing, and the strategy
beside it trades; an intent frame risk cannot decode is refused to its sender by name."""

from __future__ import annotations

import signal
from pathlib import Path

import msgspec
import pytest

from mytrading import wire
from mytrading.settings import Settings
from tests.engine.test_author_values import TYPO_ERROR, TYPO_STRATEGY
from tests.procs import Watcher, spawn
from tests.stack.test_going_live_process import Bus, intent, seen


@pytest.mark.integration
def test_a_misspelt_product_fails_live_as_in_a_backtest_and_a_bad_frame_is_answered(
    settings: Settings, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "typo.py").write_text(TYPO_STRATEGY)
    env = {
        **tmp_env,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "typo",
        "MT_SIM_SPEED": "60",
        "MT_RISK_ANY_HOUR": "true",
    }
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    bus = Bus(settings)
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def typo() -> dict:
        eng = w.status.get("engine")
        return eng.detail["strategies"].get("typo", {}) if eng else {}

    try:
        w.wait(lambda: typo().get("hook_errors", 0) >= 1, 60, "the typo strategy's first bar")
        assert typo()["last_error"] == TYPO_ERROR  # word for word the backtest's
        assert typo()["open_orders"] == 0
        assert w.status["risk"].detail.get("approved", 0) == 0  # nothing reached risk
        log = (settings.log_dir / "engine.log").read_text()
        assert "product 'NRMl' is not one of MIS, NRML, CNC" in log

        # A frame that still does not decode (another sender's bug): refused by name.
        raw = msgspec.msgpack.decode(wire.encode_body(intent("bad1", "BUY")))
        raw[raw.index("NRML")] = "NRMl"
        w.wait(
            lambda: bus.engine.sock.send(b"intent " + msgspec.msgpack.encode(raw)) is None,
            5,
            "the intent pipe",
        )
        w.wait(lambda: seen(w, wire.RiskEvent, intent_id="bad1"), 10, "risk's answer")
        (ev,) = seen(w, wire.RiskEvent, intent_id="bad1")
        assert (ev.kind, ev.rule, ev.strategy) == ("rejected", "malformed", "s")
        assert "risk could not read it" in ev.reason and "NRMl" in ev.reason
        risk_log = (settings.log_dir / "risk.log").read_text()
        assert "malformed frame dropped" in risk_log  # counted and logged as well
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=10)
        bus.close()
        w.close()
