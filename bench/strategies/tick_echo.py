"""Benchmark strategy: answers every Nth tick with a one-lot MARKET order, alternating sides.

Used by ``bench/latency.py`` only (``MT_STRATEGIES_DIR=bench/strategies``): it turns ticks
into orders with as little strategy work as possible, so the figure measures the stack.
"""

from __future__ import annotations

from pydantic import Field

from mytrading import wire
from mytrading.engine.strategy import BaseStrategy, StrategyParams


class EchoParams(StrategyParams):
    underlying: str = "NIFTY"
    every: int = Field(1, ge=1)


class TickEcho(BaseStrategy[EchoParams]):
    name = "tick_echo"

    def on_start(self) -> None:
        p = self.params
        u = self.refdata.underlying(p.underlying)
        self.exchange, self.symbol = self.near_future(p.underlying)
        self.lot = self.lot_size(self.exchange, self.symbol)
        self.n = 0
        self.subscribe_ticks(self.exchange, self.symbol)
        self.subscribe_ticks(u.spot_exchange, p.underlying)

    def on_tick(self, tick: wire.Tick) -> None:
        self.n += 1
        if self.n % self.params.every:
            return
        if (self.n // self.params.every) % 2:
            self.buy(self.exchange, self.symbol, self.lot)
        else:
            self.sell(self.exchange, self.symbol, self.lot)
