"""A stand-in of Telegram's Bot API on loopback, speaking what python-telegram-bot asks of
it (``POST /bot<token>/<method>``, form-encoded parameters, ``{"ok": ..., "result": ...}``
answers): getMe, deleteWebhook, getUpdates (a long poll held until an update comes),
sendMessage, answerCallbackQuery, editMessageText. Tests put users' messages and button
presses in as updates and read what the bot sent; ``down()`` / ``up()`` take it off the
network and back on the same port (an outage).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "123456789:AAH_stand-in-token-for-tests-0123456789"
BOT = {"id": 123456789, "is_bot": True, "first_name": "mytrading", "username": "mt_test_bot"}


class BotApiStub:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.lock = threading.Condition()
        self.updates: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any], float]] = []  # method, params, when
        self.messages: dict[int, dict[str, Any]] = {}  # the bot's, by message id
        self._next_update = 1
        self._next_message = 1000
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.up()

    # ------------------------------------------------------------- the network

    def up(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode()
                code, answer = stub.handle(self.path, self.headers.get_content_type(), body)
                out = json.dumps(answer).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client left (a bot stopping drops its held long poll)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return  # quiet: the tests read the calls from ``calls``

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:
            self.lock.notify_all()  # a held long poll answers now (as a dropped link would)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------- the API

    def handle(self, path: str, ctype: str, body: str) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != f"bot{self.token}":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = parts[1]
        params = _params(ctype, body)
        with self.lock:
            self.calls.append((method, params, time.monotonic()))
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        with self.lock:
            result = self._answer(method, params)
            self.lock.notify_all()
        if result is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        return 200, {"ok": True, "result": result}

    def _get_updates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(p.get("offset") or 0)
        deadline = time.monotonic() + min(float(p.get("timeout") or 0), 10.0)
        with self.lock:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline and self._server is not None:
                self.lock.wait(deadline - time.monotonic())
            return list(self.updates[:100])

    def _answer(self, method: str, p: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT
        if method in ("deleteWebhook", "answerCallbackQuery", "close", "logOut"):
            return True
        if method == "sendMessage":
            self._next_message += 1
            msg = {
                "message_id": self._next_message,
                "date": int(time.time()),
                "chat": {"id": int(p["chat_id"]), "type": "private"},
                "from": BOT,
                "text": str(p.get("text", "")),
            }
            if "reply_markup" in p:
                msg["reply_markup"] = p["reply_markup"]
            self.messages[msg["message_id"]] = msg
            return msg
        if method == "editMessageText":
            msg = self.messages[int(p["message_id"])]
            msg["text"] = str(p.get("text", ""))
            msg.pop("reply_markup", None)
            return msg
        return None

    # ------------------------------------------------------------- a test's side

    def message(self, user: int, text: str, chat: int | None = None) -> None:
        """A user writes ``text`` to the bot (a private chat unless ``chat``)."""
        m: dict[str, Any] = {
            "message_id": self._next_update,
            "date": int(time.time()),
            "chat": {"id": chat or user, "type": "private" if chat is None else "group"},
            "from": {"id": user, "is_bot": False, "first_name": f"u{user}"},
            "text": text,
        }
        if text.startswith("/"):
            m["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        self._put({"message": m})

    def press(self, user: int, message: dict[str, Any], data: str) -> str:
        """A user presses a button of the bot's ``message``; the query's id."""
        qid = f"q{self._next_update}"
        self._put(
            {
                "callback_query": {
                    "id": qid,
                    "from": {"id": user, "is_bot": False, "first_name": f"u{user}"},
                    "chat_instance": "1",
                    "data": data,
                    "message": message,
                }
            }
        )
        return qid

    def _put(self, update: dict[str, Any]) -> None:
        with self.lock:
            update["update_id"] = self._next_update
            self._next_update += 1
            self.updates.append(update)
            self.lock.notify_all()

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        with self.lock:
            return [p for m, p, _ in self.calls if m == method]

    def wait(self, pred: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = pred()
            if got:
                return got
            with self.lock:
                self.lock.wait(0.1)
        raise AssertionError(f"timed out waiting for {what}; calls: {self.calls[-8:]}")

    def reply_to(self, chat: int, since: int, timeout: float = 15.0) -> dict[str, Any]:
        """The first message sent to ``chat`` after the ``since``-th sendMessage."""

        def first() -> dict[str, Any] | None:
            mine = [p for p in self.sent()[since:] if int(p["chat_id"]) == chat]
            return mine[0] if mine else None

        return self.wait(first, timeout, f"a reply in chat {chat}")  # type: ignore[no-any-return]


def _params(ctype: str, body: str) -> dict[str, Any]:
    if ctype == "application/json":
        return json.loads(body or "{}")  # type: ignore[no-any-return]
    out: dict[str, Any] = {}
    for k, v in urllib.parse.parse_qsl(body, keep_blank_values=True):
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out
