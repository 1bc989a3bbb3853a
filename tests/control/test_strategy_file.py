"""``config/strategies.toml`` as the command layer changes it: checked as ``config check``
checks it, written with the operator's comments kept, and read back by the settings
(``enabled`` switches the strategies that run; neither it nor a schedule is a parameter)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mytrading.control.strategyfile import StrategyFile, parse_values
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
