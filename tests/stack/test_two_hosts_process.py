"""The stack over two "hosts" on a CURVE tcp bus, and a forger outside it.

Host A (127.0.0.2) runs the simulator, feed, risk, router, reconciler, signals and monitor;
host B (127.0.0.3) runs the engine, with its own directories, supervisord and keys (the
public keys, its engine's pair and the operator's: not the others' secrets). The same
supervisord.conf and the same endpoint map serve both (docs/deployment.md). The engine on
B trades through risk and the router on A. Then a process outside the stack tries what
issue 25 saw work on an open bus: nothing it sends arrives and it reads nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS, ENDPOINT_NAMES, use_curve
from mytrading.messaging.curve import init_keys
from mytrading.settings import PROJECT_ROOT
from tests.procs import Watcher, run_cli, settings_of, stack_env
from tests.simhelpers import FUT, free_port

pytestmark = pytest.mark.integration

A, B = "127.0.0.2", "127.0.0.3"


def _forge(env: dict[str, str], key: str, listen_s: int = 1) -> dict[str, int]:
    args = ["--key", key, "--listen", str(listen_s), "--symbol", FUT]
    r = subprocess.run(
        [sys.executable, "-m", "tests.forge", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_two_hosts_trade_over_curve_and_a_forger_gets_nowhere(
    tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints = {
        name: f"tcp://{B if name == 'pub.engine' else A}:{free_port()}" for name in ENDPOINT_NAMES
    }
    keys_a, keys_b = tmp_path / "keys-a", tmp_path / "keys-b"
    init_keys(keys_a)
    keys_b.mkdir(mode=0o700)
    for f in keys_a.glob("*.key"):
        shutil.copy2(f, keys_b)
    for name in ("engine", "cli"):
        shutil.copy2(keys_a / f"{name}.key_secret", keys_b)
    (keys_a / "engine.key_secret").unlink()  # A never holds the engine's secret
    common = {
        "MT_BUS_TRANSPORT": "tcp",
        "MT_BUS_ENDPOINTS": json.dumps(endpoints),
        "MT_SIM_SERVER_HOST": A,
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),  # one market clock on both hosts
    }
    env_a = stack_env(
        tmp_env,
        monkeypatch,
        **common,
        MT_BUS_KEYS_DIR=str(keys_a),
        MT_DAEMONS=",".join(d for d in DAEMONS if d != "engine"),
    )
    b_dir = tmp_path / "host-b"
    env_b = {
        **env_a,
        **{k: str(b_dir / Path(v).name) for k, v in tmp_env.items() if k.endswith("_DB")},
        "MT_LOG_DIR": str(b_dir / "logs"),
        "MT_STATE_DIR": str(b_dir / "state"),
        "MT_RUN_DIR": env_a["MT_RUN_DIR"] + "b",
        "MT_BUS_KEYS_DIR": str(keys_b),
        "MT_DAEMONS": "engine",
    }
    w = Watcher(settings_of(env_a))
    started: list[dict[str, str]] = []
    try:
        for env in (env_a, env_b):
            r = run_cli("start", env=env)
            assert r.returncode == 0, r.stdout + r.stderr
            started.append(env)
        w.wait(lambda: set(w.status) == set(DAEMONS), 40, "a heartbeat from every daemon")
        w.wait(lambda: any(isinstance(m, wire.Fill) for _, m in w.seen), 40, "a fill of B's engine")
        assert w.status["engine"].pid != w.status["router"].pid
        assert (b_dir / "logs" / "engine.log").exists()
        assert not (Path(env_a["MT_LOG_DIR"]) / "engine.log").exists()

        r = run_cli("kill-switch", "on", "--reason", "test", env=env_a, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr

        # memory is compared across the forger's visit: risk's first DuckDB write (the
        # kill switch's event, in its writer thread) comes first, as a CI run saw it late
        def moved() -> bool:
            d = w.status["risk"].detail
            return d["events_stored"] > 0 and not d["events_pending"]

        w.wait(moved, 40, "risk's kill-switch event in DuckDB")
        w.pump(1.2)
        rss = {d: w.status[d].detail["health"]["rss_mb"] for d in ("router", "risk")}
        w.seen.clear()

        assert _forge(env_a, "none") == {"key": "none", "published_read": 0, "replies": 0}
        assert _forge(env_a, "outsider") == {"key": "outsider", "published_read": 0, "replies": 0}
        # The engine's own key (stolen from B) reads and asks (its business) but cannot
        # reach the order pipe or the commands; its 300 MB intent frame is over the pipe's
        # size limit and dropped.
        # (3 s: eight CURVE handshakes and the 300 MB frames come first on a busy machine)
        stolen = _forge(env_b, "engine", listen_s=3)
        assert stolen["replies"] == 2 and stolen["published_read"] > 0
        w.pump(2.5)
        forged = [m for _, m in w.seen if getattr(m, "order_id", "").startswith("forged")]
        assert forged == []
        assert w.status["risk"].detail["kill_switch"] is True
        for d, before in rss.items():
            assert abs(w.status[d].detail["health"]["rss_mb"] - before) < 20, (d, before)
        assert w.status["router"].detail["bus_refused"] >= 4  # orders, rpc x2, pub; engine
        assert w.status["risk"].detail["bus_refused"] >= 3  # commands x2, intents, pub
    finally:
        w.close()
        use_curve(None)  # this test process's later sockets are plain again
        for env in reversed(started):
            run_cli("stop", env=env, timeout=90)
