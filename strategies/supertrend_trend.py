"""Supertrend trend following with a Supertrend exit, on closed bars only.

Long while Supertrend (Pine v6 rules, ``period`` / ``multiplier``) is bullish, short while
it is bearish (flat instead when ``allow_short`` is off). A flip of direction on a closed
bar is both the exit of the old position and the entry of the new one; nothing acts
inside a bar, so an intrabar breach that closes back does not whipsaw the position.
"""

from __future__ import annotations

from pydantic import Field

from mytrading import wire
from mytrading.domain import Product
from mytrading.engine.strategy import BaseStrategy, StrategyParams


class SupertrendParams(StrategyParams):
    underlying: str = "BANKNIFTY"
    timeframe: str = "3m"
    period: int = Field(10, ge=1)
    multiplier: float = Field(3.0, gt=0)
    lots: int = Field(1, ge=1)
    allow_short: bool = True
    product: Product = "MIS"


class SupertrendTrend(BaseStrategy[SupertrendParams]):
    name = "supertrend_trend"

    def on_start(self) -> None:
        p = self.params
        self.exchange, self.symbol = self.near_future(p.underlying)
        self.lot = self.lot_size(self.exchange, self.symbol)
        self.add_indicator("SUPERTREND", period=p.period, multiplier=p.multiplier)
        self.subscribe_bars(self.exchange, self.symbol, p.timeframe, warmup=5 * p.period)
        self.direction = 0.0

    def on_bar(self, bar: wire.Bar) -> None:
        p = self.params
        d = self.get_indicator_value("SUPERTREND", "direction")
        flipped = d != self.direction
        self.direction = d
        if self.warming_up or d == 0.0 or self.has_open_orders(self.symbol):
            return
        bullish = d == -1.0  # Pine: -1 is an uptrend (line below price)
        target = p.lots * self.lot if bullish else (-p.lots * self.lot if p.allow_short else 0)
        if flipped or self.position(self.exchange, self.symbol) != target:
            line = self.get_indicator_value("SUPERTREND", "line")
            self.log.info("supertrend", bullish=bullish, line=round(line, 2), close=bar.close)
            self.target_position(self.exchange, self.symbol, target, product=p.product)
