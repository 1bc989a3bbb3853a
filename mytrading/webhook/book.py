"""What each webhook strategy holds and has working, kept by the signals daemon from the
router's reports, so a target position (OpenAlgo's smart order) is computed against the
truth and two alerts in quick succession never both buy.

* Positions come from fills (``exec.fill.<strategy>``), seeded after a restart from the
  router's per-strategy snapshot. Which fills to book is the daemon's ``FillSequence``
  (``messaging/catchup.py``), as for the engine and risk: each fill once, in the router's numbering,
  one missed on the bus asked of the router, one already in the snapshot skipped.
* An intent counts as working from the moment it is sent to risk, at its full size, until
  risk refuses it or every order it became is final; meanwhile what has filled of it moves
  from working to the position. The router publishes a fill before the update that
  completes its order, on one socket, so nothing is ever counted in both or in neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mytrading.domain.ids import intent_of
from mytrading.domain.positions import Ledger
from mytrading.messaging import wire
from mytrading.orders.state import is_final, whole_status

Key = tuple[str, str, str, str]  # (strategy, exchange, symbol, product)


@dataclass
class Working:
    """One intent's order, or the child orders risk split it into."""

    key: Key
    action: str
    quantity: int
    fills_seen: int = 0  # quantity of fills booked against it
    parts: int = 1
    states: dict[str, str] = field(default_factory=dict)  # order id -> its latest status

    def update(self, u: wire.OrderUpdate) -> bool:
        """True once every order of the intent is final."""
        self.parts = max(self.parts, u.parts)
        self.states[u.order_id] = u.status
        if u.parts <= 1 and u.quantity:
            self.quantity = u.quantity  # risk may size an order differently
        return is_final(whole_status(self.states.values(), self.parts, self.fills_seen))


class StrategyBook:
    def __init__(self) -> None:
        self.ledger: Ledger[tuple[str, str, str, str]] = Ledger()
        self.working: dict[str, Working] = {}  # intent id -> its order(s)
        # strategy -> the router's fill number its position was last taken from a snapshot
        # at (the square-off's re-read): that strategy's fills up to it are in it already
        self.floor: dict[str, int] = {}
        self.fills_by: dict[str, int] = {}  # strategy -> fills booked

    # ------------------------------------------------------------------ reads

    def position(self, key: Key) -> int:
        p = self.ledger.positions.get(key)
        return p.qty if p else 0

    def working_qty(self, key: Key) -> int:
        """Signed quantity still to fill in ``key`` (intents in flight included)."""
        total = 0
        for w in self.working.values():
            if w.key == key:
                left = max(0, w.quantity - w.fills_seen)
                total += left if w.action == "BUY" else -left
        return total

    def positions_of(self, strategy: str) -> dict[Key, int]:
        return {k: p.qty for k, p in self.ledger.positions.items() if k[0] == strategy and p.qty}

    def working_of(self, strategy: str) -> list[str]:
        return [i for i, w in self.working.items() if w.key[0] == strategy]

    def realized(self, strategy: str) -> float:
        return sum(p.realized for k, p in self.ledger.positions.items() if k[0] == strategy)

    # ---------------------------------------------------------------- changes

    def restore(
        self,
        snapshot: list[wire.PositionSnapshot],
        working: list[wire.WorkingOrder],
        upto: int = 0,
    ) -> None:
        """Positions (and working orders) as the router's snapshot has them; ``upto``: its
        last fill number, below which fills of its strategies are in it already (a
        snapshot taken while fills of other strategies may still be on their way)."""
        for p in snapshot:
            if upto:
                self.floor[p.strategy] = upto
            self.ledger.set_qty(
                (p.strategy, p.exchange, p.symbol, p.product), p.quantity, p.avg_price
            )
        for w in working:
            o = w.order
            k: Key = (o.strategy, o.exchange, o.symbol, o.product)
            entry = self.working.get(o.intent_id)
            if entry is None:
                entry = self.working[o.intent_id] = Working(k, o.action, 0, parts=o.parts)
            entry.quantity += o.quantity
            entry.fills_seen += w.filled_qty
            entry.states[o.order_id] = w.status

    def sent(self, intent: wire.Intent) -> None:
        """An intent went to risk: a new order is working at its full size from now."""
        if not isinstance(intent, wire.PlaceIntent):
            return
        k: Key = (intent.strategy, intent.exchange, intent.symbol, intent.product)
        self.working[intent.intent_id] = Working(k, intent.action, intent.quantity)

    def refused(self, intent_id: str) -> bool:
        """Risk (or the wait for it) refused the intent: nothing of it will fill."""
        return self.working.pop(intent_id, None) is not None

    def on_update(self, u: wire.OrderUpdate) -> bool:
        """True once the intent's orders are all final (it no longer counts as working)."""
        w = self.working.get(u.intent_id)
        if w is None or not w.update(u):
            return False
        del self.working[u.intent_id]
        return True

    def on_fill(self, f: wire.Fill) -> None:
        """Book a fill (one the daemon's ``FillSequence`` handed: never one twice), unless
        a snapshot taken in since holds it."""
        if f.fill_no <= self.floor.get(f.strategy, 0):
            return
        signed = f.quantity if f.action == "BUY" else -f.quantity
        self.ledger.apply((f.strategy, f.exchange, f.symbol, f.product), signed, f.price)
        self.fills_by[f.strategy] = self.fills_by.get(f.strategy, 0) + 1
        w = self.working.get(intent_of(f.order_id))
        if w is not None:
            w.fills_seen += f.quantity
