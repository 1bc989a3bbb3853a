"""Local HTTP servers that speak the alert channels' protocols: OpenAlgo's
``/api/v1/telegram/notify``, Telegram's Bot API ``/bot<token>/sendMessage``, and a
Slack/Discord-style webhook. Each records what it received and can be made to fail."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

from aiohttp import web

from mytrading.settings import PROJECT_ROOT

API_KEY = "sink-api-key"
TOKEN = "123456:sink-bot-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.got: dict[str, list[dict[str, Any]]] = {"openalgo": [], "bot": [], "hook": []}
        self.fail: dict[str, int] = {}  # channel -> HTTP status to answer with (0: none)
        self.flood_retry_after = 0  # the bot answers 429 with this retry_after, once
        self.calls: dict[str, int] = {"openalgo": 0, "bot": 0, "hook": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def texts(self, channel: str) -> list[str]:
        key = {"openalgo": "message", "bot": "text", "hook": "text"}[channel]
        return [m[key] for m in self.got[channel]]

    def start(self) -> Sink:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/api/v1/telegram/notify", self._openalgo)
        app.router.add_post("/bot{token}/sendMessage", self._bot)
        app.router.add_post("/hook", self._hook)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    async def _openalgo(self, req: web.Request) -> web.Response:
        self.calls["openalgo"] += 1
        body = await req.json()
        if self.fail.get("openalgo"):
            return web.json_response(
                {"status": "error", "message": "Telegram bot is not running"},
                status=self.fail["openalgo"],
            )
        if body.get("apikey") != API_KEY:
            return web.json_response(
                {"status": "error", "message": "Invalid openalgo apikey"}, status=403
            )
        if not body.get("username") or not body.get("message"):
            return web.json_response(
                {"status": "error", "message": "username and message are required"}, status=400
            )
        self.got["openalgo"].append(body)
        return web.json_response({"status": "success", "message": "Notification sent successfully"})

    async def _bot(self, req: web.Request) -> web.Response:
        self.calls["bot"] += 1
        if req.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if self.flood_retry_after:
            after, self.flood_retry_after = self.flood_retry_after, 0
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {after}",
                    "parameters": {"retry_after": after},
                },
                status=429,
            )
        if self.fail.get("bot"):
            return web.json_response(
                {"ok": False, "error_code": 502, "description": "Bad Gateway"},
                status=self.fail["bot"],
            )
        body = await req.json()
        self.got["bot"].append(body)
        return web.json_response({"ok": True, "result": {"message_id": len(self.got["bot"])}})

    async def _hook(self, req: web.Request) -> web.Response:
        self.calls["hook"] += 1
        if self.fail.get("hook"):
            return web.Response(status=self.fail["hook"], text="down")
        self.got["hook"].append(json.loads(await req.read()))
        return web.Response(status=200, text="ok")


def alerts_toml(sink: Sink, **rules: dict[str, Any]) -> str:
    """An alerts.toml with every channel pointed at ``sink``, and rule overrides."""
    lines = [
        "[channels.openalgo_telegram]",
        "enabled = true",
        'username = "trader"',
        f'host = "{sink.url}"',
        "[channels.telegram_bot]",
        "enabled = true",
        'token_env = "MT_TEST_BOT_TOKEN"',
        'chat_id = "42"',
        f'api = "{sink.url}"',
        "[channels.webhook]",
        "enabled = true",
        f'url = "{sink.url}/hook"',
    ]
    shipped = (PROJECT_ROOT / "config" / "alerts.toml").read_text()
    shipped_rules = shipped[shipped.index("[rules.") :]  # the shipped rules, as they are
    for name, fields in rules.items():
        lines.append(f"[rules.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n" + ("" if rules else shipped_rules)
