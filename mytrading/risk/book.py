"""What risk knows, as a plain book: filled positions, the quantity still working per
order (indexed by position), entries a halt would cancel, intents seen, approvals in the
last minute, marks, each account's funds and the broker's margin quotes, and the trading
states. The rules (``risk/rules.py``) read it; the core (``risk/core.py``) and what it
calls (``risk/orders.py``) change it.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field

from mytrading.domain.accounts import MAIN
from mytrading.messaging import wire
from mytrading.orders.state import is_final
from mytrading.risk.state import TradingStates

BROKER_MARGIN_FRESH_NS = 600 * 1_000_000_000


@dataclass
class Funds:
    """One account's margin: the broker's last report, and what approvals since need."""

    available: float | None = None  # the broker's available margin, last reported
    funds_ns: int = 0  # wall time of that report
    reserved: collections.deque[tuple[int, float]] = field(default_factory=collections.deque)
    # the sum of ``reserved``, kept as it grows: every margin check asks for it, and summing
    # the deque made each approval cost O(approvals since the broker's last report) (at
    # 1,000 orders a second a fifth of risk's work on an order: bench/latency.py --every 1)
    reserved_sum: float = 0.0

    def report(self, available: float, wall_ns: int) -> None:
        self.available, self.funds_ns = available, wall_ns

    def reserve(self, wall_ns: int, margin: float) -> None:
        """An approval at ``wall_ns`` needs ``margin`` until a broker's report includes it."""
        self.reserved.append((wall_ns, margin))
        self.reserved_sum += margin

    def free(self, wall_ns: int) -> float | None:
        """Available margin less what approvals since the broker's last report need
        (older ones are in that report; a second of slack covers the round trip)."""
        if self.available is None:
            return None
        reserved = self.reserved
        if reserved and reserved[0][0] < self.funds_ns - 1_000_000_000:
            while reserved and reserved[0][0] < self.funds_ns - 1_000_000_000:
                reserved.popleft()
            # summed again, once a report: the same additions in the same order as the
            # running sum's, so the figure is what a sum of the deque gives, to the paisa
            self.reserved_sum = sum((a for _, a in reserved), 0.0)
        if not reserved:
            return self.available
        return self.available - self.reserved_sum


Key3 = tuple[str, str, str]  # (strategy, exchange, symbol)


