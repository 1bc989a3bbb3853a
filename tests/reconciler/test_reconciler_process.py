"""The reconciler against a real broker book: a position opened by hand outside the stack."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from mytrading.messaging import wire
from mytrading.settings import load_settings
from tests.procs import Watcher, spawn
from tests.simhelpers import FUT, KEY, WS_URL, start_server

pytestmark = pytest.mark.integration  # real processes or servers


def test_external_position_is_reported_and_the_broker_wins(
    tmp_env: dict[str, str], monkeypatch: Any
) -> None:
    anchor = str(time.time_ns())
    server, host = start_server(tmp_env, MT_CLOCK_ANCHOR_NS=anchor)
    env = {
        **tmp_env,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_CLOCK_ANCHOR_NS": anchor,
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "1",
        "MT_RECON_INTERVAL_S": "1",
        "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
        "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    w = Watcher(load_settings(), ("sys.status.", "recon."))
    procs = [spawn(d, env) for d in ("router", "reconciler")]
    try:
        w.wait(
            lambda: (
                w.status.get("reconciler") is not None
                and w.status["reconciler"].detail["checks"] >= 1
            ),
            20,
            "a first clean check",
        )
        assert w.status["reconciler"].detail["mismatches"] == 0
        from openalgo import api

        r = api(api_key=KEY, host=host, timeout=5.0).placeorder(
            strategy="by-hand",
            symbol=FUT,
            action="SELL",
            exchange="NFO",
            quantity=130,
            product="NRML",
        )
        assert r["status"] == "success", r
        w.wait(
            lambda: any(isinstance(m, wire.ReconEvent) for _, m in w.seen), 10, "a mismatch event"
        )
        (ev,) = [m for _, m in w.seen if isinstance(m, wire.ReconEvent) and m.kind == "position"]
        assert (ev.symbol, ev.product, ev.ours, ev.broker, ev.action) == (
            FUT,
            "NRML",
            0,
            -130,
            "external",
        )
        checks = w.status["reconciler"].detail["checks"]
        w.wait(lambda: w.status["reconciler"].detail["checks"] >= checks + 2, 10, "two more checks")
        kinds = [m.kind for _, m in w.seen if isinstance(m, wire.ReconEvent)]
        assert sorted(kinds) == ["order", "position"]  # labelled external: each said once
        assert w.status["reconciler"].detail["external"] == {f"NFO:{FUT}:NRML": -130}
        assert w.status["reconciler"].detail["mismatches"] == 2
        log = (load_settings().log_dir / "reconciler.log").read_text()
        assert '"event": "position mismatch"' in log and '"broker": -130' in log
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        w.close()
