"""What a backtest produced: orders, fills with their charges, position changes, round-trip
trades, risk events and the equity curve, per strategy and in total.

Equity is ``capital + cash + sum(quantity x last price)`` where cash is what fills paid and
received less charges, sampled after every bar step (the marks of that step). A round
trip opens when a position leaves zero and closes when it returns to zero or turns round;
its net P&L is its realized P&L less the charges of its fills (a fill that turns a position
round shares its charges between the trade it closes and the one it opens, by quantity).
Every strategy's curve starts at the full capital: strategies share one account, so their
figures are read against the same money.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from mytrading.backtest.metrics import Metrics, compute
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.risk.charges import ZERO, Charges, ChargeTable

NS = 1_000_000_000
DAY_NS = 86_400 * NS
IST_NS = 19_800 * NS


def ts(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / NS, IST)


@dataclass
class OpenTrade:
    side: int  # +1 long, -1 short
    entry_ns: int
    qty: int = 0  # the largest size it reached
    entry_value: float = 0.0  # sum of qty x price of the fills that opened it
    entry_qty: int = 0
    exit_value: float = 0.0
    exit_qty: int = 0
    realized: float = 0.0
    charges: float = 0.0


@dataclass
class Book:
    """One strategy's account in the backtest."""

    ledger: Ledger = field(default_factory=Ledger)
    cash: float = 0.0  # fills and charges, from the start
    charges: Charges = ZERO
    open: dict[tuple[str, str], OpenTrade] = field(default_factory=dict)
    trades: list[dict] = field(default_factory=list)
    # after each fill: (the first curve point it counts in, instrument, quantity, cash)
    changes: list[tuple[int, tuple[str, str], int, float]] = field(default_factory=list)


