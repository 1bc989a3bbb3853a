"""A late feed changes when a strategy decides, never what. The simulator's feed is 2 s
late with jitter; the strategy is handed, minute by minute, the very bars the simulator
itself made from the same ticks on its own clock, as they were traded (its ``history``:
what a strategy on a feed in step would have been handed), and so takes the decisions a
strategy in step would take.

Two stacks side by side cannot show this: each simulator's walk draws at the instants its
loop wakes, and two loops on a loaded machine wake apart, so their prices part. The
simulator's own bars are the feed in step, exactly."""

from __future__ import annotations

import json
import textwrap
from datetime import date
from pathlib import Path

import pytest

from mytrading.settings import Settings
from tests.procs import Watcher, spawn, stop_all
from tests.simhelpers import KEY, WS_URL, post, start_server

S = 1_000_000_000

STRATEGY = '''
import json, os
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class CrossLog(BaseStrategy):
    """SMA(2)/SMA(4) of three instruments' 1-minute closes: writes down every bar and the
    side it would hold after it (it sends nothing: the decision is what is compared)."""

    name = "cross_log"

    def on_start(self) -> None:
        self.out = open(os.environ["CROSSLOG_FILE"], "a")
        self.closes = {}
        for ex, sym in (self.near_future("NIFTY"), self.near_future("BANKNIFTY"),
                        self.spot("NIFTY")):
            self.subscribe_bars(ex, sym, "1m")

    def on_bar(self, bar: wire.Bar) -> None:
        c = self.closes.setdefault(bar.symbol, [])
        c.append(bar.close)
        self.out.write(json.dumps({"exchange": bar.exchange, "symbol": bar.symbol,
                                   "start": bar.start_ns, "how": bar.closed_by,
                                   "ohlc": [bar.open, bar.high, bar.low, bar.close],
                                   "side": side(c)}) + "\\n")
        self.out.flush()


def side(closes):
    if len(closes) < 4:
        return ""
    fast, slow = sum(closes[-2:]) / 2, sum(closes[-4:]) / 4
    return "BUY" if fast > slow else "SELL" if fast < slow else ""
'''


def side(closes: list[float]) -> str:
    """The strategy's rule, on the bars a feed in step gives."""
    if len(closes) < 4:
        return ""
    fast, slow = sum(closes[-2:]) / 2, sum(closes[-4:]) / 4
    return "BUY" if fast > slow else "SELL" if fast < slow else ""


@pytest.mark.integration
def test_a_feed_two_seconds_late_hands_the_bars_and_decisions_of_one_in_step(
    settings: Settings, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "strats").mkdir()
    (tmp_path / "strats" / "cross_log.py").write_text(textwrap.dedent(STRATEGY))
    log = tmp_path / "log.jsonl"
    clock = {
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "60",
        # a tick every 3 market seconds: a minute's last tick arrives after the minute's
        # end when the feed is 2 s late (the old builder handed such a minute twice)
        "MT_SIM_TICK_HZ": "20",
        "MT_CLOCK_ANCHOR_NS": tmp_env["MT_CLOCK_ANCHOR_NS"],
    }
    sim_env = {k: v for k, v in tmp_env.items() if k != "MT_SIM_API_KEY"}
    sim_env["MT_STATE_DIR"] = tmp_env["MT_STATE_DIR"] + "-sim"
    late = {"MT_SIM_FEED_DELAY_S": "2", "MT_SIM_FEED_JITTER_S": "0.5"}
    proc, host = start_server(sim_env, **clock, **late)
    env = {
        **tmp_env,
        **clock,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
        "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
        "MT_STRATEGIES_DIR": str(tmp_path / "strats"),
        "MT_STRATEGIES": "cross_log",
        "CROSSLOG_FILE": str(log),
    }
    w = Watcher(settings, ("sys.status.feed",))
    procs = [spawn(d, env) for d in ("feed", "engine")]

    def rows() -> list[dict]:
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

    try:
        w.wait(lambda: len(rows()) >= 30, 90, "ten minutes of three instruments handed")
        handed = rows()
        keys = [(r["symbol"], r["start"]) for r in handed]
        assert len(keys) == len(set(keys)), "a minute handed twice"
        compared = decisions = 0
        for sym in {r["symbol"] for r in handed}:
            mine = [r for r in handed if r["symbol"] == sym]
            status, reply = post(
                host,
                "history",
                {"apikey": KEY, "symbol": sym, "exchange": mine[0]["exchange"],
                 "interval": "1m", "start_date": str(date(2026, 11, 20)),
                 "end_date": str(date(2026, 11, 20))},
            )  # fmt: skip
            assert status == 200, reply
            truth = {int(b["timestamp"]) * S: b for b in reply["data"]}
            closes: list[float] = []
            for r in mine[1:]:  # the first live bar began when the engine joined
                b = truth[r["start"]]
                assert r["ohlc"] == [b["open"], b["high"], b["low"], b["close"]], (sym, r)
                closes.append(b["close"])
                compared += 1
            # the same rule on the simulator's own bars takes the same sides, bar by bar
            # (the strategy's first bar is the first close it knows: so is history's here)
            closes = [mine[0]["ohlc"][3], *closes]
            for i, r in enumerate(mine):
                assert r["side"] == side(closes[: i + 1]), (sym, r)
                decisions += bool(r["side"])
        assert compared >= 24 and decisions >= 12
        detail = w.status["feed"].detail
        lag = next(iter(detail["lag"].values()))
        assert 2000 <= lag["p50_ms"] <= 2500 + 15_000, lag  # as late as it was made
    finally:
        stop_all(procs)
        proc.terminate()
        proc.wait(timeout=10)
        w.close()
