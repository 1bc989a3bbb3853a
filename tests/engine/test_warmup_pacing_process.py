"""History paced as OpenAlgo paces it (one call every 0.35 s, process-wide), through the
real daemons: an engine whose strategies warm up on 60 instruments (21 s of pacing) keeps
its heartbeat on time (history is asked for off its loop), says which strategies are still
warming, and delivers every warm-up; the feed's backfill after a reconnect does the same.
"""

from __future__ import annotations

import json
import signal
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from mytrading.messaging import wire
from tests.procs import Watcher, settings_of, spawn, stop_all
from tests.simhelpers import KEY, WS_URL, control, start_server

STRATEGY = '''
from mytrading.engine.strategy import BaseStrategy, StrategyParams


class WarmManyParams(StrategyParams):
    symbols: list[str] = []  # EXCHANGE:SYMBOL


class WarmMany(BaseStrategy):
    """Bars of each instrument named, warmed up on 20 bars of history."""

    name = "warm_many"
    Params = WarmManyParams

    def on_start(self) -> None:
        for name in self.params.symbols:
            self.subscribe_bars(*name.split(":"), "1m", warmup=20)
'''

ORDER = {"INDEX": 0, "EQ": 1, "FUT": 2, "CE": 3, "PE": 3}


def instruments(host: str, n: int) -> list[tuple[str, str, str]]:
    """``n`` instruments the server lists: indices, stocks and futures first, then options
    (their history priced from their index's bars)."""
    url = f"{host}/api/v1/instruments?apikey={KEY}"
    with urllib.request.urlopen(url, timeout=10) as r:
        rows = json.loads(r.read())["data"]
    rows.sort(key=lambda r: (ORDER[r["instrumenttype"]], r["exchange"], r["symbol"]))
    return [(r["exchange"], r["symbol"], r["instrumenttype"]) for r in rows[:n]]


def _gaps(seen: list[tuple[str, wire.Msg]], since_ns: int) -> dict[str, float]:
    """The longest time between two heartbeats of each daemon, by their send stamps."""
    last: dict[str, int] = {}
    worst: dict[str, float] = {}
    for _, m in seen:
        if isinstance(m, wire.Status) and m.ts >= since_ns:
            if m.name in last:
                worst[m.name] = max(worst.get(m.name, 0.0), (m.ts - last[m.name]) / 1e9)
            last[m.name] = m.ts
    return worst


@pytest.mark.integration
@pytest.mark.parametrize("n", [60])  # 100 took 35 s of the suite and showed no more
def test_warming_up_many_instruments_under_openalgos_pacing(
    n: int, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    anchor = str(time.time_ns())
    server, host = start_server(
        {"MT_LOG_DIR": tmp_env["MT_LOG_DIR"], "MT_STATE_DIR": tmp_env["MT_STATE_DIR"] + "-sim"},
        MT_SIM_STOCKS="*",
        MT_SIM_FAULTS="true",
        MT_SIM_HISTORY_SPACING_MS="350",  # what OpenAlgo does (and our default)
        MT_CLOCK_ANCHOR_NS=anchor,
    )
    chosen = instruments(host, n)
    assert len(chosen) == n
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "warm_many.py").write_text(textwrap.dedent(STRATEGY))
    env = {
        **tmp_env,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
        "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "1",
        "MT_SIM_STOCKS": "*",
        "MT_CLOCK_ANCHOR_NS": anchor,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "warm_many",
        "MT_STRATEGY_PARAMS": json.dumps(
            {"warm_many": {"symbols": [f"{ex}:{sym}" for ex, sym, _ in chosen]}}
        ),
    }
    w = Watcher(settings_of(env), ("sys.status.",))
    procs = {d: spawn(d, env) for d in ("router", "risk", "feed", "engine")}

    def warming() -> list[str] | None:
        st = w.status.get("engine")
        return st.detail["strategies"]["warm_many"]["warming"] if st else None

    try:
        w.wait(lambda: bool(warming()), 30, "the engine reporting its warm-ups")
        started = time.time_ns()
        assert len(warming() or []) > n // 2  # most still on the way: they are paced
        # n calls, 0.35 s apart at the server: n * 0.35 s, and some for the stack
        w.wait(lambda: warming() == [], n * 0.35 + 20, "every warm-up delivered")
        took = (time.time_ns() - started) / 1e9
        w.pump(1.5)  # the heartbeats after the last warm-up too
        gaps = _gaps(w.seen, started)
        assert set(gaps) >= {"engine", "feed", "risk", "router"}, gaps
        assert max(gaps.values()) < 2.0, gaps  # peers call a daemon dead after 3 s
        for name in ("engine", "feed", "risk", "router"):
            assert w.status[name].state == "running", (name, w.status[name].state)
        calls = control(host, "/_sim/counts")
        assert calls.get("history:200", 0) >= n, calls  # one call per instrument at least
        log = (Path(tmp_env["MT_LOG_DIR"]) / "engine.log").read_text()
        warmed = {
            x["symbol"]: x["bars"]
            for x in map(json.loads, log.splitlines())
            if x.get("event") == "warmed up"
        }
        assert set(warmed) == {sym for _, sym, _ in chosen}  # each warm-up delivered once
        for _, sym, _ in chosen:  # 20 bars each: the simulator has history of all
            assert warmed[sym] == 20, (sym, warmed[sym])  # (options priced from the index)
        print(f"{n} warm-ups in {took:.1f} s, longest heartbeat gap {max(gaps.values()):.2f} s")
    finally:
        stop_all(procs.values())
        w.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
