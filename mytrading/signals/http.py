"""The signals daemon's HTTP side: aiohttp on its own thread and event loop, so a request
is answered in about a millisecond whatever the daemon's loop (or the broker behind it)
is doing. It only reads the request, runs the gate (``webhook/gate.py``) and answers; the
work goes to the daemon's loop through the gate's bounded queue.

The access log is off: aiohttp would write every path, and the path carries the webhook
id in full. The gate's audit names a request by the id's first six characters.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from aiohttp import web

from mytrading.httpguard import LOOPBACK_NAMES, protect
from mytrading.httpthread import HttpThread
from mytrading.webhook.gate import MAX_BODY, Answer, Gate

ROUTE = "/strategy/webhook/{webhook_id}"


class WebhookServer(HttpThread):
    def __init__(
        self,
        host: str,
        port: int,
        make_gate: Callable[[], Gate],
        trust_proxy: bool = False,
        names: frozenset[str] = LOOPBACK_NAMES,
    ) -> None:
        super().__init__(host, port, "webhook-http")
        self.names = names  # the Host names it answers to (httpguard)
        self.make_gate = make_gate  # called on the server's thread: SQLite stays on it
        self.trust_proxy = trust_proxy
        self.gate: Gate | None = None
        self.log = structlog.get_logger("signals")

    def make_app(self) -> web.Application:
        self.gate = self.make_gate()
        app = web.Application(client_max_size=MAX_BODY + 1)
        app.router.add_post(ROUTE, self._webhook)
        app.router.add_get("/health", self._health)
        return protect(app, self.names)

    def closed(self) -> None:
        if self.gate is not None:
            self.gate.store.close()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _webhook(self, request: web.Request) -> web.Response:
        assert self.gate is not None
        client = self._client(request)
        webhook_id = request.match_info["webhook_id"]
        declared = request.content_length or 0
        if declared > MAX_BODY:  # not read at all
            answer = self.gate.handle(webhook_id, b"", client, size=declared)
        else:
            body = await _read_at_most(request, MAX_BODY + 1)
            answer = self.gate.handle(webhook_id, body, client, size=len(body))
        if answer.status not in (200, 429):  # 429s are counted, not logged: a flood would
            self.log.info(  # fill the disk; each one is in the audit all the same
                "webhook refused",
                status=answer.status,
                reason=answer.body.get("message"),
                id=webhook_id[:6],
                client=client,
            )
        return _respond(answer)

    def _client(self, request: web.Request) -> str:
        if self.trust_proxy:
            forwarded = request.headers.get("X-Forwarded-For", "")
            if forwarded:
                return forwarded.rsplit(",", 1)[-1].strip()  # the address our proxy saw
        return request.remote or "?"


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes (a chunked body has no declared length)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await request.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _respond(answer: Answer) -> web.Response:
    return web.json_response(answer.body, status=answer.status)
