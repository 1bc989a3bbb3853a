"""Bad configuration stops start-up with exit code 2 and a message naming the variable."""

from __future__ import annotations

import os

import pytest

from mytrading.settings import PROJECT_ROOT, ConfigError, load_settings
from tests.procs import run_cli


@pytest.mark.parametrize(
    "var, value, expect",
    [
        ("MT_MODE", "yolo", "MT_MODE: Input should be 'live', 'paper', 'backtest' or 'dry_run'"),
        ("MT_SIM_SPEED", "0", "MT_SIM_SPEED: Input should be greater than 0"),
        ("MT_RISK_MAX_ORDER_LOTS", "lots", "MT_RISK_MAX_ORDER_LOTS"),
        ("MT_BUS_TRANSPORT", "udp", "MT_BUS_TRANSPORT: Input should be 'ipc' or 'tcp'"),
        ("MT_STRATEGY_PARAMS", "{not json", "MT_STRATEGY_PARAMS: must be a JSON object"),
        ("MT_BUS_ENDPOINTS", '{"pub.nope": "tcp://x:1"}', "MT_BUS_ENDPOINTS: unknown bus endpoint"),
        ("MT_STRATEGIES", "no_such_strategy", "MT_STRATEGIES"),
        ("MT_STRATEGY_PARAMS", '{"sma_crossover": {"fastt": 3}}', "fastt"),
    ],
)
def test_bad_value_exits_2_naming_the_variable(
    tmp_env: dict[str, str], var: str, value: str, expect: str
) -> None:
    for cmd in (("config", "check"), ("start",)):
        r = run_cli(*cmd, env={**tmp_env, var: value})
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        assert expect in r.stderr, r.stderr
    # start refused before any process started: no supervisord pid file, no sockets
    assert not os.path.exists(os.path.join(tmp_env["MT_RUN_DIR"], "supervisord.pid"))


def test_backtest_mode_runs_a_backtest_instead_of_the_daemons(tmp_env: dict[str, str]) -> None:
    r = run_cli("run", env={**tmp_env, "MT_MODE": "backtest"})
    assert r.returncode == 0, r.stderr
    assert "Net P&L" in r.stdout and "report:" in r.stdout
    assert not os.path.exists(os.path.join(tmp_env["MT_RUN_DIR"], "supervisord.pid"))


def test_good_config_passes(tmp_env: dict[str, str]) -> None:
    r = run_cli("config", "check", env=tmp_env)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout and "sma_crossover" in r.stdout


def test_secret_is_never_shown(tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MT_OPENALGO_API_KEY", "sekrit-123")
    s = load_settings()
    assert "sekrit-123" not in repr(s) and "sekrit-123" not in str(s.model_dump())
    monkeypatch.setenv("MT_MODE", "bad")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "sekrit-123" not in str(err.value)


def test_env_template_documents_every_setting_and_loads(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from mytrading.settings import Settings

    text = (PROJECT_ROOT / "env_template.txt").read_text()
    documented = set(re.findall(r"^#? ?(MT_[A-Z0-9_]+)=", text, re.M))
    fields = {f"MT_{name.upper()}" for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from env_template.txt"
    assert documented - fields == set(), "env_template.txt names unknown settings"
    monkeypatch.delenv("MT_STRATEGIES")  # the test default; the template's must show
    s = Settings(_env_file=PROJECT_ROOT / "env_template.txt")  # type: ignore[call-arg]
    assert s.strategies == [
        "sma_crossover",
        "rsi_mean_reversion",
        "supertrend_trend",
        "nifty_short_straddle",
    ]
    assert s.strategy_params == {} and s.strategy_max_errors == 5
    # parameters come from config/strategies.toml, then MT_STRATEGY_PARAMS per key
    assert s.params_for("sma_crossover")["slow"] == 20
    s2 = Settings(strategy_params={"sma_crossover": {"slow": 30}})
    assert s2.params_for("sma_crossover") == {**s.params_for("sma_crossover"), "slow": 30}
    assert s.mode == "paper" and s.broker == "sim"


def test_an_unknown_stock_to_quote_is_a_config_error(tmp_env: dict[str, str]) -> None:
    from tests.procs import run_cli

    for bad, why in (("NOPE", "unknown underlying 'NOPE'"), ("NIFTY", "not a stock")):
        r = run_cli("config", "check", env={**tmp_env, "MT_SIM_STOCKS": bad})
        assert r.returncode == 2 and "MT_SIM_STOCKS" in r.stderr and why in r.stderr, r.stderr
