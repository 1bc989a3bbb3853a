"""The feed: quotes the market and publishes ticks and 1-minute bars.

In the embedded default the quotes come from the simulated market (``market/sim.py``),
stepped on the shared market clock. The live OpenAlgo WebSocket feed lands with issue 3.
"""

from __future__ import annotations

from typing import Any

from mytrading import wire
from mytrading.bus import MD_HWM
from mytrading.daemon import Daemon
from mytrading.feed.bars import BarBuilder
from mytrading.market.sim import SimMarket


class FeedDaemon(Daemon):
    name = "feed"
    pub_hwm = MD_HWM  # a slow reader loses ticks, never stalls the feed; gaps show it

    def setup(self) -> None:
        s = self.settings
        self.market = SimMarket(
            self.refdata, s.sim_underlyings, self.clock.now().date(), s.sim_strikes, s.sim_seed
        )
        self.bars = BarBuilder(self.refdata.calendar, "1m")
        self.ticks_out = 0
        self.bars_out = 0
        self._tick_topics = {
            (si.inst.exchange, si.inst.symbol): wire.tick_topic(si.inst.exchange, si.inst.symbol)
            for si in self.market.instruments
        }
        self.log.info(
            "simulated market ready",
            instruments=len(self.market.instruments),
            market_time=self.clock.now().isoformat(),
            speed=self.clock.speed,
        )
        self.every(1.0 / s.sim_tick_hz, self.publish_ticks, first_in=0)
        self.every(0.1, self.close_bars)

    def publish_ticks(self) -> None:
        for tick in self.market.step(self.clock.now_ns()):
            self.pub.publish(self._tick_topics[(tick.exchange, tick.symbol)], tick)
            self.ticks_out += 1
            bar = self.bars.on_tick(tick)
            if bar is not None:
                self._publish_bar(bar)

    def close_bars(self) -> None:
        for bar in self.bars.close_due(self.clock.now_ns()):
            self._publish_bar(bar)

    def _publish_bar(self, bar: wire.Bar) -> None:
        self.pub.publish(wire.bar_topic(bar.tf, bar.exchange, bar.symbol), bar)
        self.bars_out += 1

    def detail(self) -> dict[str, Any]:
        return {
            "source": "sim",
            "instruments": len(self.market.instruments),
            "ticks": self.ticks_out,
            "bars": self.bars_out,
            "market_time": self.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
        }
