#!/usr/bin/env python3
"""Control command round trip: the HTTP control API's request to risk's confirmation.

Starts router, risk, engine, feed and monitor as separate processes on the simulated
market (the demo's SMA strategy trading), makes a control token, and sends ``--pairs``
pause / resume pairs of that strategy through ``POST /api/v1/strategies/<name>/...``, one
at a time. Each request is answered once risk's heartbeat shows the change (the monitor
hears it on the bus), so the client's round trip is the command's: request, token check,
the command layer, the command pipe to risk, risk's state change and beat, the monitor's
confirmation, the answer.

    .venv/bin/python bench/control.py [--pairs 200]

Then the same pairs from Telegram: the control bot (``python -m mytrading.control``)
polls a stand-in of the Bot API on loopback (``tests/telegramstub.py``), and each round
trip runs from the moment the user's ``/pause`` update is put on the stand-in to the
moment the bot's reply reaches it: the long poll's delivery, the allow-list, the command
layer, risk's confirmation and ``sendMessage``.

Goal (issue 45): p50 <= 50 ms, p99 <= 250 ms (the API's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import pump, stop_all  # noqa: E402

from mytrading.control.tokens import Tokens  # noqa: E402
from mytrading.messaging import wire  # noqa: E402
from mytrading.messaging.bus import Subscriber  # noqa: E402
from mytrading.settings import load_settings  # noqa: E402
from tests.simhelpers import free_port  # noqa: E402
from tests.telegramstub import TOKEN, BotApiStub  # noqa: E402

DAEMONS = ("router", "risk", "engine", "feed", "monitor")
NAME = "sma_crossover"
USER = 111


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pairs", type=int, default=200, help="pause/resume pairs")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mtbench-ctl-"))
    port = free_port()
    env = {
        **os.environ,
        "MT_LOG_DIR": str(tmp / "logs"),
        "MT_RUN_DIR": str(tmp / "run"),
        "MT_STATE_DIR": str(tmp / "state"),
        "MT_RECORD_DB": str(tmp / "data" / "marketdata.duckdb"),
        "MT_RISK_DB": str(tmp / "data" / "risk.duckdb"),
        "MT_ALERTS_DB": str(tmp / "data" / "alerts.sqlite"),
        "MT_CONTROL_DB": str(tmp / "data" / "control.sqlite"),
        "MT_WEBHOOK_DB": str(tmp / "data" / "webhooks.sqlite"),
        "MT_LOG_LEVEL": "WARNING",
        "MT_BROKER": "sim",
        "MT_SIM_STOCKS": "",
        "MT_STRATEGIES": NAME,
        "MT_MONITOR_PORT": str(port),
        "MT_CONTROL_RATE_PER_MIN": "100000",  # the path measured, not the rate limit
        "MT_SIGNALS_PORT": str(free_port()),
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),
    }
    api = BotApiStub()
    cfg = tmp / "config"
    shutil.copytree(ROOT / "config", cfg)
    (cfg / "control.toml").write_text(
        f'[telegram]\nenabled = true\napi = "{api.url}"\nallowed_users = [{USER}]\n'
    )
    env |= {"MT_CONFIG_DIR": str(cfg), "MT_TELEGRAM_CONTROL_TOKEN": TOKEN}
    os.environ.update({k: v for k, v in env.items() if k.startswith("MT_")})
    settings = load_settings()
    tokens = Tokens(settings.stores.control_db)
    token = tokens.new("bench")
    tokens.close()
    base = f"http://127.0.0.1:{port}/api/v1/strategies/{NAME}"
    ctx = zmq.Context()
    eps = settings.endpoints()
    sub = Subscriber(ctx, [eps.pub(d) for d in DAEMONS], ["sys.status."])
    procs = [
        subprocess.Popen([sys.executable, "-m", f"mytrading.{d}"], env=env, cwd=ROOT)
        for d in (*DAEMONS, "control")
    ]
    status: dict[str, wire.Status] = {}
    rtt: list[float] = []
    unconfirmed = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not set(DAEMONS) <= set(status):
            pump(sub, status, 0.5)
        if not set(DAEMONS) <= set(status):
            print(f"daemons not up: {sorted(set(DAEMONS) - set(status))}", file=sys.stderr)
            return 1
        time.sleep(2.0)  # the monitor has heard risk's beats
        for i in range(args.pairs * 2):
            action = "pause" if i % 2 == 0 else "resume"
            req = urllib.request.Request(
                f"{base}/{action}",
                data=b"{}",
                method="POST",
                headers={"Content-Type": "application/json", "X-Control-Token": token},
            )
            t0 = time.perf_counter()
            with urllib.request.urlopen(req, timeout=10) as r:
                got = json.loads(r.read())
            rtt.append(time.perf_counter() - t0)
            if not got.get("changed"):
                unconfirmed += 1
            pump(sub, status, 0.0)
        api.wait(lambda: api.sent("getUpdates"), 30, "the bot polling")
        bot = telegram_pairs(api, args.pairs)
    finally:
        stop_all(procs)
        api.down()
        sub.close()
        ctx.term()

    ms = np.array(rtt) * 1000
    print(f"control API round trip, request -> risk's confirmation ({os.cpu_count()} cores)")
    print(f"  {len(ms)} commands ({args.pairs} pause/resume pairs), {unconfirmed} not changed")
    print(
        f"  p50 {np.percentile(ms, 50):.1f} ms  p99 {np.percentile(ms, 99):.1f} ms  "
        f"max {ms.max():.1f} ms   (goal p50 <= 50 ms, p99 <= 250 ms)"
    )
    tg = np.array(bot[0]) * 1000
    print(f"Telegram update -> the bot's reply, {len(tg)} commands, {bot[1]} not confirmed")
    print(
        f"  p50 {np.percentile(tg, 50):.1f} ms  p99 {np.percentile(tg, 99):.1f} ms  "
        f"max {tg.max():.1f} ms"
    )
    return 0 if unconfirmed == 0 and bot[1] == 0 else 1


def telegram_pairs(api: BotApiStub, pairs: int) -> tuple[list[float], int]:
    """Pause / resume pairs from an allowed user, one at a time: each round trip from the
    update put to the reply received, and how many replies were not a confirmation."""
    rtt: list[float] = []
    bad = 0
    for i in range(pairs * 2):
        action = "pause" if i % 2 == 0 else "resume"
        n = len(api.sent())
        t0 = time.perf_counter()
        api.message(USER, f"/{action} {NAME}")
        reply = api.reply_to(USER, n, timeout=10)
        rtt.append(time.perf_counter() - t0)
        if "confirmed by risk" not in str(reply["text"]):
            bad += 1
    return rtt, bad


if __name__ == "__main__":
    sys.exit(main())
