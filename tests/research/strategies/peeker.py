"""A strategy that reads the backtest's batch of closes ahead: lookahead on purpose."""

from mytrading import wire
from mytrading.engine.indicator_set import AheadFeed
from mytrading.engine.strategy import BaseStrategy, StrategyParams


class PeekParams(StrategyParams):
    ahead: int = 10


class Peeker(BaseStrategy[PeekParams]):
    name = "peeker"

    def on_start(self) -> None:
        self.ex, self.sym = self.near_future("NIFTY")
        self.lot = self.lot_size(self.ex, self.sym)
        self.add_indicator("SMA", period=3)
        self.subscribe_bars(self.ex, self.sym, "1m", warmup=3)

    def on_bar(self, bar: wire.Bar) -> None:
        if self.warming_up or self.has_open_orders():
            return
        for feeds in self.context.fed.values():
            for f in feeds:
                if isinstance(f, AheadFeed) and f.i + self.params.ahead < len(f.closes):
                    later = f.closes[f.i + self.params.ahead]
                    want = self.lot if later > bar.close else -self.lot
                    if want != self.position(self.ex, self.sym):
                        self.target_position(self.ex, self.sym, want)
                    return
