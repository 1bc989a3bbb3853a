"""A feed outage leaves no gap and no repeat in the bars: the missed minutes come from
history, asked off the feed's loop at OpenAlgo's pace (one call per 0.35 s), so the feed
keeps its heartbeat while some twenty symbols are backfilled; a strategy's 1-minute bars
take the backfilled minutes too (the engine joins them to its own, ``domain/bars.py``)."""

from __future__ import annotations

import itertools
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from mytrading.messaging import wire
from mytrading.settings import load_settings
from tests.procs import Watcher, spawn
from tests.simhelpers import FUT, KEY, WS_URL, control, start_server

pytestmark = pytest.mark.integration  # real processes or servers


STRATEGY = """
import os
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class MinuteLog(BaseStrategy):
    name = "minute_log"

    def on_start(self) -> None:
        self.out = open(os.environ["MINUTELOG_FILE"], "a")
        self.subscribe_bars("NFO", "NIFTY23NOV26FUT", "1m")

    def on_bar(self, bar: wire.Bar) -> None:
        self.out.write(f"{bar.start_ns} {bar.closed_by}\\n")
        self.out.flush()
"""


def test_outage_backfills_missed_bars_in_order(
    tmp_env: dict[str, str], monkeypatch: Any, tmp_path: Path
) -> None:
    anchor = str(time.time_ns())
    common = {
        "MT_SIM_SPEED": "60",
        "MT_CLOCK_ANCHOR_NS": anchor,
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_UNDERLYINGS": "NIFTY",
        "MT_SIM_STRIKES": "0",
        "MT_SIM_STOCKS": "RELIANCE,HDFCBANK,ICICIBANK,INFY,TCS,SBIN",  # ~20 symbols in all
        "MT_FEED_SUBSCRIBE": "universe",  # no engine here declares what to quote
    }
    server, host = start_server(tmp_env, MT_SIM_FAULTS="true", **common)
    rest_port, ws_port = host.rsplit(":", 1)[1], WS_URL[host].rsplit(":", 1)[1]
    env = {
        **tmp_env,
        **common,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": rest_port,
        "MT_SIM_WS_PORT": ws_port,
        "MT_STRATEGIES_DIR": str(tmp_path),
        "MT_STRATEGIES": "minute_log",
        "MINUTELOG_FILE": str(tmp_path / "minutes.txt"),
    }
    (tmp_path / "minute_log.py").write_text(STRATEGY)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    w = Watcher(load_settings(), ("sys.status.", f"md.bar.1m.NFO.{FUT} "))
    feed, engine = spawn("feed", env), spawn("engine", env)

    def minutes() -> list[tuple[int, str]]:
        path = tmp_path / "minutes.txt"
        lines = path.read_text().split() if path.exists() else []
        return [(int(a), b) for a, b in zip(lines[::2], lines[1::2], strict=True)]

    try:
        bars = lambda: [m for _, m in w.seen if isinstance(m, wire.Bar)]  # noqa: E731
        w.wait(lambda: len(bars()) >= 3 and len(minutes()) >= 2, 30, "bars before the outage")
        # The server drops the feed and refuses it for 4 s: four market minutes at 60x.
        control(
            host,
            "/_sim/faults",
            {"endpoint": "-", "faults": [], "drop_websockets": True, "refuse_s": 4.0},
        )
        w.wait(
            lambda: (
                w.status.get("feed") is not None
                and w.status["feed"].detail.get("bars_backfilled", 0) >= 3
                and w.status["feed"].detail.get("backfilling") == 0
            ),
            40,
            "backfill",
        )
        w.pump(3.0)  # and live bars again after it
        beats = [m.ts for _, m in w.seen if isinstance(m, wire.Status) and m.name == "feed"]
        gap = max(b - a for a, b in itertools.pairwise(beats)) / 1e9
        assert gap < 2.0, f"the feed missed heartbeats: {gap:.2f} s between two"
        assert w.status["feed"].detail["backfilling"] == 0
        starts = [b.start_ns for b in bars()]
        assert len(starts) == len(set(starts)), "a minute was published twice"
        steps = {b - a for a, b in itertools.pairwise(starts)}
        assert steps == {60 * 10**9}, f"gap or disorder in the bars: {sorted(steps)}"
        st = w.status["feed"].detail
        assert st["reconnects"] >= 1 and st["connected"] is True
        assert len(starts) >= 3 + 3 + 2
        assert w.status["feed"].detail["instruments"] >= 18
        # the strategy: each minute once, none missing, the outage's from history
        handed = minutes()
        mine = [a for a, _ in handed]
        assert len(mine) == len(set(mine)) and mine == sorted(mine), handed
        assert {b - a for a, b in itertools.pairwise(mine)} == {60 * 10**9}, handed
        assert sum(how == "history" for _, how in handed) >= 3, handed
    finally:
        for p in (engine, feed):
            p.send_signal(signal.SIGTERM)
        engine.wait(timeout=10)
        feed.wait(timeout=10)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        w.close()
