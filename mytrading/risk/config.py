"""Risk's part of the configuration, loaded one way for ``load_config`` (``config check``,
``start``) and for the risk daemon: ``risk.toml`` with the ``MT_RISK_*`` overrides,
``margins.toml`` (every follower grade of ``accounts.toml`` sized by it) and
``charges.toml``. Each problem is a ``ConfigError`` naming its file."""

from __future__ import annotations

from dataclasses import dataclass

from mytrading.accounts import Accounts
from mytrading.errors import ConfigError
from mytrading.risk.charges import ChargeTable, load_charges
from mytrading.risk.limits import LimitBook, limits_for
from mytrading.risk.margin import MarginTable, load_margins
from mytrading.settings import Settings


@dataclass(frozen=True)
class RiskConfig:
    limits: LimitBook
    margins: MarginTable
    charges: ChargeTable


def load_risk_config(s: Settings, accounts: Accounts) -> RiskConfig:
    limits = limits_for(s)
    margins = load_margins(s.config_dir)
    unknown = accounts.grades() - set(margins.sizing if margins else ())
    if unknown:
        raise ConfigError(f"accounts.toml: follower grades not in margins.toml: {unknown}")
    try:
        charges = load_charges(s.config_dir)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ConfigError(f"{s.config_dir / 'charges.toml'}: {exc!r}") from None
    return RiskConfig(limits, margins, charges)
