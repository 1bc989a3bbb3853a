"""One decision's orders on one side of the comparison, in paise.

A *trade* here is what a strategy decided once (an intent): the order it asked for (the
children of an order split above the freeze quantity summed back into one) and what of it
filled. Live trades come from the router's journal of the day, the shadow's from the
backtest's results. Every amount is kept in whole paise (``int``), so the bridge between
the two sides adds up exactly, whatever the number of fills.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from typing import Any, Literal

from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.risk.charges import ChargeTable

Side = Literal["live", "shadow"]


def paise(rupees: float) -> int:
    return round(rupees * 100)


# the account the shadow trades and pairs (a follower's copies are counted, not paired)
LEAD = "main"


@dataclass
class Trade:
    side: Side
    strategy: str
    intent_id: str
    exchange: str
    symbol: str
    action: str  # BUY | SELL
    quantity: int  # asked (a split order's children summed)
    # when it was decided: live, its strategy's moment (an older journal's, or risk's own
    # exit's: its first order's hand-over to the broker); the shadow's step
    decided_ns: int
    filled: int = 0
    value: int = 0  # sum of quantity x price over its fills, paise
    charges: int = 0  # paise
    first_fill_ns: int = 0
    fills: int = 0  # how many fills made it (more than one: partly filled on the way)
    state: str = ""  # its order's last state on this side (a split order: its last child's)
    reason: str = ""  # ... and the reason given with it (a rejection's)
    bar_ns: int = 0  # the start of the bar that decided it (0: not said, or no bar's)
    fill_of: str = ""  # the intent whose fill it answered ("": none, or not said)
    sent_ns: int = 0  # live: its first order's hand-over to the broker (0: the shadow's)

    @property
    def key(self) -> tuple[str, str, str, int]:
        """What makes two sides' trades the same decision."""
        return (self.exchange, self.symbol, self.action, self.quantity)

    @property
    def by_risk(self) -> bool:
        """An exit risk placed itself (a stop, a trailing stop, a square-off, a flatten):
        not the strategy's decision (``risk/exits.py`` names its intents so)."""
        return self.intent_id.startswith("risk-")

    @property
    def sign(self) -> int:
        return 1 if self.action == "BUY" else -1

    def pnl(self, mark: int) -> int:
        """What it made by the close, valued at ``mark`` (paise), before charges."""
        return self.sign * (self.filled * mark - self.value)

    @property
    def avg(self) -> float:
        """Its average fill price in rupees (0 when nothing filled)."""
        return self.value / self.filled / 100 if self.filled else 0.0

    def add_fill(self, quantity: int, price: float, exch_ns: int, charges: float) -> None:
        self.filled += quantity
        self.value += quantity * paise(price)
        self.charges += paise(charges)
        self.fills += 1
        if not self.first_fill_ns or exch_ns < self.first_fill_ns:
            self.first_fill_ns = exch_ns

    def row(self) -> dict[str, Any]:
        return {
            "intent_id": self.intent_id,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "action": self.action,
            "quantity": self.quantity,
            "decided_ns": self.decided_ns,
            "filled": self.filled,
            "avg_price": round(self.avg, 4),
            "fills": self.fills,
            "charges": self.charges / 100,
        }


@dataclass
class Settled:
    """A fill outside the day's trades: an expiring contract closed at its settlement
    price, or (``stray``) a fill of an order its side has no record of."""

    strategy: str
    exchange: str
    symbol: str
    signed: int
    value: int  # paise, signed as the quantity
    charges: int

    def pnl(self, mark: int) -> int:
        return self.signed * mark - self.value


@dataclass
class SideOfDay:
    """One side's trades of the day, by strategy, with its settlements and the orders it
    left out (to other accounts: the shadow trades the lead account only)."""

    side: Side
    trades: dict[str, list[Trade]] = field(default_factory=dict)
    settled: dict[str, list[Settled]] = field(default_factory=dict)
    stray: dict[str, list[Settled]] = field(default_factory=dict)  # fills of no known order
    left_out: dict[str, int] = field(default_factory=dict)  # strategy -> follower orders
    other_days: int = 0  # live: orders in the day's journal not handed to the broker that day
    # live: risk's exit orders the router refused before sending them (an exit says no
    # decision moment, so its day is its hand-over's; its retry is paired)
    exits_unsent: int = 0

    def strategies(self) -> set[str]:
        return set(self.trades) | set(self.settled) | set(self.stray)

    def net(self, strategy: str, mark: Callable[[str, str], int]) -> int:
        """The strategy's net P&L of the day on this side, paise: every fill valued at the
        close ``mark`` less its charges."""
        got = sum(t.pnl(mark(t.exchange, t.symbol)) - t.charges
                  for t in self.trades.get(strategy, []))  # fmt: skip
        for s in (*self.settled.get(strategy, []), *self.stray.get(strategy, [])):
            got += s.pnl(mark(s.exchange, s.symbol)) - s.charges
        return got


