"""Through the real daemons: the feed quotes the indices and what the engine's strategies
declare, in their modes (depth for one that asks), not the universe; a restarted feed
quotes the same again."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mytrading.messaging import wire
from mytrading.settings import Settings
from tests.procs import Watcher, spawn

FUT = "NIFTY23NOV26FUT"

STRATEGY = '''
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class DepthWatcher(BaseStrategy):
    """Depth of the near future, ticks of the index; buys one lot on its first depth."""

    name = "depth_watcher"

    def on_start(self) -> None:
        self.subscribe_depth(*self.near_future("NIFTY"))
        self.subscribe_ticks(*self.spot("NIFTY"))
        self.bought = False

    def on_depth(self, depth: wire.Depth) -> None:
        if not self.bought and len(depth.bids) == 5:
            self.bought = True
            self.buy(depth.exchange, depth.symbol, self.lot_size(depth.exchange, depth.symbol))

    def on_order_update(self, update: wire.OrderUpdate) -> None:
        # the router's simulated venue may not have the future's first quote yet when the
        # engine has its first depth (each SUB joins the feed's publisher on its own):
        # "unable to fetch current price"; bought at the next depth instead
        if update.status == "rejected":
            self.bought = False
'''


@pytest.mark.integration
def test_the_feed_quotes_what_is_declared_with_depth(
    settings: Settings, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "depth_watcher.py").write_text(textwrap.dedent(STRATEGY))
    env = {
        **tmp_env,
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_STRIKES": "3",  # 14 options per index quoted by the market, none declared
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "depth_watcher",
    }
    w = Watcher(settings, ("sys.status.", "exec.", "md.depth.", "md.tick."))
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def feed() -> dict:
        return w.status["feed"].detail if "feed" in w.status else {}

    try:
        # four daemons starting at once on a loaded 2-core machine: up to a minute (it took
        # 90 s and more once when the buy was refused, before the strategy tried again)
        w.wait(lambda: any(isinstance(m, wire.Fill) for _, m in w.seen), 60, "the depth buy")
        depth = [m for _, m in w.seen if isinstance(m, wire.Depth)]
        assert depth and {m.symbol for m in depth} == {FUT}
        w.wait(lambda: "engine" in feed().get("declared_by", []), 10, "the engine's interest")
        ticked = {m.symbol for _, m in w.seen if isinstance(m, wire.Tick)}
        indices = {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX"}
        assert FUT in ticked and not {s for s in ticked if s.endswith(("CE", "PE"))}
        assert ticked - {FUT} <= indices  # the indices and what was declared, nothing else
        assert feed()["instruments"] == len(ticked)
        # the feed restarts: it quotes the same again (what it saved; the next declarations)
        procs["feed"].kill()
        procs["feed"].wait(timeout=5)
        old = w.status["feed"].pid
        w.seen.clear()
        procs["feed"] = spawn("feed", env)
        w.wait(lambda: w.status["feed"].pid != old, 20, "the feed back")
        w.wait(lambda: any(isinstance(m, wire.Depth) for _, m in w.seen), 10, "depth again")
    finally:
        for p in procs.values():
            p.kill()
            p.wait(timeout=5)
        w.close()
