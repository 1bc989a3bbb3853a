"""The strategy base's helpers a strategy calls on every bar or tick, in a class of their
own so the compiled build runs them as C (``mytrading/compiled.py``; issue 54).

``BaseStrategy`` (``engine/strategy.py``) subclasses ``StrategyHelpers``, and an author's
strategy subclasses ``BaseStrategy`` in plain Python: the class allows interpreted
subclasses. The rest of the strategy base stays interpreted: its class-level defaults
(``signal_lots`` and the like, which an author's class overrides) would be read from the
instance's own slot by compiled code, not from the author's class, and its order
helpers' typed keywords (``**terms: Unpack[OrderTerms]``) are beyond mypyc 2.4.1 (an
internal error building their text signature). What is here reads the context and hands
an order to it: the hot path of an always-in-the-market strategy (``warming_up``, an
indicator's value, ``has_open_orders``, the position, ``target_position``): compiled,
the SMA backtest runs 9 % faster (``bench/alternate.py`` against the commit before, in
docs/benchmarks.md), and 4.5 % more with ``target_position``'s int check made here.

Each helper's checks are the same either build: an argument an author may get wrong is
taken as ``object`` and checked by name (a typed parameter of the compiled build would
refuse it with "int object expected" where the interpreted one took it).
"""

from __future__ import annotations

from typing import Any

from mytrading import domain
from mytrading.domain import Action
from mytrading.engine.context import StrategyContext

try:  # the compiled build's tools (requirements-build.lock, in every venv of main.py)
    from mypy_extensions import mypyc_attr
except ImportError:  # elsewhere the class runs interpreted, where the marker means nothing

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Any:  # type: ignore[misc]
        return lambda cls: cls


@mypyc_attr(allow_interpreted_subclasses=True)
class StrategyHelpers:
    """The hot helpers of ``BaseStrategy`` (documented there, where authors read them)."""

    context: StrategyContext  # set by ``BaseStrategy.__init__``

    @property
    def warming_up(self) -> bool:
        """True while warm-up history is replayed (orders are not sent)."""
        return self.context.warming_up

    def get_indicator_value(self, name: str, output: str | None = None) -> float:
        """The latest value (NaN while warming up); ``output`` picks one of several
        (MACD: macd/signal/hist, BBANDS: upper/middle/lower, SUPERTREND: line/direction)."""
        return self.context.indicator_value(name, output)

    def has_open_orders(self, symbol: object = None) -> bool:
        """An order of this strategy still working (of ``symbol``, when given)."""
        working = self.context.open_orders
        if not working:  # asked on every bar; usually nothing is working
            return False
        return any(symbol is None or o.symbol == symbol for o in working.values())

    def position(self, exchange: str, symbol: str) -> int:
        """The net position, from fills (negative: short)."""
        return self.context.position(exchange, symbol)

    def working(self, exchange: str, symbol: str) -> int:
        """Signed quantity of this instrument still working in open orders."""
        return self.context.working(exchange, symbol)

    def target_position(
        self,
        exchange: str,
        symbol: str,
        target: object,
        min_change: object = 0,
        min_lots: object = 0.0,
        min_pct: object = 0.0,
        *,
        pricetype: object = "MARKET",
        product: object = "MIS",
        price: object = 0.0,
        trigger_price: object = 0.0,
        sizing: str = "",
        sizing_per_lot: object = 0.0,
    ) -> str | None:
        """Trade to a net position (OpenAlgo smart-order semantics): the difference between
        the target and the position plus what is still working; None if nothing to do.

        The band: a change smaller than ``min_change`` units, ``min_lots`` lots, or
        ``min_pct`` % of the target (the largest of the three) is not made, so a target
        that follows a price does not pay brokerage for a share or two. Going flat, going
        in from flat and turning round are always made. The order's terms are
        ``OrderTerms`` (``engine/strategy.py``), by keyword, with ``context.order``'s
        defaults: named here rather than taken as ``**terms``, so no call makes a dict."""
        if type(target) is not int:  # an int (not a bool): checked here, as C, on every bar
            domain.quantity(target, "target")  # raises, saying what is wrong with it
        goal: int = target  # type: ignore[assignment]  # an int, checked above
        ctx = self.context  # asked on every bar by always-in-market strategies
        held = ctx.position(exchange, symbol) + ctx.working(exchange, symbol)
        diff = goal - held
        if diff == 0:
            return None
        if min_change or min_lots or min_pct:
            change = domain.price(min_change, "min_change")
            lots_of = domain.price(min_lots, "min_lots")
            pct = domain.price(min_pct, "min_pct")
            if goal and held and (goal > 0) == (held > 0):
                lots = lots_of * ctx.lot_size(exchange, symbol) if lots_of else 0.0
                band = max(change, lots, abs(goal) * pct / 100.0)
                if abs(diff) < band:
                    return None
        side: Action = "BUY" if diff > 0 else "SELL"
        return ctx.order(
            side,
            exchange,
            symbol,
            abs(diff),
            pricetype,
            product,
            price,
            trigger_price,
            sizing,
            sizing_per_lot=sizing_per_lot,
        )
