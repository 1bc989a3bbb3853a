"""Bad configuration stops start-up with exit code 2 and a message naming the variable."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mytrading.settings import PROJECT_ROOT, ConfigError, load_settings
from tests.procs import cli


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
        ("MT_STRATEGIES", "nifty scalper", "MT_STRATEGIES: 'nifty scalper' is not a valid name"),
        # a strategy's own cross-field check runs with its parameters, not at on_start
        (
            "MT_STRATEGY_PARAMS",
            '{"sma_crossover": {"fast": 50, "slow": 20}}',
            "fast (50) must be shorter than slow (20)",
        ),
        ("MT_STRATEGY_PARAMS", '{"sma_crossover": {"product": "NRMl"}}', "product"),
    ],
)
def test_bad_value_exits_2_naming_the_variable(
    tmp_env: dict[str, str], var: str, value: str, expect: str
) -> None:
    for cmd in (("config", "check"), ("start",)):
        r = cli(*cmd, env={**tmp_env, var: value})
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        assert expect in r.stderr, r.stderr
    # start refused before any process started: no supervisord pid file, no sockets
    assert not os.path.exists(os.path.join(tmp_env["MT_RUN_DIR"], "supervisord.pid"))


def test_backtest_mode_runs_a_backtest_instead_of_the_daemons(tmp_env: dict[str, str]) -> None:
    r = cli("run", env={**tmp_env, "MT_MODE": "backtest"})
    assert r.returncode == 0, r.stderr
    assert "Net P&L" in r.stdout and "report:" in r.stdout
    assert not os.path.exists(os.path.join(tmp_env["MT_RUN_DIR"], "supervisord.pid"))


def test_good_config_passes(tmp_env: dict[str, str]) -> None:
    r = cli("config", "check", env=tmp_env)
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

    from mytrading.settings import FaultSwitches, Settings, variables
    from mytrading.settings.sections import SECTIONS

    text = (PROJECT_ROOT / "env_template.txt").read_text()
    documented = set(re.findall(r"^#? ?(MT_[A-Z0-9_]+)=", text, re.M))
    fields = {var for var, *_ in variables()}  # the stack's and every section's
    fields |= {f"MT_{name.upper()}" for name in FaultSwitches.model_fields}  # tests' hooks
    assert fields - documented == set(), "settings missing from env_template.txt"
    assert documented - fields == set(), "env_template.txt names unknown settings"
    monkeypatch.delenv("MT_STRATEGIES")  # the test default; the template's must show
    template = PROJECT_ROOT / "env_template.txt"
    s = Settings(
        _env_file=template,  # type: ignore[call-arg]
        **{name: model(_env_file=template) for name, model in SECTIONS.items()},  # type: ignore[call-arg]
    )
    assert s.strategies == [
        "sma_crossover",
        "rsi_mean_reversion",
        "supertrend_trend",
        "nifty_short_straddle",
    ]
    assert s.strategy_params == {} and s.engine.strategy_max_errors == 5
    # parameters come from config/strategies.toml, then MT_STRATEGY_PARAMS per key
    assert s.params_for("sma_crossover")["slow"] == 20
    s2 = Settings(strategy_params={"sma_crossover": {"slow": 30}})
    assert s2.params_for("sma_crossover") == {**s.params_for("sma_crossover"), "slow": 30}
    assert s.mode == "paper" and s.broker == "sim"


def test_an_unknown_stock_to_quote_is_a_config_error(tmp_env: dict[str, str]) -> None:
    from tests.procs import cli

    for bad, why in (("NOPE", "unknown underlying 'NOPE'"), ("NIFTY", "not a stock")):
        r = cli("config", "check", env={**tmp_env, "MT_SIM_STOCKS": bad})
        assert r.returncode == 2 and "MT_SIM_STOCKS" in r.stderr and why in r.stderr, r.stderr


def test_names_follow_one_rule_and_a_broken_file_nobody_enabled_stops_nothing(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    shutil.copy(PROJECT_ROOT / "strategies" / "sma_crossover.py", strategies)
    (strategies / "draft.py").write_text("class Draft(BaseStrategy:\n    name = 'draft'\n")
    env = {**tmp_env, "MT_STRATEGIES_DIR": str(strategies)}
    r = cli("config", "check", env=env)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stderr
    (strategies / "scalper.py").write_text(
        "from mytrading.engine.strategy import BaseStrategy\n\n\n"
        "class Scalper(BaseStrategy):\n    name = 'nifty scalper'\n"
    )
    r = cli("config", "check", env=env)
    assert r.returncode == 2
    assert f"{strategies / 'scalper.py'}: declares a strategy named 'nifty scalper'" in r.stderr
    assert "lowercase letters, digits and _, 1-32 characters" in r.stderr


@pytest.mark.parametrize(
    "table, expect",
    [
        ("[strategies.'nifty scalper']\nlead = 'main'\n", "'nifty scalper' is not a valid name"),
        ("[strategies.Scalper]\nlead = 'main'\n", "'Scalper' is not a valid name"),
    ],
)
def test_accounts_and_risk_files_name_strategies_by_the_rule(
    tmp_env: dict[str, str], tmp_path: Path, table: str, expect: str
) -> None:
    from mytrading.domain.accounts import load_accounts
    from mytrading.risk.limits import load_limits

    path = tmp_path / "accounts.toml"
    path.write_text(table)
    with pytest.raises(ConfigError, match=expect):
        load_accounts(load_settings(accounts_file=path))
    risk = tmp_path / "risk.toml"
    risk.write_text(table.replace("lead = 'main'", "max_loss = 5"))
    with pytest.raises(ConfigError, match=expect):
        load_limits(risk, {})


def test_a_remote_openalgo_must_use_tls_unless_named(tmp_env: dict[str, str]) -> None:
    from mytrading.domain.accounts import load_accounts

    real = {"broker": "openalgo", "sim_server": False, "openalgo_api_key": "k"}
    remote = {"openalgo_host": "http://10.1.2.3:5000", "openalgo_ws_url": "wss://10.1.2.3/ws"}
    with pytest.raises(ConfigError, match="plain http to another machine"):
        load_accounts(load_settings(**real, **remote))
    load_accounts(load_settings(**real, **remote, openalgo_plain_http_hosts=["10.1.2.3"]))
    tls = {"openalgo_host": "https://algo.example.in", "openalgo_ws_url": "wss://algo.example.in"}
    assert load_accounts(load_settings(**real, **tls)).by_name["main"].rest_url.startswith("https")
    local = {"openalgo_host": "http://127.0.0.1:5000", "openalgo_ws_url": "ws://localhost:8765"}
    load_accounts(load_settings(**real, **local))  # loopback needs nothing
    with pytest.raises(ConfigError, match="must look like wss://"):
        load_accounts(load_settings(**real, openalgo_host="https://a.in", openalgo_ws_url="a.in"))
    with pytest.raises(ConfigError, match="MT_OPENALGO_HOST: 'bad host' must look like"):
        load_accounts(load_settings(**real, openalgo_host="bad host"))


@pytest.mark.parametrize(
    "file, append, expect",
    [
        ("risk.toml", "\n[strategies.x]\nmax_loss = -5\n", "risk.toml [strategies.x]: max_loss"),
        ("risk.toml", "\n[limits]\n", "unknown tables ['limits']"),
        ("margins.toml", "\nthis is = not toml\n", "margins.toml"),
        ("charges.toml", "\n[brokerage]\nper_order = 'x'\n", "charges.toml"),
        ("control.toml", "\n[other]\n", "control.toml: other: Extra inputs"),
    ],
)
def test_config_check_loads_what_risk_loads(
    tmp_env: dict[str, str], tmp_path: Path, file: str, append: str, expect: str
) -> None:
    """A mistake in risk.toml, margins.toml or charges.toml stops `config check` (exit 2,
    naming the file) instead of the risk daemon at its start."""
    cfg = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", cfg)
    (cfg / file).write_text((cfg / file).read_text() + append)
    r = cli("config", "check", env={**tmp_env, "MT_CONFIG_DIR": str(cfg)})
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.integration
def test_a_daemon_runs_the_configuration_config_check_validated(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    """``config check`` prints a fingerprint of every setting and file; a daemon started
    on the same configuration logs the same one, with where each value came from; a
    changed file changes it."""
    import json
    import re
    import time

    from tests.procs import spawn, stop

    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    env = {**tmp_env, "MT_CONFIG_DIR": str(config), "MT_RISK_MAX_ORDER_LOTS": "7"}
    r = cli("config", "check", env=env)
    assert r.returncode == 0, r.stderr
    checked = re.search(r"configuration OK: fingerprint (\w+)", r.stdout)
    assert checked is not None and "MT_RISK_MAX_ORDER_LOTS (environment)" in r.stdout
    proc = spawn("reconciler", env)
    log = Path(tmp_env["MT_LOG_DIR"]) / "reconciler.log"
    try:
        end = time.monotonic() + 20
        events: dict[str, dict] = {}
        while time.monotonic() < end and "configuration" not in events:
            time.sleep(0.2)
            if log.exists():
                for line in log.read_text().splitlines():
                    e = json.loads(line)
                    events.setdefault(e["event"], e)
        assert events["starting"]["config"] == checked.group(1)
        where = events["configuration"]
        assert where["MT_RISK_MAX_ORDER_LOTS"] == "environment"
        assert where["MT_MODE"] in ("default", "environment")
        assert where["risk.toml"].startswith(f"{config / 'risk.toml'} sha256:")
    finally:
        stop([proc])
    (config / "risk.toml").write_text((config / "risk.toml").read_text() + "\n# changed\n")
    again = cli("config", "check", env=env)
    assert f"fingerprint {checked.group(1)}" not in again.stdout
