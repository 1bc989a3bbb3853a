"""``config/alerts.toml``: the alert rules and the channels they go to.

Every rule has a severity, a threshold where it has one, how often a condition still on
is said again (``repeat_s``), the least time between two messages of one rule and subject
(``min_gap_s``: a flapping condition is said once per gap, not at every flap) and the
message sent when it clears (``recovery``). A rule can be switched off (``enabled``).

Channels: ``openalgo_telegram`` (OpenAlgo's own ``telegram/notify`` endpoint, with the
stack's API key and the OpenAlgo login ``username``), ``telegram_bot`` (a bot token,
from the environment variable ``token_env``, and a ``chat_id``), ``webhook`` (any URL
taking Slack- or Discord-style JSON: ``text`` and ``content``). Secrets never live in
the file: only the names of the variables that hold them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mytrading.domain.errors import problems
from mytrading.settings import ConfigError

Severity = Literal["info", "warning", "critical"]

RULES = (
    "daemon_down",
    "daemon_restart",
    "unknown_order",
    "recon_mismatch",
    "coverage_low",
    "feed_failover",
    "risk_trigger",
    "rejection_burst",
    "daily_loss",
    "kill_switch",
    "webhook_refusals",
    "memory_growth",
    "journal_damage",
    "journal_unwritable",
    "disk_low",
    "session_expired",
    "strategy_halted",
    "missed_start",
    "account_unreachable",
    "feed_lag",
    "clock_offset",
    "late_ticks",
    "recording_held",
    "shadow_gap",
    "morning_check",
    "eod_report",
)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity = "warning"
    threshold: float = 0.0  # the rule's own meaning: seconds, a share, a count
    window_s: float = Field(60.0, gt=0)  # bursts: counted over this long
    repeat_s: float = Field(900.0, ge=0)  # 0: never again while on
    min_gap_s: float = Field(60.0, ge=0)
    recovery: str = "cleared"
    at: str = Field("", pattern=r"^$|^([01]\d|2[0-3]):[0-5]\d$")  # a time of day (IST)
    shadow: bool = True  # eod_report: the day's shadow in the report (``monitor/shadowrun.py``)
    window_days: int = Field(5, ge=1)  # shadow_gap: the reported days it sums over


class OpenAlgoTelegram(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    username: str = ""  # the OpenAlgo login, not the Telegram handle
    host: str = ""  # default: the stack's OpenAlgo (MT_OPENALGO_HOST)


class TelegramBot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    token_env: str = "MT_TELEGRAM_BOT_TOKEN"
    chat_id: str = ""
    api: str = "https://api.telegram.org"


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    url: str = ""
    url_env: str = ""  # a URL holding a secret (Slack's, Discord's) can come from here


class Channels(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    openalgo_telegram: OpenAlgoTelegram = OpenAlgoTelegram()
    telegram_bot: TelegramBot = TelegramBot()
    webhook: Webhook = Webhook()


class AlertConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: Channels = Channels()
    rules: dict[str, Rule] = {}

    def rule(self, name: str) -> Rule:
        return self.rules.get(name) or Rule()


def load_alerts(path: Path) -> AlertConfig:
    """The file, validated; unknown rules or keys are an error naming them."""
    if not path.exists():
        return AlertConfig()
    try:
        data = tomllib.loads(path.read_text())
        cfg = AlertConfig(**data)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path.name}: {problems(exc)}") from None
    unknown = set(cfg.rules) - set(RULES)
    if unknown:
        raise ConfigError(f"{path.name}: unknown rules {sorted(unknown)}; known: {list(RULES)}")
    return cfg
