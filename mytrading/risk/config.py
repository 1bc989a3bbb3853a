"""Risk's part of the configuration, loaded one way for ``load_config`` (``config check``,
``start``), the risk daemon and every backtest: ``risk.toml`` with the ``MT_RISK_*``
overrides, ``margins.toml`` (every follower grade of ``accounts.toml`` sized by it) and
``charges.toml`` (``risk_files``). Each problem is a ``ConfigError`` naming its file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mytrading.domain.accounts import Accounts
from mytrading.domain.errors import ConfigError
from mytrading.risk.charges import ChargeTable, load_charges
from mytrading.risk.limits import LimitBook, env_overrides, load_limits, refuse_any_hour
from mytrading.risk.margin import MarginTable, load_margins
from mytrading.settings import Settings


@dataclass(frozen=True)
class RiskConfig:
    limits: LimitBook
    margins: MarginTable
    charges: ChargeTable


def risk_files(config_dir: Path, overrides: dict[str, Any]) -> RiskConfig:
    """What risk judges, sizes and charges by: ``risk.toml`` with ``overrides`` on its
    ``[defaults]``, ``margins.toml`` and ``charges.toml``, read the one way the risk
    daemon and a backtest (its sweeps' workers are given the result) read them."""
    limits = load_limits(config_dir / "risk.toml", overrides)
    margins = load_margins(config_dir)
    try:
        charges = load_charges(config_dir)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ConfigError(f"{config_dir / 'charges.toml'}: {exc!r}") from None
    return RiskConfig(limits, margins, charges)


def load_risk_config(s: Settings, accounts: Accounts) -> RiskConfig:
    rc = risk_files(s.config_dir, env_overrides(s))
    refuse_any_hour(s, rc.limits)
    unknown = accounts.grades() - set(rc.margins.sizing if rc.margins else ())
    if unknown:
        raise ConfigError(f"accounts.toml: follower grades not in margins.toml: {unknown}")
    return rc
