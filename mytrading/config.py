"""The whole stack's configuration, loaded and validated in one place: ``load_config``.

Settings (the environment and ``.env``), ``config/accounts.toml``, ``risk.toml`` with the
``MT_RISK_*`` overrides, ``margins.toml``, ``charges.toml``, ``alerts.toml`` and its
channels, the enabled strategies with their parameters (class defaults <
``strategies.toml`` < ``MT_STRATEGY_PARAMS``) and the reference data (the master contract
when synced, else ``instruments.toml``): each loaded by its own module, all of them here,
so ``config check`` and ``start`` refuse a bad file before any process starts. Every
problem is a ``ConfigError`` whose message names the file or setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mytrading.accounts import Accounts, load_accounts
from mytrading.builder.spec import check_files
from mytrading.engine.loader import StrategyLoadError, check
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.errors import ConfigError
from mytrading.master.store import MasterIndex
from mytrading.monitor.channels import Channel, build_channels
from mytrading.monitor.config import AlertConfig, load_alerts
from mytrading.refdata import RefData, RefDataError, load_refdata
from mytrading.risk.charges import ChargeTable
from mytrading.risk.config import load_risk_config
from mytrading.risk.limits import LimitBook
from mytrading.risk.margin import MarginTable
from mytrading.settings import Settings, load_settings


@dataclass(frozen=True)
class StackConfig:
    settings: Settings
    accounts: Accounts
    limits: LimitBook
    margins: MarginTable
    charges: ChargeTable
    alerts: AlertConfig
    channels: list[Channel]  # the enabled alert channels, each usable
    # enabled strategy name -> (its class, its validated parameters)
    strategies: dict[str, tuple[type[BaseStrategy[Any]], StrategyParams]]
    refdata: RefData


def load_config(s: Settings | None = None) -> StackConfig:
    """Everything the stack is configured with, validated; ``ConfigError`` on the first
    problem, naming where it is."""
    s = s or load_settings()
    strategies = load_strategies(s)  # first: a broken strategy is the likeliest mistake
    alerts = load_alerts(s.config_dir / "alerts.toml")
    channels, problems = build_channels(alerts, s)
    if problems:
        raise ConfigError("config/alerts.toml: " + "; ".join(problems))
    accounts = load_accounts(s)
    risk = load_risk_config(s, accounts)
    try:
        refdata = load_refdata(s.config_dir, MasterIndex.load(s.instruments_db))
    except RefDataError as exc:
        raise ConfigError(f"reference data: {exc}") from None
    bad = check_files(s.strategies_dir, set(refdata.underlyings), set(strategies))
    if bad:
        raise ConfigError("\n".join(bad.values()))
    return StackConfig(
        settings=s,
        accounts=accounts,
        limits=risk.limits,
        margins=risk.margins,
        charges=risk.charges,
        alerts=alerts,
        channels=channels,
        strategies=strategies,
        refdata=refdata,
    )


def load_strategies(
    s: Settings,
) -> dict[str, tuple[type[BaseStrategy[Any]], StrategyParams]]:
    """The enabled strategies (``MT_STRATEGIES``) with their validated parameters (a
    backtest needs only these)."""
    s.check_strategy_tables()
    try:
        classes = check(s.strategies_dir, s.strategies)
    except StrategyLoadError as exc:
        raise ConfigError(f"MT_STRATEGIES: {exc}") from None
    out: dict[str, tuple[type[BaseStrategy[Any]], StrategyParams]] = {}
    for cls in classes:
        try:
            out[cls.name] = (cls, cls.Params(**s.params_for(cls.name)))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise ConfigError(f"strategy parameters: {cls.name}: {exc}") from None
    return out
