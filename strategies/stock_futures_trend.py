"""The SMA crossover, stop and reverse, on a stock's near-month future (SBIN by default):
the same rules as ``sma_crossover`` on an index, with the stock's own lot size from the
reference data (the master contract when synced)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mytrading.domain import Product
from mytrading.engine.loader import sibling

if TYPE_CHECKING:  # the type checker reads strategies/ as modules (mypy_path)
    from sma_crossover import SmaCrossover, SmaParams
else:  # strategies/ is a directory of files: its sibling, as the engine loads it
    _sma = sibling(__file__, "sma_crossover")
    SmaCrossover, SmaParams = _sma.SmaCrossover, _sma.SmaParams


class StockFuturesParams(SmaParams):
    underlying: str = "SBIN"
    product: Product = "NRML"


class StockFuturesTrend(SmaCrossover):
    name = "stock_futures_trend"
    Params = StockFuturesParams