def _settled(
    strategy: str, exchange: str, symbol: str, action: str, qty: int, price: float, charges: float
) -> Settled:
    signed = qty if action == "BUY" else -qty
    return Settled(strategy, exchange, symbol, signed, signed * paise(price), paise(charges))


def _charges(
    table: ChargeTable, refdata: RefData, f: wire.Fill, day: date, dp: dict[Any, date]
) -> float:
    kind = refdata.instrument(f.exchange, f.symbol).kind
    return table.of_fill(f, kind, day, dp).total


def live_side(
    orders: Iterable[tuple[wire.Order, int, str, str]],
    fills: Iterable[wire.Fill],
    refdata: RefData,
    charges: ChargeTable,
    day: date,
    account: str = LEAD,
) -> SideOfDay:
    """The live trades from the router's journal: each placed order, in the journal's
    order, with the market time it was handed to the broker, its last state and reason,
    and the day's fills. Orders
    to another account than ``account`` (a follower's copies) are counted, not paired. So
    are orders not handed to the broker on ``day`` (``other_days``): a journal rolled a
    moment into the next day (the simulator's clock jumps from the close to the next open)
    holds that day's first orders too, some not handed yet when it was copied aside; the
    fills of another day are left with them. An order never handed (cancelled before its
    turn) is of the day its strategy decided it on."""
    out = SideOfDay("live")
    lo = int(datetime.combine(day, dtime.min, IST).timestamp()) * 10**9
    hi = lo + 86_400 * 10**9
    by_order: dict[str, Trade] = {}
    by_intent: dict[tuple[str, str], Trade] = {}
    for o, sent_ns, state, reason in orders:  # the journal's order: as risk approved them
        if o.op != "place":
            continue
        # an order never handed to the broker (cancelled in the router's queue by risk's
        # halt, say) is still the decision its strategy made that day: taken by its moment
        if not sent_ns and not o.decided_ns and o.intent_id.startswith("risk-"):
            if o.account == account:  # another account's: said on that account's side
                out.exits_unsent += 1
            continue
        if not lo <= (sent_ns or o.decided_ns) < hi:
            out.other_days += 1
            continue
        if o.account != account:
            out.left_out[o.strategy] = out.left_out.get(o.strategy, 0) + 1
            continue
        t = by_intent.get((o.strategy, o.intent_id))
        if t is None:
            t = by_intent[(o.strategy, o.intent_id)] = Trade(
                "live",
                o.strategy,
                o.intent_id,
                o.exchange,
                o.symbol,
                o.action,
                0,
                o.decided_ns or sent_ns,
                bar_ns=o.bar_ns,
                fill_of=o.fill_of,
                sent_ns=sent_ns,
            )
            out.trades.setdefault(o.strategy, []).append(t)
        t.quantity += o.quantity
        t.state, t.reason = state, reason
        by_order[o.order_id] = t
    dp: dict[Any, date] = {}
    for f in fills:
        if f.account != account or not lo <= f.exch_ns < hi:
            continue
        c = _charges(charges, refdata, f, day, dp)
        t = by_order.get(f.order_id)
        if f.settlement or t is None:
            kept = _settled(f.strategy, f.exchange, f.symbol, f.action, f.quantity, f.price, c)
            (out.settled if f.settlement else out.stray).setdefault(f.strategy, []).append(kept)
        else:
            t.add_fill(f.quantity, f.price, f.exch_ns, c)
    return out


def shadow_side(orders: dict[str, dict[str, Any]], fills: list[dict[str, Any]]) -> SideOfDay:
    """The shadow's trades from a backtest's results (``Results.orders`` and ``.fills``,
    whose charges the backtest worked out with the same table)."""
    out = SideOfDay("shadow")
    by_order: dict[str, Trade] = {}
    by_intent: dict[tuple[str, str], Trade] = {}
    for oid, o in sorted(orders.items(), key=lambda kv: kv[1]["time"]):
        if o.get("op", "place") != "place":
            continue
        intent = o.get("intent_id") or oid
        t = by_intent.get((o["strategy"], intent))
        if t is None:
            t = by_intent[(o["strategy"], intent)] = Trade(
                "shadow", o["strategy"], intent, o["exchange"], o["symbol"], o["action"], 0,
                o["time"], bar_ns=o.get("bar_ns", 0), fill_of=o.get("fill_of", ""),
            )  # fmt: skip
            out.trades.setdefault(o["strategy"], []).append(t)
        t.quantity += o["quantity"]
        t.state, t.reason = o.get("status", ""), o.get("reason", "")
        by_order[oid] = t
    for f in fills:
        t = by_order.get(f["order_id"])
        if f.get("settlement") or t is None:
            kept = _settled(f["strategy"], f["exchange"], f["symbol"], f["action"],
                            f["quantity"], f["price"], f["charges"])  # fmt: skip
            (out.settled if f.get("settlement") else out.stray).setdefault(
                f["strategy"], []
            ).append(kept)
        else:
            t.add_fill(f["quantity"], f["price"], f["time"], f["charges"])
    return out
