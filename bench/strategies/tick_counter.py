"""Benchmark strategy: subscribes to the ticks of every quoted instrument and does nothing.

Used by ``bench/feed_throughput.py``: the engine's message count and sequence-gap count
then measure what reached the engine. With ``bar_log`` (``bench/bar_delay.py``) it also
takes every instrument's 1-minute bars and writes down, for each, how long after the
minute's end it was handed (market time: wall time at ``MT_SIM_SPEED=1``) and how it
closed.
"""

from __future__ import annotations

import json

from mytrading import wire
from mytrading.domain.universe import at_sim_levels
from mytrading.engine.strategy import BaseStrategy, StrategyParams


class CounterParams(StrategyParams):
    underlyings: list[str] = ["NIFTY", "BANKNIFTY", "SENSEX"]
    strikes: int = 10
    stocks: list[str] = []  # config/stocks.toml names, or ["*"] for all
    stock_strikes: int = -1
    # a file: one line a bar handed, [symbol, delay_s, closed_by, late_ticks, start_ns]
    bar_log: str = ""


class TickCounter(BaseStrategy[CounterParams]):
    name = "tick_counter"

    def on_start(self) -> None:
        p = self.params
        day = self.now().date()
        for inst in at_sim_levels(
            self.refdata, p.underlyings, p.stocks, day, p.strikes, p.stock_strikes
        ):
            self.subscribe_ticks(inst.exchange, inst.symbol)
            if p.bar_log:
                self.subscribe_bars(inst.exchange, inst.symbol, "1m")
        self.ticks = 0
        self.out = open(p.bar_log, "a") if p.bar_log else None  # noqa: SIM115 (kept open)

    def on_bar(self, bar: wire.Bar) -> None:
        if self.out is None or self.warming_up:
            return
        now_ns = int(self.now().timestamp() * 1e9)
        delay = (now_ns - bar.start_ns) / 1e9 - 60
        row = [bar.symbol, delay, bar.closed_by, bar.late_ticks, bar.start_ns]
        self.out.write(json.dumps(row) + "\n")
        self.out.flush()

    def on_tick(self, tick: wire.Tick) -> None:
        self.ticks += 1
