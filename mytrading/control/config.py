"""``config/control.toml``: who may command the stack from Telegram.

::

    [telegram]
    enabled = true
    token_env = "MT_TELEGRAM_CONTROL_TOKEN"   # the variable holding the bot's token
    allowed_users = [123456789]              # Telegram user ids
    allowed_chats = []                       # optional: only these chats as well
    api = "https://api.telegram.org"          # the Bot API (a stand-in in the tests)

A missing file is the bot off. ``config check`` loads it through ``StackConfig.control``;
a bad value is an error naming the key, and an enabled bot without a token in its
variable or without one allowed user is refused before anything starts (a bot that
anyone may command is never started by default).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mytrading.domain.errors import problems
from mytrading.settings import ConfigError

TOKEN_RE = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")  # BotFather's "<bot id>:<secret>"


class TelegramControl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    token_env: str = Field("MT_TELEGRAM_CONTROL_TOKEN", pattern=r"^[A-Z_][A-Z0-9_]*$")
    """The environment variable holding the bot's token (never the token itself)."""
    api: str = Field("https://api.telegram.org", pattern=r"^https?://[^\s/]+(:\d+)?/?$")
    """The Bot API's base URL."""
    allowed_users: list[int] = Field(default_factory=list)
    """Telegram user ids that may command the stack."""
    allowed_chats: list[int] = Field(default_factory=list)
    """Optional: commands only from these chats (empty: any chat of an allowed user)."""
    confirm_s: float = Field(60.0, gt=0, le=600)
    """How long a confirmation button stays good."""

    def token(self) -> str:
        return os.environ.get(self.token_env, "")


class ControlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    telegram: TelegramControl = TelegramControl()

    def problems(self) -> list[str]:
        """What stops an enabled bot from starting safely."""
        t = self.telegram
        if not t.enabled:
            return []
        out = []
        if not t.allowed_users:
            out.append("telegram.allowed_users: empty (a bot anyone may command is refused)")
        token = t.token()
        if not token:
            out.append(f"telegram: no token in {t.token_env}")
        elif not TOKEN_RE.match(token):
            out.append(f"telegram: the token in {t.token_env} is malformed")
        return out


def load_control(path: Path) -> ControlConfig:
    """The file, validated (a missing file: the bot off)."""
    if not path.exists():
        return ControlConfig()
    try:
        cfg = ControlConfig(**tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path.name}: {problems(exc)}") from None
    bad = cfg.problems()
    if bad:
        raise ConfigError(f"{path.name}: " + "; ".join(bad))
    return cfg
