"""Benchmark strategy for ``bench/scale.py``: one of ``shards`` strategies, each on its own
share of the quoted instruments (every ``shards``-th, from ``shard``), doing what a
strategy does with them: an EMA of every tick's price, a fast and a slow SMA of the 1-minute
closes and the crossover between them (a decision it does not send: the order path is
``bench/latency.py``'s figure; with ``trade``, each crossing of a future goes out as a
MARKET order to one lot on its side, and its first fill is timed from the decision).

What it measures, written to ``out`` (a JSON line every ``flush_s`` seconds, appended):
each tick's arrival at the stack (the ``ts`` the feed stamped as it published it) to this
``on_tick``, in microseconds of the machine's clock, and each 1-minute bar's delay after
the minute's end (market time: wall time at ``MT_SIM_SPEED=1``), the first bar of each
instrument since the start apart (partial, it waits up to ``FIRST_BAR_WAIT_S`` for the
broker's whole copy: ``engine/warmup.py``).

``bench/scale.py`` writes the subclasses (``scale_00`` ... ``scale_49``) beside a copy of
this file; each takes this class through ``sibling``, as a strategy that builds on
another's does.
"""

from __future__ import annotations

import json
import time
from collections import deque

from mytrading import wire
from mytrading.domain.ids import OrderId
from mytrading.domain.universe import at_sim_levels
from mytrading.engine.strategy import BaseStrategy, StrategyParams


class ScaleParams(StrategyParams):
    underlyings: list[str] = ["NIFTY", "BANKNIFTY", "FINNIFTY", "SENSEX"]
    strikes: int = 10
    stocks: list[str] = []
    stock_strikes: int = -1
    shard: int = 0
    shards: int = 1
    out: str = ""
    flush_s: float = 5.0
    fast: int = 5
    slow: int = 20
    trade: bool = False  # send each crossing of a future as a MARKET order to one lot


class ScaleWorker(BaseStrategy[ScaleParams]):
    name = "scale_worker"

    def on_start(self) -> None:
        p = self.params
        day = self.now().date()
        every = at_sim_levels(
            self.refdata, p.underlyings, p.stocks, day, p.strikes, p.stock_strikes
        )
        self.mine = every[p.shard :: p.shards]
        for inst in self.mine:
            self.subscribe_ticks(inst.exchange, inst.symbol)
            self.subscribe_bars(inst.exchange, inst.symbol, "1m")
        self.ema: dict[str, float] = {}
        self.closes: dict[str, deque[float]] = {}
        self.side: dict[str, int] = {}
        self.crossings = 0
        self.lat_us: list[float] = []
        self.bar_s: list[float] = []
        self.first_s: list[float] = []
        self.had_bar: set[str] = set()
        self.ticks = 0
        self.flushed = time.monotonic()
        self.sent_at: dict[str, int] = {}  # intent -> monotonic ns it was decided
        self.orders = 0
        self.filled_n = 0
        self.fill_ms: list[float] = []

    def on_tick(self, tick: wire.Tick) -> None:
        self.lat_us.append((time.time_ns() - tick.ts) / 1000)
        self.ticks += 1
        prev = self.ema.get(tick.symbol, tick.ltp)
        self.ema[tick.symbol] = prev + 0.1 * (tick.ltp - prev)
        if time.monotonic() - self.flushed >= self.params.flush_s:
            self.flush()

    def on_bar(self, bar: wire.Bar) -> None:
        if not self.warming_up:
            now_ns = int(self.now().timestamp() * 1e9)
            delay = (now_ns - bar.start_ns) / 1e9 - 60
            if bar.symbol in self.had_bar:
                self.bar_s.append(delay)
            else:  # the first since the start: partial, it waits for the broker's copy
                self.had_bar.add(bar.symbol)
                self.first_s.append(delay)
        p = self.params
        closes = self.closes.setdefault(bar.symbol, deque(maxlen=p.slow))
        closes.append(bar.close)
        if len(closes) < p.slow:
            return
        fast = sum(list(closes)[-p.fast :]) / p.fast
        slow = sum(closes) / p.slow
        side = 1 if fast > slow else -1
        if self.side.get(bar.symbol, side) != side:
            self.crossings += 1
            if p.trade and not self.warming_up:
                self.cross(bar.exchange, bar.symbol, side)
        self.side[bar.symbol] = side

    def cross(self, exchange: str, symbol: str, side: int) -> None:
        """A future's crossing: to one lot on its side, at market (a desk trades the
        futures of what it watches: about 5 % of the instruments here, within OpenAlgo's
        10 orders a second); the decision's moment kept, its first fill's measured
        against it (``on_fill``)."""
        if self.refdata.instrument(exchange, symbol).kind != "FUT":
            return
        delta = side * self.lot_size(exchange, symbol) - self.position(exchange, symbol)
        if not delta:
            return
        send = self.buy if delta > 0 else self.sell
        intent = send(exchange, symbol, abs(delta))
        if intent:
            self.sent_at[intent] = time.monotonic_ns()
            self.orders += 1

    def on_fill(self, fill: wire.Fill) -> None:
        decided = self.sent_at.pop(OrderId.parse(fill.order_id).intent, 0)
        if decided:  # its first fill: the decision to the fill handed back here
            self.filled_n += 1
            self.fill_ms.append((time.monotonic_ns() - decided) / 1e6)

    def on_stop(self) -> None:
        self.flush()

    def flush(self) -> None:
        self.flushed = time.monotonic()
        if not self.params.out:
            return
        row = {
            "strategy": self.name,
            "at": time.time(),
            "instruments": len(self.mine),
            "ticks": self.ticks,
            "lat_us": self.lat_us,
            "bar_s": self.bar_s,
            "first_s": self.first_s,
            "orders": self.orders,
            "fills": self.filled_n,
            "fill_ms": self.fill_ms,
        }
        with open(self.params.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.lat_us, self.bar_s, self.first_s, self.fill_ms = [], [], [], []
