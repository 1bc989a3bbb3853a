"""Benchmark strategy: subscribes to the ticks of every quoted instrument and does nothing.

Used by ``bench/feed_throughput.py``: the engine's message count and sequence-gap count
then measure what reached the engine.
"""

from __future__ import annotations

from mytrading import wire
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.universe import quoted, universe


class CounterParams(StrategyParams):
    underlyings: list[str] = ["NIFTY", "BANKNIFTY", "SENSEX"]
    strikes: int = 10
    stocks: list[str] = []  # config/stocks.toml names, or ["*"] for all
    stock_strikes: int = -1


class TickCounter(BaseStrategy[CounterParams]):
    name = "tick_counter"

    def on_start(self) -> None:
        p = self.params
        names = quoted(self.refdata, p.underlyings, p.stocks)
        spots = {n: self.refdata.underlying(n).sim_spot for n in names}
        for inst in universe(
            self.refdata, names, self.now().date(), p.strikes, spots.__getitem__, p.stock_strikes
        ):
            self.subscribe_ticks(inst.exchange, inst.symbol)
        self.ticks = 0

    def on_tick(self, tick: wire.Tick) -> None:
        self.ticks += 1
