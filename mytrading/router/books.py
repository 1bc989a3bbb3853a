"""The router's books: each fill booked into its (strategy, instrument, account)
position, marks from the ticks of what is held, position snapshots with P&L, and the
fills kept for readers catching up (``rpc.router``: the reconciler, a restarted engine or
risk). Each fill takes the next router-wide number from the order tracker
(``orders/tracker.py``, the router's table) and the books know each broker trade id they
booked, so none is booked twice. No socket: the daemon subscribes to a symbol's ticks when
``watch`` tells it the symbol is first held."""

from __future__ import annotations

import collections
from collections.abc import Callable

from mytrading.domain import Product
from mytrading.domain.positions import Ledger
from mytrading.messaging import wire
from mytrading.openalgo.broker import TradeEvent, fill_of
from mytrading.orders.tracker import OrderTracker

MAX_FILLS_KEPT = 100_000

# (strategy, exchange, symbol, product, account)
BookKey = tuple[str, str, str, Product, str]


class Books:
    def __init__(
        self, watch: Callable[[str, str], None], numbers: OrderTracker | None = None
    ) -> None:
        self.ledger: Ledger[BookKey] = Ledger()
        self._watch = watch  # called once per (exchange, symbol) first held
        self._keys_by_symbol: dict[tuple[str, str], set[BookKey]] = collections.defaultdict(set)
        self.fills: collections.deque[wire.Fill] = collections.deque(maxlen=MAX_FILLS_KEPT)
        self._fill_ids: set[tuple[str, str]] = set()  # (account, the broker's trade id)
        self.numbers = numbers if numbers is not None else OrderTracker()

    def carry(self, c: wire.PositionSnapshot) -> None:
        """A position carried from an earlier day."""
        key = (c.strategy, c.exchange, c.symbol, c.product, c.account)
        self.ledger.apply(key, c.quantity, c.avg_price)
        self._held(key)

    def seen(self, account: str, trade_id: str) -> bool:
        return (account, trade_id) in self._fill_ids

    @property
    def fill_no(self) -> int:
        """The last fill numbered."""
        return self.numbers.fill_no

    def next_fill(self, order: wire.Order, trade: TradeEvent) -> wire.Fill:
        """The fill of one broker trade, with the next router-wide number."""
        return fill_of(order, trade, self.numbers.next_fill_no())

    def book(self, fill: wire.Fill) -> None:
        key = (fill.strategy, fill.exchange, fill.symbol, fill.product, fill.account)
        self.ledger.apply(
            key, fill.quantity if fill.action == "BUY" else -fill.quantity, fill.price
        )
        self._held(key)
        self._fill_ids.add((fill.account, fill.fill_id))
        self.fills.append(fill)

    def _held(self, key: BookKey) -> None:
        ex, sym = key[1], key[2]
        if not self._keys_by_symbol[(ex, sym)]:
            self._watch(ex, sym)
        self._keys_by_symbol[(ex, sym)].add(key)

    def mark(self, tick: wire.Tick) -> None:
        for key in self._keys_by_symbol.get((tick.exchange, tick.symbol), ()):
            self.ledger.mark(key, tick.ltp)

    def since(self, fill_no: int) -> list[wire.Fill]:
        return [f for f in self.fills if f.fill_no > fill_no]

    def snapshots(self) -> list[wire.PositionSnapshot]:
        return snapshots(self.ledger)

    def net_by_account(self) -> dict[tuple[str, str, str, str], int]:
        """Net quantity per (account, exchange, symbol, product), every strategy together."""
        out: dict[tuple[str, str, str, str], int] = {}
        for (_, ex, sym, prod, account), q in self.ledger.net().items():
            k = (account, ex, sym, prod)
            out[k] = out.get(k, 0) + q
        return out


def snapshots(ledger: Ledger[BookKey]) -> list[wire.PositionSnapshot]:
    """Each (strategy, exchange, symbol, product, account) position of ``ledger``, with
    its P&L. The average price is the ledger's own, unrounded: a restarted risk, engine
    or signals daemon computes P&L from it (rounded to paise, 101 shares bought at three
    prices restarted 5 paise off the broker's cost: the simulator's seed 481); people see
    it rounded where it is shown."""
    return [
        wire.PositionSnapshot(
            strategy=strategy,
            exchange=ex,
            symbol=sym,
            product=prod,
            quantity=p.qty,
            avg_price=p.avg,
            realized_pnl=round(p.realized, 2),
            unrealized_pnl=round(p.unrealized(), 2),
            ltp=p.ltp,
            account=account,
        )
        for (strategy, ex, sym, prod, account), p in ledger.positions.items()
    ]
