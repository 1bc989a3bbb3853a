"""Servers that shed slow clients (issue 38): 1,000 connections that dribble their headers
are closed within the header timeout while a real request is still answered; a body that
stalls is cut; the connection cap closes the one too many at once; a WebSocket and a
streamed response live on. Real servers on real ports: the simulator server's process,
and the dashboard's server in this one."""

from __future__ import annotations

import http.client
import json
import selectors
import signal
import socket
import time
from pathlib import Path

import pytest
import websocket
from prometheus_client import CollectorRegistry

from mytrading.monitor.web import MonitorServer
from mytrading.web.shed import ShedLimits
from tests.simhelpers import KEY, WS_URL, free_port, start_server

pytestmark = pytest.mark.integration


def closed_by_peer(socks: list[socket.socket], within_s: float) -> int:
    """How many of ``socks`` the server closed within ``within_s``. Through ``selectors``
    (epoll here), not ``select.select``: a worker that ran other tests before may already
    hold hundreds of descriptors, and select refuses any numbered 1024 or more (a fresh
    clone's run failed so: "filedescriptor out of range in select()")."""
    left = set(socks)
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + within_s
        while left and time.monotonic() < deadline:
            for key, _ in sel.select(0.2):
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                try:
                    gone = conn.recv(4096) == b""
                except OSError:
                    gone = True
                if gone:
                    left.discard(conn)
                    sel.unregister(conn)
    return len(socks) - len(left)


def test_a_thousand_dribbling_clients_are_shed_and_a_real_one_is_served(tmp_path: Path) -> None:
    proc, host = start_server(
        {"MT_LOG_DIR": str(tmp_path / "logs"), "MT_STATE_DIR": str(tmp_path / "state")},
        MT_HTTP_HEADER_TIMEOUT_S="2",
        MT_HTTP_BODY_TIMEOUT_S="2",
        MT_HTTP_MAX_CONNECTIONS="1100",
    )
    port = int(host.rsplit(":", 1)[1])
    socks: list[socket.socket] = []
    try:
        ws = websocket.create_connection(WS_URL[host], timeout=5)  # upgraded: never timed
        ws.send(json.dumps({"action": "authenticate", "api_key": KEY}))
        assert "success" in ws.recv()
        t0 = time.monotonic()
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /api/v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no more
            socks.append(s)
        # a real client meanwhile
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/api/v1/ping", body=json.dumps({"apikey": KEY}),
                  headers={"Content-Type": "application/json"})  # fmt: skip
        assert c.getresponse().status == 200
        shed = closed_by_peer(socks, 6.0)
        took = time.monotonic() - t0
        assert shed == 1000, f"{shed} of 1000 closed in {took:.1f}s"
        # a body that stalls halfway is cut too
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(
            b"POST /api/v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            b'\r\nContent-Length: 100\r\n\r\n{"apikey"'
        )
        assert closed_by_peer([s], 5.0) == 1
        s.close()
        # the WebSocket opened before all this still talks
        ws.send(json.dumps({"action": "ping"}))
        assert "pong" in ws.recv()
        ws.close()
    finally:
        for s in socks:
            s.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_the_connection_cap_and_a_streamed_response() -> None:
    port = free_port()
    srv = MonitorServer(
        "127.0.0.1", port, lambda: {"ok": 1}, CollectorRegistry(),
        limits=ShedLimits(header_s=1.0, body_s=1.0, max_connections=8, keepalive_s=5.0),
    )  # fmt: skip
    srv.start()
    socks: list[socket.socket] = []
    try:
        assert srv.listening, srv.error
        events = socket.create_connection(("127.0.0.1", port))  # the dashboard's stream
        events.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for _ in range(9):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        assert closed_by_peer(socks, 0.5) == 2  # 8 at most, the stream counted
        time.sleep(2.0)  # past the header timeout: the stream is the server's to send
        events.setblocking(False)
        got = b""
        deadline = time.monotonic() + 3
        while b"data:" not in got and time.monotonic() < deadline:
            try:
                got += events.recv(65536)
            except BlockingIOError:
                time.sleep(0.1)
        assert b"data:" in got
        assert srv.shed.counts["over_max_connections"] == 2
        assert srv.shed.counts["slow_headers"] >= 7  # the idle ones, after a second
        events.close()
    finally:
        for s in socks:
            s.close()
        srv.stop()
