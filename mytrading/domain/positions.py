"""Net positions from fills: quantity, average price, realized and unrealized P&L.

One ledger serves every place that keeps positions (the simulated broker, the router,
the reconciler) so they can only disagree about the fills they saw, never about the
arithmetic. Average price follows the broker convention: adding averages in, reducing
keeps the average and realizes P&L, crossing zero starts a new average at the fill.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)  # what a ledger keys its positions by


@dataclass
class Position:
    qty: int = 0
    avg: float = 0.0
    realized: float = 0.0
    ltp: float = 0.0

    def unrealized(self) -> float:
        return (self.ltp - self.avg) * self.qty if self.qty and self.ltp else 0.0


class Ledger(Generic[K]):
    def __init__(self) -> None:
        self.positions: dict[K, Position] = {}

    def apply(self, key: K, signed_qty: int, price: float) -> Position:
        p = self.positions.setdefault(key, Position())
        q = p.qty
        new = q + signed_qty
        if q == 0 or (q > 0) == (signed_qty > 0):
            p.avg = (abs(q) * p.avg + abs(signed_qty) * price) / abs(new)
        else:
            closed = min(abs(q), abs(signed_qty))
            p.realized += closed * (price - p.avg) * (1 if q > 0 else -1)
            if new == 0:
                p.avg = 0.0
            elif (new > 0) != (q > 0):
                p.avg = price
        p.qty = new
        return p

    def set_qty(self, key: K, qty: int, avg: float) -> None:
        """Adopt a quantity from outside (the broker is the truth in reconciliation)."""
        p = self.positions.setdefault(key, Position())
        p.qty, p.avg = qty, avg

    def mark(self, key: K, ltp: float) -> None:
        p = self.positions.get(key)
        if p is not None:
            p.ltp = ltp

    def net(self) -> dict[K, int]:
        return {k: p.qty for k, p in self.positions.items()}
