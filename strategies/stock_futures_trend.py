"""The SMA crossover, stop and reverse, on a stock's near-month future (SBIN by default):
the same rules as ``sma_crossover`` on an index, with the stock's own lot size from the
reference data (the master contract when synced)."""

from __future__ import annotations

from mytrading.engine.loader import sibling

_sma = sibling(__file__, "sma_crossover")


class StockFuturesParams(_sma.SmaParams):  # type: ignore[name-defined,misc]
    underlying: str = "SBIN"
    product: str = "NRML"


class StockFuturesTrend(_sma.SmaCrossover):  # type: ignore[name-defined,misc]
    name = "stock_futures_trend"
    Params = StockFuturesParams
