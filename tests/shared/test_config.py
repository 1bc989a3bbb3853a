"""``load_config``: the whole configuration as one validated object, and a mistake in any
file named by the error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mytrading.config import load_config
from mytrading.errors import ConfigError
from mytrading.settings import PROJECT_ROOT, Settings, load_settings


def test_the_shipped_configuration_loads_whole(settings: Settings) -> None:
    s = load_settings(strategies=["sma_crossover", "rsi_mean_reversion"])
    cfg = load_config(s)
    assert cfg.settings is s and "main" in cfg.accounts.by_name
    cls, params = cfg.strategies["sma_crossover"]
    assert cls.name == "sma_crossover" and isinstance(params, cls.Params)
    assert set(cfg.strategies) == {"sma_crossover", "rsi_mean_reversion"}
    assert cfg.refdata.underlying("NIFTY").lot_size > 0
    assert cfg.limits.defaults is not None and cfg.charges is not None
    assert cfg.margins is not None and cfg.alerts is not None


@pytest.mark.parametrize(
    "file, append, env, expect",
    [
        ("alerts.toml", "\n[channels.nope]\nenabled = true\n", {}, "alerts.toml"),
        (
            "strategies.toml",
            "",
            {"strategy_params": {"sma_crossover": {"fast": 0}}},
            "sma_crossover: ",
        ),
        ("instruments.toml", "\n[overrides.NIFTY]\nlot = 1\n", {}, "reference data:"),
        ("risk.toml", "\n[strategies.x]\nmax_loss = -5\n", {}, "risk.toml"),
    ],
)
def test_a_mistake_in_any_file_is_named(
    tmp_env: dict[str, str], tmp_path: Path, file: str, append: str, env: dict[str, str],
    expect: str,
) -> None:  # fmt: skip
    cfg = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", cfg)
    (cfg / file).write_text((cfg / file).read_text() + append)
    s = load_settings(config_dir=cfg, strategies=["sma_crossover"], **env)
    with pytest.raises(ConfigError, match=expect):
        load_config(s)
