"""Every HTTP server of the stack refuses a foreign Host, wears its security headers, and
the monitor bound wide answers only with its token (real servers on real ports)."""

from __future__ import annotations

import base64
import http.client
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from mytrading.monitor.web import MonitorServer
from mytrading.settings import ConfigError, load_settings
from mytrading.signals.http import WebhookServer
from mytrading.web.guard import host_names
from tests.simhelpers import free_port, start_server

TOKEN = "s3cret-token-of-16+"


def get(
    port: int, path: str, host: str = "127.0.0.1", auth: str = "", method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Host": host}
    if auth:
        headers["Authorization"] = auth
    c.request(method, path, body=b"{}" if method == "POST" else None, headers=headers)
    r = c.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    c.close()
    return out


def assert_headers(h: dict[str, str]) -> None:
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in h["content-security-policy"]


def test_monitor_bound_wide_needs_its_token_and_its_names() -> None:
    port = free_port()
    srv = MonitorServer(
        "0.0.0.0",
        port,
        lambda: {"ok": 1},
        CollectorRegistry(),
        host_names("0.0.0.0", ["mon.example.in"]),
        TOKEN,
    )
    srv.start()
    try:
        assert srv.listening, srv.error
        for path in ("/", "/metrics", "/api/state"):
            code, h, _ = get(port, path)
            assert code == 401 and h["www-authenticate"].startswith("Basic"), path
            assert_headers(h)
            assert get(port, path, auth="Bearer wrong")[0] == 401
        code, h, body = get(port, "/", auth=f"Bearer {TOKEN}")
        assert code == 200 and b"<script>" in body
        assert "script-src 'sha256-" in h["content-security-policy"]  # its own script only
        assert "unsafe-inline" not in h["content-security-policy"]
        assert_headers(h)
        basic = "Basic " + base64.b64encode(f"me:{TOKEN}".encode()).decode()
        assert get(port, "/metrics", auth=basic)[0] == 200
        assert get(port, "/api/state", host="mon.example.in:9108", auth=basic)[0] == 200
        # DNS rebinding: a page on evil.example resolved to this machine
        code, h, _ = get(port, "/api/state", host="evil.example:9108", auth=basic)
        assert code == 421
        assert_headers(h)
        assert srv.refused == 7  # 3 without a token, 3 with a wrong one, 1 foreign Host
    finally:
        srv.stop()


def test_webhook_server_refuses_a_foreign_host(tmp_path: Path) -> None:
    from mytrading.webhook.gate import Gate

    port = free_port()

    def no_gate() -> Gate:
        return None  # type: ignore[return-value]  # /health and refusals need none

    srv = WebhookServer("127.0.0.1", port, no_gate, names=host_names("127.0.0.1", ["a.in"]))
    srv.start()
    try:
        code, h, _ = get(port, "/health")
        assert code == 200
        assert_headers(h)
        assert get(port, "/health", host="a.in")[0] == 200
        assert get(port, "/strategy/webhook/x", host="evil.example", method="POST")[0] == 421
    finally:
        srv.stop()


def test_simulator_refuses_a_foreign_host(tmp_env: dict[str, str]) -> None:
    proc, host = start_server(tmp_env)
    port = int(host.rsplit(":", 1)[1])
    try:
        code, h, _ = get(port, "/api/v1/ping", method="POST")
        assert code != 421
        assert_headers(h)
        code, _, body = get(port, "/api/v1/ping", host="evil.example", method="POST")
        assert code == 421, body
    finally:
        proc.terminate()
        proc.wait(10)


def test_servers_bind_loopback_unless_told_and_hosts_are_hosts(tmp_env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="MT_MONITOR_ALLOW_REMOTE"):
        load_settings(monitor_host="0.0.0.0")
    with pytest.raises(ConfigError, match="MT_MONITOR_TOKEN"):
        load_settings(monitor_host="0.0.0.0", monitor_allow_remote=True)
    load_settings(monitor_host="0.0.0.0", monitor_allow_remote=True, monitor_token=TOKEN)
    with pytest.raises(ConfigError, match="MT_SIM_SERVER_ALLOW_REMOTE"):
        load_settings(sim_server_host="10.0.0.4")
    with pytest.raises(ConfigError, match="MT_SIGNALS_ALLOW_REMOTE"):
        load_settings(signals_host="0.0.0.0")
    for var in ("monitor_host", "sim_server_host", "signals_host", "bus_host"):
        with pytest.raises(ConfigError, match="is not a host name"):
            load_settings(**{var: "bad host"})
    with pytest.raises(ConfigError, match="MT_HTTP_HOSTNAMES"):
        load_settings(http_hostnames=["ok.in", "not ok"])
