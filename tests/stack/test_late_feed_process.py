"""Through the real daemons, against the simulator's messy feed (``MT_SIM_FEED_*``): the
simulator server, the feed and the engine, on one market clock at 60x. Whatever the feed
does (late by a minute, a minute ahead, jittered, reordered, stalled then burst, an
illiquid contract stamped with its last trade), a strategy is handed each minute of each
instrument once, the feed publishes each once, both built of that minute's ticks alone,
and the feed's status says the lag and the clock offset it measured."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from mytrading.messaging import wire
from mytrading.settings import Settings
from tests.procs import Watcher, spawn, stop_all
from tests.simhelpers import KEY, WS_URL, start_server

FUT = "NIFTY23NOV26FUT"
S = 1_000_000_000

STRATEGY = '''
import json, os
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class BarLog(BaseStrategy):
    """Writes down every bar it is handed; trades nothing."""

    name = "bar_log"

    def on_start(self) -> None:
        self.out = open(os.environ["BARLOG_FILE"], "a")
        self.subscribe_bars("NFO", "NIFTY23NOV26FUT", "1m")
        self.subscribe_bars("NSE_INDEX", "NIFTY", "1m")
        self.subscribe_bars("NSE_INDEX", "BANKNIFTY", "1m")

    def on_bar(self, bar: wire.Bar) -> None:
        self.out.write(json.dumps([bar.symbol, bar.start_ns, bar.open, bar.high, bar.low,
                                   bar.close, bar.closed_by, bar.late_ticks]) + "\\n")
        self.out.flush()
'''

# (name, MT_SIM_FEED_* settings, whether any tick may come late)
MESSY = {  # and a broker's clock a minute ahead of ours
    "CLOCK_OFFSET_S": "60",
    "DELAY_S": "2",
    "JITTER_S": "1",
    "REORDER": "0.2",
    "STALL_EVERY_S": "150",
    "STALL_S": "10",
    "ILLIQUID": "1",
    "SEED": "5",
}
# (a minute behind ours, and each fault apart, on every seed of `main.py simulate`: the
# feed's core through late, jittered, reordered, stalled and backfilled ticks, each bar
# checked handed once with its ticks' volume; here the real processes and the real
# simulator server's feed, all at once)
MODES = [
    ("a_minute_ahead_two_seconds_late_jittered_reordered_stalled_illiquid", MESSY, True),
]


@pytest.mark.integration
@pytest.mark.parametrize(("mode", "feed", "may_be_late"), MODES, ids=[m[0] for m in MODES])
def test_each_minute_is_handed_once_whatever_the_feed_does(
    settings: Settings,
    tmp_env: dict[str, str],
    tmp_path: Path,
    mode: str,
    feed: dict[str, str],
    may_be_late: bool,
) -> None:
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "bar_log.py").write_text(textwrap.dedent(STRATEGY))
    barlog = tmp_path / "bars.jsonl"
    clock = {
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "60",
        "MT_SIM_TICK_HZ": "20",  # a tick every 3 market seconds per instrument
        "MT_CLOCK_ANCHOR_NS": tmp_env["MT_CLOCK_ANCHOR_NS"],
    }
    sim_env = {k: v for k, v in tmp_env.items() if k != "MT_SIM_API_KEY"}
    sim_env["MT_STATE_DIR"] = tmp_env["MT_STATE_DIR"] + "-sim"
    proc, host = start_server(sim_env, **clock, **{f"MT_SIM_FEED_{k}": v for k, v in feed.items()})
    env = {
        **tmp_env,
        **clock,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
        "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "bar_log",
        "MT_FEED_PING_S": "1",
        "BARLOG_FILE": str(barlog),
    }
    w = Watcher(settings, ("sys.status.feed", "md.bar.", f"md.tick.NFO.{FUT}"))
    procs = [spawn(d, env) for d in ("feed", "engine")]

    def handed() -> list[list]:
        return [json.loads(x) for x in barlog.read_text().splitlines()] if barlog.exists() else []

    try:
        # five minutes of the future's bars reach the strategy (5 s of wall time at 60x,
        # after a minute-late feed's first minute)
        w.wait(lambda: sum(b[0] == FUT for b in handed()) >= 5, 90, "five minutes handed")
        w.pump(1.0)
        bars = handed()
        per = Counter((b[0], b[1]) for b in bars)
        assert per and max(per.values()) == 1, f"a minute handed twice: {per.most_common(3)}"
        # no hole either (an illiquid contract has none only where it traded: its minutes
        # without a trade have no bar, nothing is invented)
        for sym in ("NIFTY", "BANKNIFTY", *(() if "ILLIQUID" in feed else (FUT,))):
            starts = sorted(b[1] for b in bars if b[0] == sym)
            assert starts and starts == list(range(starts[0], starts[-1] + 1, 60 * S)), sym
        fed = [m for _, m in w.seen if isinstance(m, wire.Bar)]
        fed_per = Counter((b.symbol, b.start_ns) for b in fed)
        assert fed_per and max(fed_per.values()) == 1  # the feed's too
        # the feed's bars and the strategy's: the same ticks, the same bars
        by_key = {(b.symbol, b.start_ns): b for b in fed}
        firsts = {min(x[1] for x in bars if x[0] == s) for s in {x[0] for x in bars}}
        firsts |= {min(x.start_ns for x in fed if x.symbol == s) for s in {x.symbol for x in fed}}
        same = [  # each side's first bar began when it joined: partial, not compared
            (b, by_key[(b[0], b[1])])
            for b in bars
            if (b[0], b[1]) in by_key and b[6] == "data" and b[1] not in firsts
        ]
        assert same and all(
            (x[2], x[3], x[4], x[5]) == (y.open, y.high, y.low, y.close) for x, y in same
        )
        # each of the future's bars is made of its own minute's ticks (as stamped)
        ticks = [m for _, m in w.seen if isinstance(m, wire.Tick)]
        first_tick = min(t.exch_ns for t in ticks)
        for b in bars:
            if b[0] != FUT or b[1] < first_tick or b[6] == "history":
                continue  # the watcher joined after it began; the broker's own copy
            own = [t.ltp for t in ticks if b[1] <= t.exch_ns < b[1] + 60 * S]
            assert own, b
            assert b[3] <= max(own) and b[4] >= min(own) and {b[2], b[5]} <= set(own), b
            if not may_be_late:
                assert (b[3], b[4]) == (max(own), min(own)), b
        detail = w.status["feed"].detail
        if not may_be_late:
            assert detail["late_ticks"] == 0
        lag = next(iter(detail["lag"].values()))
        offset = float(feed.get("CLOCK_OFFSET_S", 0))
        delay = float(feed.get("DELAY_S", 0.25))
        # the lag as measured: the delay (and the clock's offset) at least, less than
        # the delay, jitter, a stall and a loaded machine's few wall ms (times 60)
        assert delay - offset <= lag["p50_ms"] / 1000 <= delay - offset + 15, lag
        w.wait(lambda: "clock_offset_ping_s" in w.status["feed"].detail, 20, "a pong")
        assert abs(w.status["feed"].detail["clock_offset_ping_s"] - offset) < 0.5
        # the feed's recordings hold the bars it published, each once
        stop_all(procs)
        con = duckdb.connect(tmp_env["MT_RECORD_DB"], read_only=True)
        recorded = con.execute(
            "SELECT symbol, epoch_ns(start), open, high, low, close FROM bars WHERE tf = '1m'"
        ).fetchall()
        con.close()
        rec = {(r[0], r[1]): list(r[2:]) for r in recorded}
        assert len(rec) == len(recorded)  # the table's key would refuse a repeat anyway
        for b in fed:
            assert rec[(b.symbol, b.start_ns)] == [b.open, b.high, b.low, b.close], b
    finally:
        stop_all([p for p in procs if p.poll() is None])
        proc.terminate()
        proc.wait(timeout=10)
        w.close()
