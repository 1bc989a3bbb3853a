"""The whole stack's configuration, in one object every process loads the same way:
``StackConfig``.

Settings (the environment and ``.env``), ``config/accounts.toml``, ``risk.toml`` with the
``MT_RISK_*`` overrides, ``margins.toml``, ``charges.toml``, ``alerts.toml`` and its
channels, the enabled strategies with their parameters (class defaults <
``strategies.toml`` < ``MT_STRATEGY_PARAMS``) and the reference data (the master contract
when synced, else ``instruments.toml``): each section loaded by its own module, on first
use, and kept. ``load_config`` loads every section (``config check`` and ``start``
refuse a bad file before any process starts); a daemon, the backtest (its sweeps' workers
are handed what it loaded) and the builder use the sections they need of the same object
(``for_process``), so what ``config check`` validated is what a restarted daemon loads.
Every problem is a ``ConfigError`` whose message names the file or setting.

``provenance()`` says where each value came from (the environment, ``.env`` or its
default; each file with a digest of its content), and ``fingerprint()`` folds it into
one short digest: ``config check`` prints it and every process logs it at start, so an
operator can see that a daemon runs the configuration that was checked.
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from mytrading.domain.accounts import Accounts, load_accounts
from mytrading.domain.errors import ConfigError
from mytrading.domain.refdata import RefData, RefDataError, load_refdata
from mytrading.settings import Settings, dotenv, load_settings, variables

if TYPE_CHECKING:
    from mytrading.control.config import ControlConfig
    from mytrading.engine.strategy import BaseStrategy, StrategyParams
    from mytrading.monitor.channels import Channel
    from mytrading.monitor.config import AlertConfig
    from mytrading.risk.charges import ChargeTable
    from mytrading.risk.config import RiskConfig
    from mytrading.risk.limits import LimitBook
    from mytrading.risk.margin import MarginTable
    from mytrading.risk.schedule import Schedule

# the files a configuration is made of, under MT_CONFIG_DIR (instruments, sessions and
# holidays make the reference data; a missing optional file is said as such)
FILES = (
    "accounts.toml",
    "risk.toml",
    "margins.toml",
    "charges.toml",
    "alerts.toml",
    "strategies.toml",
    "instruments.toml",
    "sessions.toml",
    "holidays.toml",
    "stocks.toml",
)


# settings the launcher gives each start, not part of what is configured
PER_START = frozenset({"clock_anchor_ns"})


class StackConfig:
    """One process's configuration: the settings, and each section loaded on first use
    (an import of a section's module happens then too, so a router never imports the
    strategies' code)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def accounts(self) -> Accounts:
        return load_accounts(self.settings)

    @cached_property
    def risk(self) -> RiskConfig:
        from mytrading.risk.config import load_risk_config

        return load_risk_config(self.settings, self.accounts)

    def backtest_risk(self, overrides: dict[str, Any]) -> RiskConfig:
        """What a backtest judges, sizes and charges by: risk's files read as the risk
        daemon reads them (``risk_files``), ``overrides`` (the run's, the ``MT_RISK_*``
        settings among them) on their ``[defaults]``. No accounts: a backtest trades one
        simulated account."""
        from mytrading.risk.config import risk_files

        return risk_files(self.settings.config_dir, overrides)

    @property
    def limits(self) -> LimitBook:
        return self.risk.limits

    @property
    def margins(self) -> MarginTable:
        return self.risk.margins

    @property
    def charges(self) -> ChargeTable:
        return self.risk.charges

    @cached_property
    def alerts(self) -> AlertConfig:
        from mytrading.monitor.config import load_alerts

        return load_alerts(self.settings.config_dir / "alerts.toml")

    @cached_property
    def control(self) -> ControlConfig:
        """``config/control.toml``: the Telegram bot's allowed users (off when absent)."""
        from mytrading.control.config import load_control

        return load_control(self.settings.config_dir / "control.toml")

    @cached_property
    def schedules(self) -> dict[str, Schedule]:
        """The enabled strategies' schedules (``[name.schedule]`` in strategies.toml)."""
        from mytrading.risk.schedule import schedules_of

        return schedules_of(self.settings, self.refdata)

    @cached_property
    def channels(self) -> list[Channel]:
        """The enabled alert channels, each usable."""
        from mytrading.monitor.channels import build_channels

        channels, problems = build_channels(self.alerts, self.settings)
        if problems:
            raise ConfigError("config/alerts.toml: " + "; ".join(problems))
        return channels

    @cached_property
    def strategies(self) -> dict[str, tuple[type[BaseStrategy[Any]], StrategyParams]]:
        """The enabled strategies (``MT_STRATEGIES``), each class with its validated
        parameters. Strict: the engine, which keeps the others trading when one does not
        load, reads the files itself (``engine/loader.py``) with the same parameters
        (``settings.params_for``)."""
        return load_strategies(self.settings)

    @cached_property
    def refdata(self) -> RefData:
        from mytrading.master.store import MasterIndex

        try:
            return load_refdata(
                self.settings.config_dir, MasterIndex.load(self.settings.stores.instruments_db)
            )
        except RefDataError as exc:
            raise ConfigError(f"reference data: {exc}") from None

    def check_builder_files(self) -> None:
        """Every builder strategy file (enabled or not) against the reference data."""
        from mytrading.builder.spec import check_files

        bad = check_files(
            self.settings.strategies_dir, set(self.refdata.underlyings), set(self.strategies)
        )
        if bad:
            raise ConfigError("\n".join(bad.values()))

    def load_all(self) -> StackConfig:
        """Every section, in the order a mistake is likeliest (a strategy first)."""
        _ = self.strategies
        _ = self.channels
        _ = self.control
        _ = self.schedules
        _ = self.accounts
        _ = self.risk
        _ = self.refdata
        self.check_builder_files()
        return self

    # ------------------------------------------------------------------ provenance

    def provenance(self) -> dict[str, str]:
        """Where each value came from: ``MT_X`` -> ``environment``, ``.env`` or
        ``default``; each configuration file -> ``<path> sha256:<12 hex>`` (or
        ``absent``). Secrets are named, never shown."""
        dotenv = _dotenv()
        out: dict[str, str] = {}
        for var, *_ in variables():
            out[var] = (
                "environment" if var in os.environ else ".env" if var in dotenv else "default"
            )
        for name in FILES:
            path = self.settings.config_dir / name
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            except OSError:
                out[name] = f"{path} absent"
                continue
            out[name] = f"{path} sha256:{digest}"
        return out

    def fingerprint(self) -> str:
        """One digest of every setting's value and every file's content: equal in every
        process that runs the same configuration. Secrets enter as digests."""
        h = hashlib.sha256()
        for k, v in sorted(_values(self.settings).items()):
            if k not in PER_START:
                h.update(f"{k}={v}\n".encode())
        for name in FILES:
            path = self.settings.config_dir / name
            h.update(name.encode() + (path.read_bytes() if path.exists() else b"<absent>"))
        return h.hexdigest()[:12]


def _values(model: Any, prefix: str = "") -> dict[str, str]:
    """A settings model's values as text, a secret as a digest of it (never itself)."""
    out: dict[str, str] = {}
    for name in type(model).model_fields:
        v = getattr(model, name)
        if isinstance(v, SecretStr):
            v = "sha256:" + hashlib.sha256(v.get_secret_value().encode()).hexdigest()[:12]
        elif hasattr(type(v), "model_fields"):
            out.update(_values(v, f"{prefix}{name}."))
            continue
        out[prefix + name] = str(v)
    return out


def _dotenv() -> dict[str, str | None]:
    return dotenv()


def for_process(s: Settings | None = None) -> StackConfig:
    """A process's configuration: its sections load as it uses them."""
    return StackConfig(s or load_settings())


def load_config(s: Settings | None = None) -> StackConfig:
    """Everything the stack is configured with, validated; ``ConfigError`` on the first
    problem, naming where it is."""
    return for_process(s).load_all()


def load_strategies(
    s: Settings,
) -> dict[str, tuple[type[BaseStrategy[Any]], StrategyParams]]:
    """The enabled strategies (``MT_STRATEGIES``) with their validated parameters (a
    backtest needs only these)."""
    from mytrading.engine.loader import StrategyLoadError, check

    s.check_strategy_tables()
    try:
        classes = check(s.strategies_dir, s.enabled_strategies())
    except StrategyLoadError as exc:
        raise ConfigError(f"MT_STRATEGIES: {exc}") from None
    out: dict[str, tuple[type[BaseStrategy[Any]], StrategyParams]] = {}
    for cls in classes:
        try:
            out[cls.name] = (cls, cls.Params(**s.params_for(cls.name)))
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise ConfigError(f"strategy parameters: {cls.name}: {exc}") from None
    return out
