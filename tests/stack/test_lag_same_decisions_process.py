"""A late feed changes when a strategy decides, never what: two stacks side by side on
one market clock and one seed, the simulator's feed in step in one and 2 s late (with
jitter) in the other, hand the same bars and take the same decisions."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from tests.procs import spawn, stop_all
from tests.simhelpers import KEY, WS_URL, start_server

STRATEGY = '''
import json, os
from mytrading import wire
from mytrading.engine.strategy import BaseStrategy


class CrossLog(BaseStrategy):
    """SMA(2)/SMA(4) of three instruments' 1-minute closes: writes down every bar and
    every cross it would trade on (it sends nothing: the decision is what is compared)."""

    name = "cross_log"

    def on_start(self) -> None:
        self.out = open(os.environ["CROSSLOG_FILE"], "a")
        self.closes = {}
        self.side = {}
        for ex, sym in (self.near_future("NIFTY"), self.near_future("BANKNIFTY"),
                        self.spot("NIFTY")):
            self.subscribe_bars(ex, sym, "1m", warmup=4)

    def on_bar(self, bar: wire.Bar) -> None:
        c = self.closes.setdefault(bar.symbol, [])
        c.append(bar.close)
        if self.warming_up or len(c) < 4:
            return
        fast, slow = sum(c[-2:]) / 2, sum(c[-4:]) / 4
        side = "BUY" if fast > slow else "SELL" if fast < slow else self.side.get(bar.symbol)
        row = {"symbol": bar.symbol, "start": bar.start_ns, "ohlc": [bar.open, bar.high,
               bar.low, bar.close], "decide": side if side != self.side.get(bar.symbol) else ""}
        self.side[bar.symbol] = side
        self.out.write(json.dumps(row) + "\\n")
        self.out.flush()
'''


def one_stack(tmp_env: dict[str, str], root: Path, name: str, feed: dict[str, str]) -> tuple[list, Path]:
    d = root / name
    (d / "strats").mkdir(parents=True)
    (d / "strats" / "cross_log.py").write_text(textwrap.dedent(STRATEGY))
    clock = {
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "30",
        "MT_SIM_TICK_HZ": "10",  # a tick every 3 market seconds: the last of a minute
        "MT_SIM_SEED": "7",  # arrives after the minute's end when the feed is 2 s late
        "MT_CLOCK_ANCHOR_NS": tmp_env["MT_CLOCK_ANCHOR_NS"],
    }
    own = {
        "MT_LOG_DIR": str(d / "logs"),
        "MT_STATE_DIR": str(d / "state"),
        "MT_RUN_DIR": f"{tmp_env['MT_RUN_DIR']}-{name[0]}",
        "MT_RECORD_DB": str(d / "md.duckdb"),
    }
    sim_env = {k: v for k, v in tmp_env.items() if k != "MT_SIM_API_KEY"}
    sim_env.update(own, MT_STATE_DIR=own["MT_STATE_DIR"] + "-sim")
    proc, host = start_server(sim_env, **clock, **feed)
    env = {
        **tmp_env,
        **own,
        **clock,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
        "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
        "MT_STRATEGIES_DIR": str(d / "strats"),
        "MT_STRATEGIES": "cross_log",
        "CROSSLOG_FILE": str(d / "log.jsonl"),
    }
    return [proc, *(spawn(x, env) for x in ("feed", "engine"))], d / "log.jsonl"


def rows(path: Path) -> dict[tuple[str, int], dict]:
    lines = path.read_text().splitlines() if path.exists() else []
    return {(r["symbol"], r["start"]): r for r in map(json.loads, lines)}


@pytest.mark.integration
def test_a_feed_two_seconds_late_decides_as_one_in_step(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    in_step, in_step_log = one_stack(
        tmp_env, tmp_path, "step", {"MT_SIM_FEED_DELAY_S": "0", "MT_SIM_FEED_JITTER_S": "0"}
    )
    late, late_log = one_stack(
        tmp_env, tmp_path, "late", {"MT_SIM_FEED_DELAY_S": "2", "MT_SIM_FEED_JITTER_S": "0.5"}
    )
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end:  # twelve live minutes of each instrument in both
            a, b = rows(in_step_log), rows(late_log)
            if min(len(a), len(b)) >= 36:
                break
            time.sleep(0.5)
        a, b = rows(in_step_log), rows(late_log)
        common = sorted(set(a) & set(b))
        assert len(common) >= 30, (len(a), len(b))
        # every bar the late stack handed, it handed once (the keys would collide)
        late_lines = late_log.read_text().splitlines()
        assert len(late_lines) == len(b)
        first = {s: min(k[1] for k in common if k[0] == s) for s in {k[0] for k in common}}
        for k in common:
            if k[1] == first[k[0]]:
                continue  # each engine's first live bar began when it joined
            assert a[k]["ohlc"] == b[k]["ohlc"], k
            assert a[k]["decide"] == b[k]["decide"], k
        assert any(a[k]["decide"] for k in common)  # a decision compared, not only bars
    finally:
        stop_all([*in_step, *late])
