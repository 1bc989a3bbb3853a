"""``load_config``: the whole configuration as one validated object, and a mistake in any
file named by the error."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from mytrading.config import load_config
from mytrading.domain.errors import ConfigError
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


def test_a_backtest_and_its_sweep_run_the_processs_configuration(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 34: the backtest takes risk's files from the process's ``StackConfig`` (the
    loaders the risk daemon uses, the ``MT_RISK_*`` settings on them), and a sweep's jobs
    carry what the parent loaded: a worker reads nothing again from a path."""
    from datetime import date

    from mytrading.backtest.session import Request, prepare
    from mytrading.backtest.sweep import jobs_for
    from mytrading.config import for_process

    monkeypatch.setenv("MT_RISK_MAX_ORDER_LOTS", "1")
    s = load_settings()
    p = prepare(s, Request(["sma_crossover"], date(2026, 11, 2), date(2026, 11, 3)))
    cfg = for_process(s)
    assert p.risk.limits.as_dict() == cfg.limits.as_dict()  # what the risk daemon loads
    assert p.risk.limits.defaults.max_order_lots == 1
    for mine, daemons in ((p.risk.margins, cfg.margins), (p.risk.charges, cfg.charges)):
        assert pickle.dumps(mine) == pickle.dumps(daemons)  # the same tables, loaded once each
    jobs = jobs_for(p, {"fast": ["3", "4"]})
    assert len(jobs) == 2 and all(j.risk is p.risk and j.refdata is p.refdata for j in jobs)
    assert not any("config" in f for f in type(jobs[0]).__dataclass_fields__)
