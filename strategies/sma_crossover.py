"""SMA crossover on an index's near-month future, always in the market (stop and reverse).

Holds ``+lots`` while the fast SMA of bar closes is above the slow one and ``-lots`` while
it is below; each crossing reverses the position with one order. It acts only on closed
bars, warms up from history, and never trades while one of its orders is still working.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from mytrading import wire
from mytrading.domain import Product
from mytrading.engine.strategy import BaseStrategy, StrategyParams

# Two SMAs of prices on a 0.05 tick that differ at all differ by 0.0005 or more (for
# periods up to 100); running sums drift by ~1e-9 over a million bars. Below EPS they are
# equal, and an exact tie must not read as a cross.
EPS = 1e-6


class SmaParams(StrategyParams):
    underlying: str = "NIFTY"
    timeframe: str = "1m"
    fast: int = Field(5, ge=1)
    slow: int = Field(20, ge=2)
    lots: int = Field(1, ge=1)
    product: Product = "MIS"
    contract: str = ""  # an explicit futures contract instead of the near month's

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaParams:
        """Checked with the parameters (``config check``, start), not at ``on_start``."""
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class SmaCrossover(BaseStrategy[SmaParams]):
    name = "sma_crossover"

    def on_start(self) -> None:
        p = self.params
        if p.contract:
            self.exchange = self.refdata.underlying(p.underlying).fo_exchange
            self.symbol = p.contract
        else:
            self.exchange, self.symbol = self.near_future(p.underlying)
        self.lot = self.lot_size(self.exchange, self.symbol)
        self.add_indicator("SMA", name="fast", period=p.fast)
        self.add_indicator("SMA", name="slow", period=p.slow)
        self.subscribe_bars(self.exchange, self.symbol, p.timeframe, warmup=p.slow)

    def on_roll(self, old: tuple[str, str], new: tuple[str, str], ok: bool) -> None:
        """With ``roll_days``: the bars and the SMAs moved to the new month; trade it."""
        if old == (self.exchange, self.symbol):
            self.exchange, self.symbol = new
            self.lot = self.lot_size(*new)

    def on_bar(self, bar: wire.Bar) -> None:
        p = self.params
        fast, slow = self.get_indicator_value("fast"), self.get_indicator_value("slow")
        if self.warming_up or math.isnan(fast) or math.isnan(slow) or abs(fast - slow) < EPS:
            return  # NaN while warming up; equal (within the running sums' rounding): no side
        if self.has_open_orders(self.symbol):
            return
        target = p.lots * self.lot * (1 if fast > slow else -1)
        self.target_position(self.exchange, self.symbol, target, product=p.product)
