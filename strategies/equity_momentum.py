"""Momentum on a universe of stocks, intraday: long a stock while its fast EMA of bar
closes is above the slow one, flat otherwise.

Each stock of ``universe`` (``[universes]`` in config/stocks.toml, ten by default) gets
``rupees`` worth of shares, rounded down to whole shares, bought MIS on NSE when the fast
EMA crosses above the slow one and sold when it crosses back. Positions are intraday:
risk squares MIS off at 15:15. It acts on closed bars only, after warming up from
history, and never sends a second order for a stock while one is working.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from mytrading import wire
from mytrading.domain import Product
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.indicators.stream import EMA


class EquityMomentumParams(StrategyParams):
    universe: str = "demo10"
    timeframe: str = "1m"
    fast: int = Field(5, ge=1)
    slow: int = Field(20, ge=2)
    rupees: float = Field(100_000.0, gt=0)  # per stock
    product: Product = "MIS"
    rebalance_pct: float = Field(10.0, ge=0, le=100)  # of the target: smaller changes wait

    @model_validator(mode="after")
    def _fast_below_slow(self) -> EquityMomentumParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class EquityMomentum(BaseStrategy[EquityMomentumParams]):
    name = "equity_momentum"

    def on_start(self) -> None:
        p = self.params
        self.emas: dict[str, tuple[EMA, EMA]] = {}
        for stock in self.universe(p.universe):
            exchange, symbol = self.equity(stock)
            self.emas[symbol] = (EMA(p.fast), EMA(p.slow))
            self.subscribe_bars(exchange, symbol, p.timeframe, warmup=p.slow)

    def on_bar(self, bar: wire.Bar) -> None:
        p = self.params
        pair = self.emas.get(bar.symbol)
        if pair is None:
            return
        fast, slow = pair[0].update(bar.close), pair[1].update(bar.close)
        if self.warming_up or math.isnan(fast) or math.isnan(slow):
            return
        if self.has_open_orders(bar.symbol):
            return
        shares = int(p.rupees // bar.close)
        target = shares if fast > slow else 0
        # re-sized only when the price has moved the target by rebalance_pct: a share
        # or two each minute would pay a brokerage fee for a rupee of exposure
        self.target_position(
            bar.exchange, bar.symbol, target, min_pct=p.rebalance_pct, product=p.product
        )