class WorkingOrders(MutableMapping[str, tuple[Key3, int]]):
    """order id -> (key, signed quantity still working), indexed by key: every pre-trade
    check asks for one key's working orders, and a scan of all of them made each intent
    cost O(orders working). At 1,000 orders a second a short stall of the router left
    thousands working, risk slowed, more stayed working: the book never caught up."""

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[Key3, int]] = {}
        self.by_key: dict[Key3, dict[str, int]] = {}

    def __getitem__(self, oid: str) -> tuple[Key3, int]:
        return self._by_id[oid]

    def __setitem__(self, oid: str, entry: tuple[Key3, int]) -> None:
        if oid in self._by_id:
            del self[oid]
        self._by_id[oid] = entry
        self.by_key.setdefault(entry[0], {})[oid] = entry[1]

    def __delitem__(self, oid: str) -> None:
        key, _ = self._by_id.pop(oid)
        orders = self.by_key[key]
        del orders[oid]
        if not orders:
            del self.by_key[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def of(self, key: Key3) -> dict[str, int]:
        """The working orders of one key: order id -> signed quantity."""
        return self.by_key.get(key, {})


@dataclass
class RiskBook:
    """What risk knows: filled positions, quantity still working, recent approvals."""

    positions: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (strat, ex, sym)
    working: WorkingOrders = field(default_factory=WorkingOrders)
    # working orders that open or grow a position (not exits): what a halt cancels
    entries: set[str] = field(default_factory=set)
    # cancels sent and not yet answered: cancel order id -> the working order it cancels
    cancelling: dict[str, str] = field(default_factory=dict)
    seen_intents: set[str] = field(default_factory=set)
    # quantity of each working order its fills have brought into ``positions``; an order
    # the broker says is done with more filled than that stays working for the rest
    # (``awaiting``) until its fills are booked: a fill lost on the bus is caught up at
    # the router's next heartbeat, and meanwhile the quantity is neither held nor working.
    # The simulator's seed 195: a flatten's fill was lost, its order's end was heard, and
    # the exit job, seeing the position still open and nothing working, sold it again.
    booked: dict[str, int] = field(default_factory=dict)
    awaiting: set[str] = field(default_factory=set)
    approvals: dict[str, collections.deque[int]] = field(
        default_factory=lambda: collections.defaultdict(collections.deque)
    )  # wall ns of approvals in the last minute, per strategy
    ltp: dict[tuple[str, str], float] = field(default_factory=dict)  # live marks
    funds: dict[str, Funds] = field(default_factory=lambda: collections.defaultdict(Funds))
    # the broker's margin per lot: (exchange, symbol, action) -> (rupees, wall ns)
    broker_margin: dict[tuple[str, str, str], tuple[float, int]] = field(default_factory=dict)

    def broker_per_lot(self, exchange: str, symbol: str, action: str, wall_ns: int) -> float | None:
        """The broker's figure if it is fresh (ten minutes), else None: use the table."""
        got = self.broker_margin.get((exchange, symbol, action))
        if got is None or wall_ns - got[1] > BROKER_MARGIN_FRESH_NS:
            return None
        return got[0]

    def free_margin(self, wall_ns: int, account: str = MAIN) -> float | None:
        return self.funds[account].free(wall_ns)

    states: TradingStates = field(default_factory=TradingStates)

    def on_cancel(self, cancel_id: str, ref_order_id: str) -> None:
        """A cancel sent for a working order: until it is answered, the order may still
        fill, or may be gone."""
        self.cancelling[cancel_id] = ref_order_id

    def covering(self, key: tuple[str, str, str], exclude: str = "") -> tuple[int, int]:
        """(buys, sells) working on ``key`` that no cancel has been sent for: what will
        still fill if the market lets it (``exclude``: the order a modify replaces)."""
        going = set(self.cancelling.values()) if self.cancelling else ()
        buys = sells = 0
        for oid, q in self.working.of(key).items():
            if oid == exclude or oid in going:
                continue
            if q > 0:
                buys += q
            else:
                sells -= q
        return buys, sells

    def exposure(self, key: tuple[str, str, str], exclude: str = "") -> tuple[int, int]:
        """(worst long, worst short) position if every working order filled.

        ``exclude`` leaves out one working order: the one a modify would replace.
        """
        pos = self.positions.get(key, 0)
        working = self.working.of(key)
        if not working:  # the common case: nothing else in flight
            return pos, pos
        rest = [q for oid, q in working.items() if oid != exclude]
        buys = sum(q for q in rest if q > 0)
        sells = sum(-q for q in rest if q < 0)
        return pos + buys, pos - sells

    def net(self, key: tuple[str, str, str]) -> int:
        """Position plus every working order: what the book holds once all of them fill."""
        return self.positions.get(key, 0) + sum(self.working.of(key).values())

    def children(self, order_id: str) -> list[str]:
        """The working orders behind one intent: itself, or its child orders if split."""
        prefix = order_id + "."
        return [o for o in self.working if o == order_id or o.startswith(prefix)]

    def on_approved(
        self, order_id: str, key: tuple[str, str, str], signed_qty: int, entry: bool = False
    ) -> None:
        self.working[order_id] = (key, signed_qty)
        if entry:
            self.entries.add(order_id)

    def forget(self, order_id: str) -> None:
        """An order that will never be working (withdrawn before it left)."""
        self.working.pop(order_id, None)
        self.entries.discard(order_id)
        self.cancelling.pop(order_id, None)
        self.booked.pop(order_id, None)
        self.awaiting.discard(order_id)

    def on_update(self, u: wire.OrderUpdate) -> None:
        """Working quantity shrinks as the order fills or ends."""
        if self.cancelling and is_final(u.status):
            # a cancel refused (the order may still fill), or the order itself ended: no
            # longer cancelling. A cancel done leaves it until the broker says the order
            # is cancelled (the router's update of the order, which may come later).
            if u.status == "rejected":
                self.cancelling.pop(u.order_id, None)
            for c in [c for c, ref in self.cancelling.items() if ref == u.order_id]:
                del self.cancelling[c]
        entry = self.working.get(u.order_id)
        if entry is None:
            return
        key, _ = entry
        if u.order_id in self.awaiting:
            return  # done at the broker: only its fills move it now
        sign = 1 if u.action == "BUY" else -1
        booked = self.booked.get(u.order_id, 0)
        if is_final(u.status):
            self.entries.discard(u.order_id)
            owed = u.filled_qty - booked
            if owed > 0:
                self.working[u.order_id] = (key, sign * owed)
                self.awaiting.add(u.order_id)
                return
            del self.working[u.order_id]
            self.booked.pop(u.order_id, None)
        else:
            # what may still fill: the order less what the broker says is filled, or less
            # what its fills booked if more of them came than the update counts
            left = u.quantity - max(u.filled_qty, booked)
            self.working[u.order_id] = (key, sign * max(0, left))

    def on_fill(self, f: wire.Fill) -> None:
        key = (f.strategy, f.exchange, f.symbol)
        signed = f.quantity if f.action == "BUY" else -f.quantity
        self.positions[key] = self.positions.get(key, 0) + signed
        entry = self.working.get(f.order_id)
        if entry is None:
            return
        self.booked[f.order_id] = self.booked.get(f.order_id, 0) + f.quantity
        if f.order_id in self.awaiting:
            left = abs(entry[1]) - f.quantity
            if left > 0:
                self.working[f.order_id] = (entry[0], left if signed > 0 else -left)
                return
            del self.working[f.order_id]
            self.awaiting.discard(f.order_id)
            self.booked.pop(f.order_id, None)
