"""Servers that shed slow clients: every HTTP server of the stack (the webhook, the
monitor's dashboard, the simulator) sits behind this guard.

aiohttp waits for a request's headers for as long as the client likes: 5,000 connections
that each send one header line every 10 s were all still open after a minute (issue 38),
each holding a file. Here, per connection:

* a request's **headers** must be whole within ``header_s`` of its first byte (or of the
  connection, for the first request);
* its **body** (``Content-Length``, or chunked to its last chunk) within ``body_s`` after
  the headers;
* no more than ``max_connections`` are open at once: one more is closed at once;
* an idle kept-alive connection is aiohttp's (``keepalive_s``, passed to it);
* an upgraded connection (a WebSocket) is not timed once upgraded, nor is a response
  being streamed (the dashboard's events): only what the *client* is slow to send is.

A slow client is aborted, counted by cause (``counts``) and never logged one by one.
The guard reads only where a request's headers end and how long its body is; aiohttp
parses everything itself, as before.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.I | re.M)
_CHUNKED = re.compile(rb"^transfer-encoding:[^\r\n]*chunked", re.I | re.M)
_UPGRADE = re.compile(rb"^upgrade:", re.I | re.M)
HEAD_MAX = 64 * 1024  # aiohttp refuses longer heads itself; the guard stops looking


@dataclass(frozen=True)
class ShedLimits:
    header_s: float = 10.0
    body_s: float = 30.0
    max_connections: int = 256
    keepalive_s: float = 15.0


class Shed:
    """One server's guard: its limits, its open connections, what it shed and why."""

    def __init__(self, limits: ShedLimits) -> None:
        self.limits = limits
        self.open = 0
        self.counts: collections.Counter[str] = collections.Counter()

    def factory(self, make: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        return lambda: Guard(self, make())

    def detail(self) -> dict[str, Any]:
        return {"open": self.open, "shed": dict(self.counts)}


class Guard(asyncio.Protocol):
    """One connection: aiohttp's own protocol inside, the clocks around it."""

    def __init__(self, shed: Shed, inner: Any) -> None:
        self.shed = shed
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.refused = False
        self.phase = "head"  # head | body | chunked | idle | upgraded
        self.head = b""
        self.left = 0  # body bytes still to come
        self.tail = b""  # a chunked body's last bytes
        self.timer: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.shed.open += 1
        if self.shed.open > self.shed.limits.max_connections:
            self.refused = True
            self.shed.counts["over_max_connections"] += 1
            transport.abort()
            return
        self.inner.connection_made(transport)
        self._arm(self.shed.limits.header_s)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.phase != "upgraded":
            self._scan(data)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.refused:
            return None
        result: bool | None = self.inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self.shed.open -= 1
        self._disarm()
        if not self.refused:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if not self.refused:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if not self.refused:
            self.inner.resume_writing()

    # ------------------------------------------------------------------ clocks

    def _arm(self, seconds: float) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(seconds, self._slow, self.phase)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _slow(self, phase: str) -> None:
        self.timer = None
        self.shed.counts[f"slow_{'headers' if phase == 'head' else 'body'}"] += 1
        if self.transport is not None:
            self.transport.abort()

    def _scan(self, data: bytes) -> None:
        """Follow the client's bytes request by request (pipelined ones included)."""
        while data:
            if self.phase == "idle":
                self.phase, self.head = "head", b""
                self._arm(self.shed.limits.header_s)
            if self.phase == "head":
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.head) > HEAD_MAX:
                        self.phase = "upgraded"  # aiohttp refuses it; stop looking
                        self._disarm()
                    return
                head, data = self.head[: end + 4], self.head[end + 4 :]
                self.head = b""
                self._headers(head)
                continue
            if self.phase == "body":
                take = min(self.left, len(data))
                self.left -= take
                data = data[take:]
                if self.left == 0:
                    self._done()
                continue
            if self.phase == "chunked":
                self.tail = (self.tail + data)[-16:]
                data = b""
                if self.tail.endswith(b"0\r\n\r\n"):
                    self._done()
                continue
            return  # upgraded: aiohttp's from here on

    def _headers(self, head: bytes) -> None:
        if _UPGRADE.search(head):
            self.phase = "upgraded"
            self._disarm()
            return
        m = _LENGTH.search(head)
        if m and int(m.group(1)) > 0:
            self.phase, self.left = "body", int(m.group(1))
            self._arm(self.shed.limits.body_s)
        elif _CHUNKED.search(head):
            self.phase, self.tail = "chunked", b""
            self._arm(self.shed.limits.body_s)
        else:
            self._done()

    def _done(self) -> None:
        """A request is in whole: the client owes nothing until it starts another."""
        self.phase = "idle"
        self._disarm()


class ShedSite(web.TCPSite):
    """``web.TCPSite`` whose connections go through ``shed``'s guard."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, shed: Shed) -> None:
        super().__init__(runner, host, port)
        self.shed = shed

    async def start(self) -> None:
        self._runner._reg_site(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.shed.factory(server), self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
        )  # fmt: skip


def runner(app: web.Application, limits: ShedLimits) -> web.AppRunner:
    """An ``AppRunner`` whose idle kept-alive connections close after ``keepalive_s``."""
    return web.AppRunner(app, access_log=None, keepalive_timeout=limits.keepalive_s)
