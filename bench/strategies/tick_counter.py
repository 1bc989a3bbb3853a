"""Benchmark strategy: subscribes to the ticks of every quoted instrument and does nothing.

Used by ``bench/feed_throughput.py``: the engine's message count and sequence-gap count
then measure what reached the engine.
"""

from __future__ import annotations

from mytrading import wire
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.universe import universe


class CounterParams(StrategyParams):
    underlyings: list[str] = ["NIFTY", "BANKNIFTY", "SENSEX"]
    strikes: int = 10


class TickCounter(BaseStrategy):
    name = "tick_counter"
    Params = CounterParams

    def on_start(self) -> None:
        p: CounterParams = self.params  # type: ignore[assignment]
        spots = {n: self.refdata.underlying(n).sim_spot for n in p.underlyings}
        for inst in universe(
            self.refdata, p.underlyings, self.now().date(), p.strikes, spots.__getitem__
        ):  # type: ignore[attr-defined]
            self.subscribe_ticks(inst.exchange, inst.symbol)
        self.ticks = 0

    def on_tick(self, tick: wire.Tick) -> None:
        self.ticks += 1
