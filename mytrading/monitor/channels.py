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

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from mytrading.monitor.config import AlertConfig
from mytrading.settings import Settings

TIMEOUT_S = 5.0


class ChannelError(RuntimeError):
    """A delivery that failed; ``fatal``: it cannot succeed as configured (the channel is
    disabled until the monitor restarts with a fixed setting)."""

    def __init__(self, reason: str, retry_after: float = 0.0, fatal: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.fatal = fatal


class Channel(Protocol):
    name: str

    def send(self, alert_id: int, severity: str, text: str) -> None: ...


def url_problem(url: str) -> str:
    """Why ``url`` cannot be POSTed to ("" when it can): http(s) with a host. The URL
    itself is never part of the answer (it may hold a secret)."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https"):
        got = f"'{parts.scheme}:'" if parts.scheme else "no scheme"
        return f"must start with https:// or http:// ({got})"
    if not parts.hostname:
        return "has no host"
    if any(c.isspace() for c in url.strip()):
        return "holds a space"
    return ""


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
    except (ValueError, http.client.HTTPException) as e:  # a URL urllib cannot use
        raise ChannelError(f"{what}: bad request ({type(e).__name__})", fatal=True) from None
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
        host = c.openalgo_telegram.host or settings.rest_url()
        if not c.openalgo_telegram.username:
            problems.append("openalgo_telegram: no username")
        elif not settings.api_key():
            problems.append("openalgo_telegram: no OpenAlgo API key (MT_OPENALGO_API_KEY)")
        elif url_problem(host):
            problems.append(f"openalgo_telegram: host {url_problem(host)}")
        else:
            out.append(OpenAlgoTelegram(host, settings.api_key(), c.openalgo_telegram.username))
    if c.telegram_bot.enabled:
        token = os.environ.get(c.telegram_bot.token_env, "")
        if not token or not c.telegram_bot.chat_id:
            problems.append(f"telegram_bot: no token in {c.telegram_bot.token_env} or no chat_id")
        elif url_problem(c.telegram_bot.api):
            problems.append(f"telegram_bot: api {url_problem(c.telegram_bot.api)}")
        elif any(ch.isspace() or ch == "/" for ch in token):
            problems.append(f"telegram_bot: the token in {c.telegram_bot.token_env} is malformed")
        else:
            out.append(TelegramBot(c.telegram_bot.api, token, c.telegram_bot.chat_id))
    if c.webhook.enabled:
        source = c.webhook.url_env or "url"
        url = os.environ.get(c.webhook.url_env, "") if c.webhook.url_env else c.webhook.url
        if not url:
            problems.append(f"webhook: no url ({source} is empty)")
        elif url_problem(url):
            problems.append(f"webhook: the url in {source} {url_problem(url)}")
        else:
            out.append(Webhook(url))
    return out, problems
