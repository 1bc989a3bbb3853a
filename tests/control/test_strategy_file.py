"""``config/strategies.toml`` as the command layer changes it: checked as ``config check``
checks it, written with the operator's comments kept, and read back by the settings
(``enabled`` switches the strategies that run; neither it nor a schedule is a parameter)."""

from __future__ import annotations

import multiprocessing
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mytrading.control.actions import Caller, Control
from mytrading.control.record import CommandRecord
from mytrading.control.strategyfile import StrategyFile, parse_values
from mytrading.messaging import wire
from mytrading.settings import PROJECT_ROOT, ConfigError, Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    cfg = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", cfg)
    return Settings(
        config_dir=cfg,
        strategies=["sma_crossover", "rsi_mean_reversion"],
        strategy_params={"sma_crossover": {"slow": 30}},
    )


def test_a_change_is_checked_before_a_byte_is_written(settings: Settings) -> None:
    f = StrategyFile(settings)
    before = f.path.read_bytes()
    assert f.problem("sma_crossover", {"lots": 2}) == ""
    assert f.problem("sma_crossover", {"lots": "many"}).startswith("lots: ")
    assert f.problem("sma_crossover", {"fastt": 3}).startswith("fastt: Extra inputs")
    assert "set by MT_STRATEGY_PARAMS" in f.problem("sma_crossover", {"slow": 40})
    assert "not a parameter" in f.problem("sma_crossover", {"enabled": False})
    nope = f.problem("nope")
    assert nope.startswith("no strategy 'nope'") and "sma_crossover" in nope
    assert f.path.read_bytes() == before


def test_written_with_the_comments_kept_and_read_back(settings: Settings) -> None:
    f = StrategyFile(settings)
    f.write("sma_crossover", params={"lots": 3, "fast": 8})
    f.write("rsi_mean_reversion", enabled=False)
    f.write("equity_momentum", enabled=True)
    text = f.path.read_text()
    assert "# SMA periods, in bars" in text and "# Parameters of the strategies" in text
    p = settings.params_for("sma_crossover")
    assert (p["lots"], p["fast"], p["slow"]) == (3, 8, 30)  # slow: MT_STRATEGY_PARAMS's
    assert "enabled" not in settings.params_for("rsi_mean_reversion")
    assert settings.enabled_strategies() == ["sma_crossover", "equity_momentum"]
    assert not list(f.path.parent.glob(".strategies.*"))  # no temporary file left

    f.path.write_text(f.path.read_text() + '\n[tick_echo]\nenabled = "yes"\n')
    with pytest.raises(ConfigError, match="enabled must be true or false"):
        settings.enabled_strategies()


def test_key_value_words() -> None:
    assert parse_values(["fast=8", "ratio=2.5", "on=true", "u=NIFTY", 'v="a b"']) == {
        "fast": 8,
        "ratio": 2.5,
        "on": True,
        "u": "NIFTY",
        "v": "a b",
    }
    assert "KEY=VALUE" in str(parse_values(["fast"]))
    assert "KEY=VALUE" in str(parse_values(["=3"]))


class _View:
    """The running stack as the command layer sees it: risk and an engine running
    ``sma_crossover`` flat; its command pipe full or not."""

    def __init__(self, pipe_full: bool) -> None:
        self.pipe_full = pipe_full
        self.sent: list[wire.Command] = []

    def daemons(self) -> dict[str, wire.Status]:
        def beat(name: str, detail: dict[str, Any]) -> wire.Status:
            return wire.Status(name=name, pid=1, state="running", started_ns=0, uptime_s=1.0,
                               msgs_in=0, msgs_out=0, errors=0, gaps=0, lat_p50_us=0.0,
                               lat_p99_us=0.0, detail=detail)  # fmt: skip

        engine = {"sma_crossover": {"params": {"fast": 5}, "positions": {}, "open_orders": 0}}
        risk = beat("risk", {"states": {}})
        return {"risk": risk, "engine": beat("engine", {"strategies": engine})}

    def positions(self) -> list[wire.PositionSnapshot]:
        return []

    def fills(self) -> list[wire.Fill] | None:
        return []

    def send(self, cmd: wire.Command) -> bool:
        self.sent.append(cmd)
        return not self.pipe_full

    def refresh(self, seconds: float) -> None:
        """Nothing comes: the change is not confirmed (not what this test is about)."""


def test_a_change_risk_could_not_take_leaves_the_file_as_it_was(
    settings: Settings, tmp_path: Path
) -> None:
    """``control params``/``enable``/``disable`` answer "nothing was changed" when risk's
    command pipe is full: the file is as it was (it was written first and left changed)."""
    f = StrategyFile(settings)
    before = f.path.read_bytes()
    record = CommandRecord(tmp_path / "control.sqlite")
    caller = Caller("cli:test", "cli")
    for full in (True, False):
        view = _View(pipe_full=full)
        ctl = Control(view, record, caller, ["sma_crossover"], clock=_fast_clock(),
                      strategy_file=f)  # fmt: skip
        got = ctl.set_params("sma_crossover", {"fast": 8})
        assert len(view.sent) == 1
        if full:
            assert not got.ok and "nothing was changed" in got.text, got
            assert f.path.read_bytes() == before
            enabled = ctl.enable("rsi_mean_reversion")
            assert not enabled.ok and "nothing was changed" in enabled.text
            assert f.path.read_bytes() == before
        else:  # handed over (not confirmed here): written, so a restart keeps it
            assert settings.params_for("sma_crossover")["fast"] == 8
    record.close()


def _fast_clock() -> Callable[[], float]:
    """A clock for the confirmation wait that ends it at once."""
    t = [0.0]

    def clock() -> float:
        t[0] += 10.0
        return t[0]

    return clock


def _change_in_a_process(config_dir: str, name: str, key: str, value: int, go: Any) -> None:
    go.wait()
    s = Settings(config_dir=Path(config_dir), strategies=["sma_crossover"])
    for i in range(20):
        StrategyFile(s).write(name, params={key: value + i})


def test_changes_from_two_processes_at_once_are_both_kept(settings: Settings) -> None:
    """The command line, the API and the bot are three processes writing one file: each
    read-modify-write holds the file's lock, so no change is lost to another's."""
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    cfg = str(settings.config_dir)
    procs = [
        ctx.Process(target=_change_in_a_process, args=(cfg, name, "lots", 2, go))
        for name in ("sma_crossover", "rsi_mean_reversion")
    ]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert settings.params_for("sma_crossover")["lots"] == 21
    assert settings.params_for("rsi_mean_reversion")["lots"] == 21