class Results:
    def __init__(self, refdata: RefData, charges: ChargeTable, capital: float) -> None:
        self.refdata = refdata
        self.charge_table = charges
        self._dp_days: dict[tuple[str, str, str], date] = {}  # DP charged: (book, ex, sym)
        self.capital = capital
        self.books: dict[str, Book] = {}
        self.orders: dict[str, dict] = {}  # by order id, latest state
        # each fill's and each position change's row, kept as a tuple (a run makes one of
        # each per fill); ``fills`` and ``positions`` give them as dicts when asked
        self._fill_rows: list[tuple[Any, ...]] = []
        self._position_rows: list[tuple[Any, ...]] = []
        self._fills: list[dict[str, Any]] = []
        self._positions: list[dict[str, Any]] = []
        self.events: list[dict] = []  # risk rejections and triggers
        self.roll_orders: set[str] = set()  # legs of futures rolls: their trades say so
        self.times = array.array("q")
        self.last: dict[tuple[str, str], float] = {}
        # each instrument's last price at every point from its first (``first[key]``);
        # an expired contract no book holds stops being sampled (``retire``): a year of
        # option legs would otherwise keep hundreds of curves the length of the run
        self.marks: dict[tuple[str, str], array.array] = {}
        self.first: dict[tuple[str, str], int] = {}
        self._sampled: dict[tuple[str, str], array.array] = {}
        # (its curve's append, instrument) of each sampled instrument: sample's loop
        self._appends: list[tuple[Callable[[float], None], tuple[str, str]]] = []
        self.greek_rows: list[dict] = []  # each option-holding strategy's Greeks, sampled
        self.bars = 0
        self._day_no = -1
        self._day = date.min

    def book(self, strategy: str) -> Book:
        b = self.books.get(strategy)
        if b is None:
            b = self.books[strategy] = Book()
        return b

    # ------------------------------------------------------------------ inputs

    def _order_row(self, m: wire.OrderUpdate | wire.Order, now_ns: int) -> dict:
        """An order's row, made by whichever of its order or first update comes first."""
        row = self.orders.get(m.order_id)
        if row is None:
            row = self.orders[m.order_id] = {
                "time": now_ns,
                "strategy": m.strategy,
                "order_id": m.order_id,
                "intent_id": m.intent_id,  # a split order's children share it (shadow/)
                "exchange": m.exchange,
                "symbol": m.symbol,
                "action": m.action,
                "quantity": m.quantity,
                "status": "new",
                "filled": 0,
                "avg_price": 0.0,
                "reason": "",
            }
        return row

    def on_update(self, u: wire.OrderUpdate, now_ns: int) -> None:
        row = self._order_row(u, now_ns)
        row.update(status=u.status, filled=u.filled_qty, avg_price=u.avg_price, reason=u.reason)

    def on_order(self, o: wire.Order, now_ns: int, status: str) -> None:
        """Every order sent, amends included, with the status the venue gave it."""
        row = self._order_row(o, now_ns)
        row.update(
            status=status,
            op=o.op,
            pricetype=o.pricetype,
            price=o.price,
            trigger=o.trigger_price,
            bar_ns=o.bar_ns,
            fill_of=o.fill_of,
        )
        if o.link is not None and o.link.roll:
            row["roll"] = o.link.roll
            self.roll_orders.add(o.order_id)

    def on_event(self, ev: wire.RiskEvent, now_ns: int) -> None:
        self.events.append(
            {
                "time": now_ns,
                "strategy": ev.strategy,
                "kind": ev.kind,
                "rule": ev.rule,
                "reason": ev.reason,
                "action": ev.action,
                "detail": ev.detail,  # a refusal's decision and bar (risk/orders.py)
                "orders": list(ev.order_ids),  # an exit's orders (the day's shadow)
            }
        )

    def on_fill(self, f: wire.Fill) -> None:
        b = self.book(f.strategy)
        key = (f.exchange, f.symbol)
        inst = self.refdata.instrument(f.exchange, f.symbol)
        day_no = (f.exch_ns + IST_NS) // DAY_NS  # the IST day, without a datetime per fill
        day = ts(f.exch_ns).date() if day_no != self._day_no else self._day
        self._day_no, self._day = day_no, day
        c = self.charge_table.of_fill(f, inst.kind, day, self._dp_days)
        signed = f.quantity if f.action == "BUY" else -f.quantity
        before = b.ledger.positions.get(key)
        q0 = before.qty if before else 0
        r0 = before.realized if before else 0.0
        p = b.ledger.apply(key, signed, f.price)
        b.cash -= signed * f.price + c.total
        b.charges = b.charges + c
        self.last.setdefault(key, f.price)
        self._trades(b, key, f, q0, p.qty, p.realized - r0, c.total)
        b.changes.append((len(self.times), key, p.qty, b.cash))
        self._fill_rows.append((f, c))
        self._position_rows.append((f.exch_ns, f.strategy, f.symbol, p.qty, p.avg, p.realized))

    @property
    def fills(self) -> list[dict[str, Any]]:
        """Every fill with its charges, in order (made into rows when asked)."""
        rows, made = self._fill_rows, self._fills
        for f, c in rows[len(made) :]:
            made.append(
                {
                    "time": f.exch_ns,
                    "strategy": f.strategy,
                    "order_id": f.order_id,
                    "exchange": f.exchange,
                    "symbol": f.symbol,
                    "product": f.product,
                    "action": f.action,
                    "quantity": f.quantity,
                    "price": f.price,
                    "charges": c.total,
                    "brokerage": c.brokerage,
                    "stt": c.stt,
                    "exchange_fees": c.exchange,
                    "sebi": c.sebi,
                    "stamp": c.stamp,
                    "gst": c.gst,
                    "settlement": f.settlement,  # "": a trade
                }
            )
        return made

    @property
    def positions(self) -> list[dict[str, Any]]:
        """Every change of a position, in order (made into rows when asked)."""
        rows, made = self._position_rows, self._positions
        for t, strategy, symbol, qty, avg, realized in rows[len(made) :]:
            made.append(
                {
                    "time": t,
                    "strategy": strategy,
                    "symbol": symbol,
                    "quantity": qty,
                    "avg_price": round(avg, 4),
                    "realized": round(realized, 2),
                }
            )
        return made

    def sample(self, now_ns: int) -> None:
        """One point of every curve, after a bar step: its time and each instrument's last
        price (equity is worked out from them and the fills when asked, in numpy)."""
        self.times.append(now_ns)
        last = self.last
        if len(self.marks) != len(last):  # a new instrument: its curve starts here
            marks = self.marks
            for key in last.keys() - marks.keys():
                marks[key] = self._sampled[key] = array.array("d")
                self.first[key] = len(self.times) - 1
            self._appends = [(arr.append, key) for key, arr in self._sampled.items()]
        for append, key in self._appends:
            append(last[key])

    def sample_greeks(self, now_ns: int, strategy: str, got: dict[str, dict[str, float]]) -> None:
        """One sample of a strategy's Greeks per underlying (``options/exposure.py``)."""
        for und, g in got.items():
            self.greek_rows.append({"time": now_ns, "strategy": strategy, "underlying": und, **g})

    def retire(self, key: tuple[str, str]) -> None:
        """An instrument with no more bars (an expired contract): stop sampling it unless
        a book still holds it (its curve then stays at its last price)."""
        if not any(
            (p := b.ledger.positions.get(key)) is not None and p.qty for b in self.books.values()
        ):
            self._sampled.pop(key, None)
            self._appends = [(arr.append, k) for k, arr in self._sampled.items()]

    def _prices(self, key: tuple[str, str], n: int) -> np.ndarray:
        """``key``'s price at each of the ``n`` points: NaN before its first, its last
        price after it stopped being sampled."""
        out = np.full(n, np.nan)
        arr = self.marks.get(key)
        if arr is None or not len(arr):
            return out
        first = self.first[key]
        got = np.frombuffer(arr, dtype=np.float64)[: n - first]
        out[first : first + len(got)] = got
        out[first + len(got) :] = got[-1]
        return out

    # ----------------------------------------------------------------- trades

    def _trades(
        self, b: Book, key: tuple[str, str], f: wire.Fill, q0: int, q1: int, pnl: float, c: float
    ) -> None:
        qty = f.quantity
        t = b.open.get(key)
        closing = 0 if q0 == 0 or (q0 > 0) == (q1 - q0 > 0) else min(abs(q0), qty)
        if closing:
            assert t is not None
            t.exit_value += closing * f.price
            t.exit_qty += closing
            t.realized += pnl
            t.charges += c * closing / qty
            if q1 == 0 or (q1 > 0) != (q0 > 0):
                self._close(b, key, t, f)
                t = None
        opening = qty - closing
        if opening:
            if t is None:
                t = b.open[key] = OpenTrade(1 if q1 > 0 else -1, f.exch_ns)
            t.entry_value += opening * f.price
            t.entry_qty += opening
            t.qty = max(t.qty, abs(q1))
            t.charges += c * opening / qty

    def _close(self, b: Book, key: tuple[str, str], t: OpenTrade, f: wire.Fill) -> None:
        del b.open[key]
        b.trades.append(
            {
                "strategy": f.strategy,
                "exchange": key[0],
                "symbol": key[1],
                "side": "long" if t.side > 0 else "short",
                "quantity": t.qty,
                "entry_time": t.entry_ns,
                "entry_price": round(t.entry_value / t.entry_qty, 4),
                "exit_time": f.exch_ns,
                "exit_price": round(t.exit_value / t.exit_qty, 4),
                "exit_by": "roll" if f.order_id in self.roll_orders else f.settlement,
                "gross_pnl": round(t.realized, 2),
                "charges": round(t.charges, 2),
                "net_pnl": round(t.realized - t.charges, 2),
            }
        )

    # ---------------------------------------------------------------- figures

    def _curve(self, b: Book) -> tuple[np.ndarray, np.ndarray]:
        """(cash + positions at their last price, a position open) at every point."""
        n = len(self.times)
        value = np.zeros(n)
        held = np.zeros(n, dtype=bool)
        if not b.changes:
            return value, held
        at = np.array([c[0] for c in b.changes])
        value += _steps(at, np.array([c[3] for c in b.changes]), n)
        for key in {c[1] for c in b.changes}:
            mine = [c for c in b.changes if c[1] == key]
            qty = _steps(np.array([c[0] for c in mine]), np.array([c[2] for c in mine]), n)
            price = self._prices(key, n)
            value += np.where(qty != 0, qty * price, 0.0)
            held |= qty != 0
        return value, held

    def equity(self, strategy: str | None = None) -> pd.Series:
        """The curve in rupees (capital included), indexed by IST time."""
        idx = pd.to_datetime(np.frombuffer(self.times, dtype=np.int64), utc=True).tz_convert(IST)
        books = [self.book(strategy)] if strategy else list(self.books.values())
        vals = np.zeros(len(idx))
        for b in books:
            vals += self._curve(b)[0]
        return pd.Series(self.capital + vals, index=idx, name="equity")

    def in_market(self, strategy: str | None = None) -> np.ndarray:
        books = [self.book(strategy)] if strategy else list(self.books.values())
        held = np.zeros(len(self.times), dtype=bool)
        for b in books:
            held |= self._curve(b)[1]
        return held

    def trades(self, strategy: str | None = None) -> list[dict]:
        books = [self.book(strategy)] if strategy else list(self.books.values())
        return sorted((t for b in books for t in b.trades), key=lambda t: t["exit_time"])

    def charges(self, strategy: str | None = None) -> Charges:
        books = [self.book(strategy)] if strategy else list(self.books.values())
        total = ZERO
        for b in books:
            total = total + b.charges
        return total

    def metrics(self, strategy: str | None = None, equity: pd.Series | None = None) -> Metrics:
        """``equity``: this run's ``equity(strategy)``, when the caller has it already (a
        sweep's trial sends its daily returns too: the curve is made once, 7 ms a
        six-month trial)."""
        return compute(
            self.equity(strategy) if equity is None else equity,
            [t["net_pnl"] for t in self.trades(strategy)],
            self.capital,
            self.charges(strategy).total,
            self.in_market(strategy),
        )

    def open_positions(self) -> list[dict]:
        return [
            {"strategy": s, "symbol": k[1], "quantity": p.qty, "avg_price": round(p.avg, 2)}
            for s, b in self.books.items()
            for k, p in b.ledger.positions.items()
            if p.qty
        ]

    def strategies(self) -> list[str]:
        return sorted(self.books)

    # ----------------------------------------------------------------- tables

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every result as a table, times in IST: what is stored, exported and reported."""
        curve = pd.DataFrame({"equity": self.equity()})
        curve["drawdown"] = curve["equity"] - curve["equity"].cummax()
        for name in self.books if len(self.books) > 1 else ():
            curve[f"equity_{name}"] = self.equity(name)
        curve = curve.reset_index(names="time")
        return {
            "orders": _frame(list(self.orders.values()), ("time",)),
            "fills": _frame(self.fills, ("time",)),
            "positions": _frame(self.positions, ("time",)),
            "trades": _frame(self.trades(), ("entry_time", "exit_time")),
            "events": _frame(self.events, ("time",)),
            "equity": curve,
            # for the report (not stored): option strategies' Greeks every GREEKS_EVERY
            "greeks": _frame(self.greek_rows, ("time",)),
        }


def _steps(at: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """A step function over ``n`` points: ``values[i]`` from point ``at[i]`` on, 0 before."""
    out = np.zeros(n, dtype=np.float64)
    idx = np.searchsorted(at, np.arange(n), side="right") - 1
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def _frame(rows: list[dict], times: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in times:
        if col in df:
            df[col] = pd.to_datetime(df[col], utc=True).dt.tz_convert(IST)
    return df
