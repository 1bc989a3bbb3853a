"""Expiry through the running stack, on the simulator server: a strategy that holds NIFTY
options into expiry (risk's expiry-day close turned off for it) sees them settled when the
expiry day's session closes: the simulated broker closes them at their intrinsic value
against the index's last price of the day (its position book flat, the P&L in its funds),
the router books each as a settlement fill (journaled, numbered, published; a router
killed afterwards replays them and settles nothing twice), the strategy and risk see the
fill, and the reconciler finds nothing to report and lists the settlements."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS
from mytrading.settings import PROJECT_ROOT, load_settings
from tests.procs import Watcher, run_cli, settings_of, stack_env

pytestmark = pytest.mark.integration

STRATEGY = '''
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy, StrategyParams


class HoldToExpiry(BaseStrategy[StrategyParams]):
    """Buys a call 200 points in the money and sells one 500 out, NRML, and holds them."""

    name = "hold_expiry"

    def on_start(self) -> None:
        self.index = self.spot("NIFTY")
        self.subscribe_ticks(*self.index)
        self.legs = []

    def on_tick(self, tick: wire.Tick) -> None:
        if self.legs or tick.symbol != "NIFTY":
            return
        self.legs = [
            self.option("NIFTY", "CE", strike=round(tick.ltp / 50) * 50 - 200),
            self.option("NIFTY", "CE", strike=round(tick.ltp / 50) * 50 + 500),
        ]
        self.buy(*self.legs[0], 65, product="NRML")
        self.sell(*self.legs[1], 65, product="NRML")
'''


def test_options_held_into_expiry_are_settled_by_broker_router_and_reconciler(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    strategies, config = tmp_path / "strategies", tmp_path / "config"
    strategies.mkdir()
    (strategies / "hold_expiry.py").write_text(STRATEGY)
    shutil.copytree(PROJECT_ROOT / "config", config)
    with open(config / "risk.toml", "a") as f:  # held to the exchange's settlement, and
        # entered late in the day (whenever the stack is up, whatever the machine's speed)
        f.write('\n[strategies.hold_expiry]\nexpiry_close = ""\nentry_window = "09:15-15:30"\n')
    env = stack_env(
        tmp_env,
        monkeypatch,
        MT_STRATEGIES_DIR=str(strategies),
        MT_CONFIG_DIR=str(config),
        MT_STRATEGIES="hold_expiry",
        # NIFTY's weekly and monthly expire today; 30 market minutes (30 s) before the close:
        # in a loaded suite the stack took 13 to 22 s from the test's start to trading, and
        # once more than 22 (a full suite of 633 s on a slow day of the VM): it bought after
        # 15:30 (the next session is the 25th, the 24th a holiday: December's options,
        # which no expiry settled)
        MT_SIM_START="2026-11-23T15:00",
        MT_SIM_STOCKS="",
        MT_RECON_INTERVAL_S="1",
    )
    w = Watcher(settings_of(env))
    started = False
    try:
        # the market clock starts now, not when the fixture was made: on a loaded machine
        # the seconds before the stack is up are minutes of market time at 60x
        env["MT_CLOCK_ANCHOR_NS"] = str(time.time_ns())
        r = run_cli("start", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        started = True
        w.wait(lambda: set(w.status) == set(DAEMONS), 30, "a heartbeat from every daemon")

        def fills() -> list[wire.Fill]:
            return [m for _, m in w.seen if isinstance(m, wire.Fill)]

        w.wait(lambda: len([f for f in fills() if not f.settlement]) >= 2, 30, "the two legs")
        entry = {f.symbol: f for f in fills() if not f.settlement}
        w.wait(lambda: len([f for f in fills() if f.settlement]) >= 2, 90, "settlement fills")
        index = [
            m
            for _, m in w.seen
            if isinstance(m, wire.Tick)
            and m.symbol == "NIFTY"
            and m.exch_ns < 1_795_428_000 * 10**9  # 2026-11-23 15:30 IST
        ]
        final = index[-1].ltp  # the index's last price of the expiry day
        settled = {f.symbol: f for f in fills() if f.settlement}
        assert set(settled) == set(entry)
        for sym, f in settled.items():
            strike = float(sym[12:-2])
            assert f.settlement == "cash" and f.product == "NRML"
            assert f.action == ("SELL" if entry[sym].action == "BUY" else "BUY")
            assert f.price == pytest.approx(round(max(final - strike, 0.0), 2), abs=0.06), (
                f,
                final,
            )
            assert f.order_id == f"hold_expiry.settle-{sym}"
        nos = sorted(f.fill_no for f in fills())
        assert nos == list(range(nos[0], nos[0] + len(nos)))  # numbered like every fill

        def recon() -> dict:
            return w.status["reconciler"].detail if "reconciler" in w.status else {}

        w.wait(lambda: len(recon().get("settled", [])) == 2, 20, "the reconciler's settlements")
        checks = recon()["checks"]
        w.wait(lambda: recon()["checks"] >= checks + 2, 20, "two more reconciler checks")
        assert recon()["mismatches"] == 0 and recon()["order_mismatches"] == 0, recon()
        # a router killed now replays its journal: the contracts are flat, not settled again
        w.kill_9("router")
        w.pump(2)
        assert len({f.fill_id for f in fills() if f.settlement}) == 2
        log = (load_settings().log_dir / "router.log").read_text()
        assert log.count('"settled at expiry"') == 2
        positions = w.status["engine"].detail["strategies"]["hold_expiry"]
        assert positions["hook_errors"] == 0
    finally:
        w.close()
        if started:
            r = run_cli("stop", env=env)
            assert r.returncode == 0, r.stdout + r.stderr
