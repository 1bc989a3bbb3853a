"""A futures roll through the real daemons: the engine is killed with ``kill -9`` the
moment risk approves the roll, comes back, and the position is rolled once."""

from __future__ import annotations

import json

import pytest

from mytrading.messaging import wire
from mytrading.settings import Settings
from tests.procs import Watcher, spawn

NOV, DEC = "NIFTY23NOV26FUT", "NIFTY29DEC26FUT"  # on 2026-11-20 NOV has 1 trading day left


def params(roll_days: int) -> str:
    sma = {"fast": 2, "slow": 3, "product": "NRML", "contract": NOV, "roll_days": roll_days}
    return json.dumps({"sma_crossover": sma})


@pytest.mark.integration
def test_a_roll_survives_an_engine_killed_mid_roll(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    env = {**tmp_env, "MT_SIM_START": "2026-11-20T10:00", "MT_SIM_SPEED": "60"}
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    procs = {
        d: spawn(d, {**env, "MT_STRATEGY_PARAMS": params(0)})
        for d in ("router", "risk", "engine", "feed")
    }

    def net() -> dict[str, int]:
        snaps: dict[str, int] = {}
        for _, m in w.seen:
            if isinstance(m, wire.PositionSnapshot):
                snaps[m.symbol] = m.quantity
        return snaps

    def rolls(action: str) -> list[wire.RiskEvent]:
        return [
            m
            for _, m in w.seen
            if isinstance(m, wire.RiskEvent) and m.kind == "roll" and m.action == action
        ]

    def restart_engine(roll_days: int) -> None:
        old = w.status["engine"].pid
        procs["engine"].kill()  # SIGKILL
        procs["engine"].wait(timeout=5)
        procs["engine"] = spawn("engine", {**env, "MT_STRATEGY_PARAMS": params(roll_days)})
        w.wait(lambda: w.status["engine"].pid != old, 20, "the engine back")

    try:
        # without roll_days the strategy holds November's future, as it was told
        w.wait(lambda: net().get(NOV, 0) != 0, 60, "a position in November's future")
        restart_engine(1)  # the operator turns rolling on: the position is due at once
        w.wait(lambda: rolls("approved"), 30, "risk approving the roll")
        restart_engine(1)  # killed mid-roll: the legs may or may not have filled yet
        w.wait(lambda: rolls("confirmed"), 30, "the roll confirmed from the position book")
        w.wait(
            lambda: "NFO:" + DEC in str(w.status["engine"].detail["strategies"]),
            20,
            "the engine trading December",
        )
        w.pump(3.0)  # several roll checks (30 market seconds each) after the restart
        assert len(rolls("approved")) == 1 and len(rolls("confirmed")) == 1
        assert not [
            m
            for _, m in w.seen
            if isinstance(m, wire.RiskEvent)
            and m.kind == "roll"
            and m.action not in ("approved", "confirmed")
        ]
        tried_again = [
            m
            for _, m in w.seen
            if isinstance(m, wire.RiskEvent) and m.kind == "rejected" and "roll" in m.rule
        ]
        assert not tried_again  # the restarted engine knew: it did not even ask again
        confirmed = rolls("confirmed")[0]
        legs = set(confirmed.order_ids)
        fills = [m for _, m in w.seen if isinstance(m, wire.Fill)]
        leg_fills = [f for f in fills if {f.order_id, f.order_id.rsplit(".", 1)[0]} & legs]
        assert sorted(f.symbol for f in leg_fills) == [NOV, DEC]  # one close, one open
        assert net().get(NOV, 0) == 0
        # after the roll nothing more traded November; December is where it trades on
        after = [f for f in fills if f.fill_no > max(x.fill_no for x in leg_fills)]
        assert all(f.symbol == DEC for f in after)
        assert abs(net().get(DEC, 0)) in (0, 65, 130)
    finally:
        for p in procs.values():
            p.kill()
            p.wait(timeout=5)
        w.close()
