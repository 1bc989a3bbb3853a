"""Start the simulator server as a real process on free ports, and talk to it raw."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from mytrading.messaging import wire
from mytrading.settings import PROJECT_ROOT
from tests.procs import MIN_WAIT_S

KEY = "contract-test-key"
FUT = "NIFTY23NOV26FUT"  # the near future on the simulated start date below (2026-11-20)


def live_future() -> str:
    """NIFTY's future for a test whose stack runs live, on the wall clock, against a
    simulator dated 2026-11-20: the near month expiring after the wall clock's day (IST),
    so that neither clock holds it expired (risk refuses an expired contract, the
    simulator no longer lists one) nor is it its expiry day (risk's expiry-day rules)."""
    from datetime import datetime, timedelta

    from mytrading.domain.refdata import IST, future_symbol, load_refdata

    ref = load_refdata(PROJECT_ROOT / "config")
    tomorrow = datetime.now(IST).date() + timedelta(days=1)
    expiry = ref.calendar.near_future_expiry(ref.underlying("NIFTY"), tomorrow)
    return future_symbol("NIFTY", expiry)


_HANDED: set[int] = set()


def free_port() -> int:
    """A port free now, for a server a test starts. Taken at random below the kernel's
    ephemeral range (32768 and up), where outgoing connections take theirs, and never the
    same twice in one process: two stacks started side by side (the suite's two workers
    and the soak) must not meet on one port; a client of one then talks to the other's
    simulator (and its orders land in the wrong books)."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if port in _HANDED:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED.add(port)
        return port
    raise RuntimeError("no free port in 20000-32000")


WS_URL: dict[str, str] = {}  # rest host -> ws url


def start_server(tmp_env: dict[str, str], **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """The simulator server on two free ports, waited for. A port found free can be taken
    by another process before the server binds it (the suite's workers start servers and
    stacks side by side: "address already in use", exit code 1, in a fresh clone's run of
    21f63f6): a server that exits at once is started again on other ports, twice at most."""
    for attempt in range(3):
        try:
            return _start_server(tmp_env, **extra)
        except ServerExitedError:
            if attempt == 2 or "MT_SIM_REST_PORT" in extra or "MT_SIM_WS_PORT" in extra:
                raise
    raise AssertionError("unreachable")


class ServerExitedError(AssertionError):
    """The simulator server exited before it listened."""


def _start_server(tmp_env: dict[str, str], **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port, ws_port = free_port(), free_port()
    env = {
        **os.environ,
        **tmp_env,
        "MT_SIM_REST_PORT": str(port),
        "MT_SIM_WS_PORT": str(ws_port),
        "MT_SIM_WS_AUTH_GRACE_S": "1.5",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "1",
        "MT_SIM_TICK_HZ": "20",
        "MT_SIM_STOCKS": "",  # the indices only unless a test asks (``MT_SIM_STOCKS="*"``)
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),
        **extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mytrading.sim.server"], env=env, cwd=PROJECT_ROOT
    )
    port, ws_port = int(env["MT_SIM_REST_PORT"]), int(env["MT_SIM_WS_PORT"])  # as given
    host = f"http://127.0.0.1:{port}"
    WS_URL[host] = f"ws://127.0.0.1:{ws_port}"
    # a server that died says so at once; a slow start (a loaded machine: 20 s were not
    # enough beside CI's simulated days) is waited for
    deadline = time.monotonic() + MIN_WAIT_S
    waiting = [port, ws_port]  # REST first, then the WebSocket (its own site, a moment later)
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.2):
                waiting.pop(0)
                if not waiting:
                    return proc, host
        except OSError:
            time.sleep(0.1)
    proc.kill()
    code = proc.wait()
    if code != -9:  # it exited by itself: ServerExitedError, which start_server tries again
        raise ServerExitedError(f"simulator server did not start (exit code {code})")
    raise AssertionError(f"simulator server did not start within {MIN_WAIT_S} s")


def post(host: str, ep: str, body: bytes | dict[str, Any]) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{host}/api/v1/{ep}",
        data=data,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def control(host: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        f"{host}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def order(oid: str, qty: int, symbol: str = FUT) -> wire.Order:
    """A MARKET buy of the test future (or ``symbol``) as risk approves it (strategy
    ``s``)."""
    return wire.Order(
        order_id=f"s.{oid}",
        intent_id=oid,
        strategy="s",
        exchange="NFO",
        symbol=symbol,
        action="BUY",
        quantity=qty,
        pricetype="MARKET",
        product="NRML",
        price=0.0,
        trigger_price=0.0,
        approved_by="risk",
    )


def at_broker(host: str, qty: int) -> list[dict[str, Any]]:
    """Rows of the simulator's order book for our test future and this quantity."""
    from openalgo import api

    rows = api(api_key=KEY, host=host, timeout=5.0).orderbook()["data"]["orders"]
    return [r for r in rows if r["symbol"] == FUT and r["quantity"] == qty]
