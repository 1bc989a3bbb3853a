"""A stuck strategy on real daemons (router, risk, engine, feed): its hook sleeps 30 s
and then spins; within a few seconds it is interrupted and quarantined, the strategy
beside it keeps trading in the same engine, the engine stays responsive (no spinning
CPU), and risk still manages the stuck one's position: the kill switch's flatten closes
it."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from mytrading.messaging import wire
from mytrading.settings import Settings
from tests.procs import Watcher, spawn
from tests.stack.test_going_live_process import Bus

STUCK = '''
import time
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class Stuck(BaseStrategy):
    """Buys a lot, then its on_bar sleeps 30 s and spins for ever."""

    name = "stuck"

    def on_start(self) -> None:
        self.subscribe_bars(*self.near_future("NIFTY"), "1m")
        self.bought = ""
        self.held = False

    def on_bar(self, bar: wire.Bar) -> None:
        if not self.bought:
            self.bought = self.buy(bar.exchange, bar.symbol,
                                   self.lot_size(bar.exchange, bar.symbol))
        elif self.held:
            time.sleep(30)
            while True:
                pass

    def on_fill(self, fill: wire.Fill) -> None:
        self.held = True
'''

STEADY = '''
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class Steady(BaseStrategy):
    """A lot bought and sold in turn, every bar."""

    name = "steady"

    def on_start(self) -> None:
        self.subscribe_bars(*self.near_future("NIFTY"), "1m")
        self.long = False

    def on_bar(self, bar: wire.Bar) -> None:
        lot = self.lot_size(bar.exchange, bar.symbol)
        if self.long:
            self.sell(bar.exchange, bar.symbol, lot)
        else:
            self.buy(bar.exchange, bar.symbol, lot)
        self.long = not self.long
'''


@pytest.mark.integration
def test_a_stuck_strategy_is_contained_and_its_position_managed(
    settings: Settings, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "stuck.py").write_text(STUCK)
    (strategies / "steady.py").write_text(STEADY)
    env = {
        **tmp_env,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "stuck,steady",
        "MT_SIM_SPEED": "60",
        "MT_RISK_ANY_HOUR": "true",
        "MT_HOOK_TIMEOUT_S": "2",
    }
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    bus = Bus(settings)
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def stats(name: str) -> dict[str, Any]:
        eng = w.status.get("engine")
        return eng.detail["strategies"].get(name, {}) if eng else {}

    def fills(strategy: str) -> int:
        return sum(1 for _, m in w.seen if isinstance(m, wire.Fill) and m.strategy == strategy)

    try:
        w.wait(lambda: bool(stats("stuck").get("positions")), 90, "the stuck one's position")
        w.wait(lambda: bool(stats("stuck").get("quarantined")), 15, "the stuck one contained")
        assert "hook was stuck" in stats("stuck")["quarantined"]
        assert stats("stuck")["positions"]  # still held: risk's to manage
        steady_then = fills("steady")
        w.wait(lambda: fills("steady") >= steady_then + 3, 30, "the other trading on")
        assert stats("steady")["quarantined"] == ""
        w.pump(2.5)
        assert w.status["engine"].detail["health"]["cpu_pct"] < 50  # not spinning
        assert procs["engine"].poll() is None
        # risk manages the stuck strategy's position: the kill switch flattens it
        bus.cli.send(wire.Command(command="kill_switch", value="flatten", issued_by="test"))
        w.wait(lambda: not stats("stuck").get("positions"), 30, "the stuck one flattened")
        log = (settings.log_dir / "engine.log").read_text()
        assert "ALERT: strategy hook stuck" in log
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=15)
        bus.close()
        w.close()


GREEDY = '''
import time
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class Greedy(BaseStrategy):
    """On its third bar, a loop that swallows everything, the timeout included."""

    name = "greedy"

    def on_start(self) -> None:
        self.subscribe_bars(*self.near_future("NIFTY"), "1m")
        self.bars = 0

    def on_bar(self, bar: wire.Bar) -> None:
        self.bars += 1
        while self.bars >= 3:
            try:
                time.sleep(0.05)
            except BaseException:
                pass
'''


@pytest.mark.integration
def test_a_hook_that_cannot_be_interrupted_ends_the_engine_and_is_kept_out_today(
    settings: Settings, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "greedy.py").write_text(GREEDY)
    (strategies / "steady.py").write_text(STEADY)
    env = {
        **tmp_env,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "greedy,steady",
        "MT_SIM_SPEED": "60",
        "MT_RISK_ANY_HOUR": "true",
        "MT_HOOK_TIMEOUT_S": "1",
        "MT_HOOK_KILL_S": "3",
    }
    w = Watcher(settings, ("sys.status.", "exec."))
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def stats(name: str) -> dict[str, Any]:
        eng = w.status.get("engine")
        return eng.detail["strategies"].get(name, {}) if eng else {}

    def fills(strategy: str) -> int:
        return sum(1 for _, m in w.seen if isinstance(m, wire.Fill) and m.strategy == strategy)

    try:
        first = procs["engine"]
        w.wait(lambda: first.poll() is not None, 90, "the engine ended by the watchdog")
        assert first.returncode == -signal.SIGABRT
        procs["engine"] = spawn("engine", env)  # what supervisord does
        w.wait(
            lambda: (
                w.status.get("engine") is not None
                and w.status["engine"].pid == procs["engine"].pid
                and bool(stats("greedy").get("quarantined"))
            ),
            60,
            "the restarted engine",
        )
        assert "could not be interrupted" in stats("greedy")["quarantined"]
        steady_then = fills("steady")
        w.wait(lambda: fills("steady") >= steady_then + 2, 30, "the other trading on")
        log = (settings.log_dir / "engine.log").read_text()
        assert "ALERT: the engine was ended by a strategy's stuck hook" in log
        assert "greedy.py" in log  # its traceback, in the alert
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=15)
        w.close()


HOG = '''
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class Hog(BaseStrategy):
    """Keeps 40 MB more at every bar, for ever."""

    name = "hog"

    def on_start(self) -> None:
        self.subscribe_bars(*self.near_future("NIFTY"), "1m")
        self.kept = []

    def on_bar(self, bar: wire.Bar) -> None:
        self.kept.append(bytearray(40 * 2**20))
'''


@pytest.mark.integration
def test_a_strategy_allocating_without_bound_is_stopped_by_the_engines_limit(
    settings: Settings, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "hog.py").write_text(HOG)
    (strategies / "steady.py").write_text(STEADY)
    env = {
        **tmp_env,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "hog,steady",
        "MT_SIM_SPEED": "60",
        "MT_RISK_ANY_HOUR": "true",
        "MT_ENGINE_MAX_RSS_MB": "500",
    }
    w = Watcher(settings, ("sys.status.", "exec."))
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def stats(name: str) -> dict[str, Any]:
        eng = w.status.get("engine")
        return eng.detail["strategies"].get(name, {}) if eng else {}

    def fills(strategy: str) -> int:
        return sum(1 for _, m in w.seen if isinstance(m, wire.Fill) and m.strategy == strategy)

    try:
        w.wait(lambda: bool(stats("hog").get("quarantined")), 120, "the hog stopped")
        assert stats("hog")["quarantined"].startswith("memory: its hooks grew the engine")
        assert stats("steady")["quarantined"] == ""
        w.pump(2.5)
        assert w.status["engine"].detail["health"]["rss_mb"] < 500  # what it held is gone
        steady_then = fills("steady")
        w.wait(lambda: fills("steady") >= steady_then + 2, 30, "the other trading on")
        assert procs["engine"].poll() is None  # no OOM, no restart
        log = (settings.log_dir / "engine.log").read_text()
        assert "stopped by the engine's memory limit" in log
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=15)
        w.close()
