"""RSI mean reversion, written in the MyTrading style (``initialize`` / ``on_data`` /
``create_signal``) with the MyTrading defaults: RSI 14, oversold 30, overbought 70, and
a 2 % stop loss from the entry price.

Flat, it buys when RSI falls below ``oversold`` and sells short when it rises above
``overbought``. It exits when RSI has come back to ``exit_level`` or the price has moved
``stop_loss_pct`` against the entry, on closed bars.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from mytrading import wire
from mytrading.engine.strategy import BaseStrategy, Signal, StrategyParams


class RsiParams(StrategyParams):
    underlying: str = "NIFTY"
    timeframe: str = "1m"
    period: int = Field(14, ge=2)
    oversold: float = Field(30.0, gt=0, lt=100)
    overbought: float = Field(70.0, gt=0, lt=100)
    exit_level: float = Field(50.0, gt=0, lt=100)
    stop_loss_pct: float = Field(0.02, gt=0, lt=1)
    lots: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _levels_in_order(self) -> RsiParams:
        if not self.oversold < self.exit_level < self.overbought:
            raise ValueError("need oversold < exit_level < overbought")
        return self


class RsiMeanReversion(BaseStrategy[RsiParams]):
    name = "rsi_mean_reversion"

    def initialize(self) -> None:
        p = self.params
        self.signal_lots = p.lots
        self.exchange, self.symbol = self.near_future(p.underlying)
        self.subscribe_bars(self.exchange, self.symbol, p.timeframe, warmup=3 * p.period)
        self.add_indicator("RSI", period=p.period)

    def on_data(self, data: wire.Bar) -> Signal | None:
        p = self.params
        rsi = self.get_indicator_value("RSI")
        if math.isnan(rsi) or self.warming_up or self.has_open_orders(self.symbol):
            return None
        pos = self.position_view(self.exchange, self.symbol)
        if pos.quantity == 0:
            if rsi < p.oversold:
                return self.create_signal("BUY", confidence=(p.oversold - rsi) / p.oversold)
            if rsi > p.overbought:
                return self.create_signal(
                    "SELL", confidence=(rsi - p.overbought) / (100 - p.overbought)
                )
            return None
        move = (data.close - pos.avg_price) / pos.avg_price * (1 if pos.quantity > 0 else -1)
        if move <= -p.stop_loss_pct:
            return self.create_signal("EXIT", reason=f"stop loss {move:.2%}")
        back = rsi >= p.exit_level if pos.quantity > 0 else rsi <= p.exit_level
        if back:
            return self.create_signal("EXIT", reason=f"RSI back to {rsi:.1f}")
        return None
