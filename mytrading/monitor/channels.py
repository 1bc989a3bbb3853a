"""Where alerts go, each speaking its receiver's protocol over HTTP (stdlib ``urllib``: one
POST per message, on the sender's thread, never the trading path).

* ``openalgo_telegram``: OpenAlgo's ``POST /api/v1/telegram/notify`` with ``apikey``,
  ``username`` (the OpenAlgo login) and ``message``; success is
  ``{"status": "success"}``.
* ``telegram_bot``: Telegram's Bot API ``POST /bot<token>/sendMessage`` with ``chat_id``
  and ``text``; success is ``{"ok": true}``; a 429 carries ``retry_after``.
* ``webhook``: any URL taking JSON; the body has ``text`` (Slack) and ``content``
  (Discord) both, and the alert's ``id`` and ``severity``; any 2xx is success.

A failure raises ``ChannelError`` with what the receiver said; neither the API key, the
bot token nor a webhook URL (which may hold a secret) is ever part of it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any, Protocol

from mytrading.monitor.config import AlertConfig
from mytrading.settings import Settings

TIMEOUT_S = 5.0


class ChannelError(RuntimeError):
    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Channel(Protocol):
    name: str

    def send(self, alert_id: int, severity: str, text: str) -> None: ...


def _post(url: str, body: dict[str, Any], what: str) -> tuple[int, Any]:
    """POST JSON; (status, parsed body or raw text). Errors name ``what``, not the URL."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise ChannelError(f"{what}: unreachable ({type(e).__name__}: {reason})") from None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")[:200]


class OpenAlgoTelegram:
    name = "openalgo_telegram"

    def __init__(self, host: str, api_key: str, username: str) -> None:
        self.url = host.rstrip("/") + "/api/v1/telegram/notify"
        self._key = api_key
        self.username = username

    def send(self, alert_id: int, severity: str, text: str) -> None:
        body = {
            "apikey": self._key,
            "username": self.username,
            "message": text,
            "priority": {"critical": 10, "warning": 5}.get(severity, 1),
        }
        status, got = _post(self.url, body, self.name)
        if status != 200 or not isinstance(got, dict) or got.get("status") != "success":
            msg = got.get("message") if isinstance(got, dict) else got
            raise ChannelError(f"{self.name}: HTTP {status}: {msg}")


class TelegramBot:
    name = "telegram_bot"

    def __init__(self, api: str, token: str, chat_id: str) -> None:
        self._url = f"{api.rstrip('/')}/bot{token}/sendMessage"  # holds the token: never shown
        self.chat_id = chat_id

    def send(self, alert_id: int, severity: str, text: str) -> None:
        status, got = _post(self._url, {"chat_id": self.chat_id, "text": text}, self.name)
        if status == 200 and isinstance(got, dict) and got.get("ok"):
            return
        desc = got.get("description") if isinstance(got, dict) else got
        retry = 0.0
        if isinstance(got, dict):
            retry = float((got.get("parameters") or {}).get("retry_after") or 0)
        raise ChannelError(f"{self.name}: HTTP {status}: {desc}", retry)


class Webhook:
    name = "webhook"

    def __init__(self, url: str) -> None:
        self._url = url

    def send(self, alert_id: int, severity: str, text: str) -> None:
        body = {"text": text, "content": text, "id": alert_id, "severity": severity}
        status, got = _post(self._url, body, self.name)
        if not 200 <= status < 300:
            raise ChannelError(f"{self.name}: HTTP {status}: {str(got)[:200]}")


def build_channels(cfg: AlertConfig, settings: Settings) -> tuple[list[Channel], list[str]]:
    """The enabled channels, and the problems of those enabled but not usable (a missing
    token, chat id or URL): said at start, never a crash."""
    out: list[Channel] = []
    problems: list[str] = []
    c = cfg.channels
    if c.openalgo_telegram.enabled:
        if not c.openalgo_telegram.username:
            problems.append("openalgo_telegram: no username")
        elif not settings.api_key():
            problems.append("openalgo_telegram: no OpenAlgo API key (MT_OPENALGO_API_KEY)")
        else:
            host = c.openalgo_telegram.host or settings.rest_url()
            out.append(OpenAlgoTelegram(host, settings.api_key(), c.openalgo_telegram.username))
    if c.telegram_bot.enabled:
        token = os.environ.get(c.telegram_bot.token_env, "")
        if not token or not c.telegram_bot.chat_id:
            problems.append(f"telegram_bot: no token in {c.telegram_bot.token_env} or no chat_id")
        else:
            out.append(TelegramBot(c.telegram_bot.api, token, c.telegram_bot.chat_id))
    if c.webhook.enabled:
        url = os.environ.get(c.webhook.url_env, "") if c.webhook.url_env else c.webhook.url
        if not url:
            problems.append("webhook: no url")
        else:
            out.append(Webhook(url))
    return out, problems
