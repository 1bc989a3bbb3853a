"""The signals daemon's HTTP side: aiohttp on its own thread and event loop, so a request
is answered in about a millisecond whatever the daemon's loop (or the broker behind it)
is doing. It only reads the request, runs the gate (``webhook/gate.py``) and answers; the
work goes to the daemon's loop through the gate's bounded queue.

The access log is off: aiohttp would write every path, and the path carries the webhook
id in full. The gate's audit names a request by the id's first six characters.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from mytrading.web.guard import LOOPBACK_NAMES, protect
from mytrading.web.shed import ShedLimits
from mytrading.web.thread import HttpThread
from mytrading.webhook.gate import FLUSH_S, MAX_BODY, Answer, Gate

ROUTE = "/strategy/webhook/{webhook_id}"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookServer(HttpThread):
    def __init__(
        self,
        host: str,
        port: int,
        make_gate: Callable[[], Gate],
        trusted_proxies: list[str] | None = None,
        names: frozenset[str] = LOOPBACK_NAMES,
        limits: ShedLimits | None = None,
    ) -> None:
        super().__init__(host, port, "webhook-http", limits)
        self.names = names  # the Host names it answers to (httpguard)
        self.make_gate = make_gate  # called on the server's thread: SQLite stays on it
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in trusted_proxies or []]
        self.gate: Gate | None = None
        self.log = structlog.get_logger("signals")

    def make_app(self) -> web.Application:
        self.gate = self.make_gate()
        app = web.Application(client_max_size=MAX_BODY + 1)
        app.router.add_post(ROUTE, self._webhook)
        app.router.add_get("/health", self._health)
        app.cleanup_ctx.append(self._housekeeping)
        return protect(app, self.names)

    async def _housekeeping(self, app: web.Application) -> AsyncIterator[None]:
        """Counted refusals reach the audit within a second even when requests stop."""

        async def every_second() -> None:
            while True:
                await asyncio.sleep(FLUSH_S)
                if self.gate is not None:
                    self.gate.housekeep()

        task = asyncio.create_task(every_second())
        yield
        task.cancel()

    def closed(self) -> None:
        if self.gate is not None:
            self.gate.housekeep(force=True)
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
        return client_address(
            request.remote or "?", request.headers.get("X-Forwarded-For", ""), self.trusted
        )


def client_address(remote: str, forwarded: str, trusted: list[IPNetwork]) -> str:
    """Who sent the request. ``X-Forwarded-For`` counts only when the connection comes
    from a trusted proxy; then the right-most hop that is not a trusted proxy is the
    client (what a client writes itself is on the left, where nobody believes it)."""
    if not _trusted(remote, trusted):
        return remote
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else remote


def _trusted(address: str, trusted: list[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in trusted)


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
