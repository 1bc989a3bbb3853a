"""Post-trade risk: P&L on live marks, net of charges, and the exits it triggers.

``PostTrade`` keeps each strategy's positions from fills (the same ``Ledger`` arithmetic
the router and broker use), marks them with every tick, and adds each fill's charges
(``charges.py``). ``evaluate(now)`` returns what has been breached, each once per trigger:

* per strategy: ``max_loss`` / ``max_profit`` on the day's net P&L; a trailing stop on
  that P&L (``pct`` of the peak, a rupee ``amount``, or index ``points`` times the open
  quantity) that starts at ``trailing_activation`` and never loosens; a per-leg stop or
  target as a % of the leg's average price;
* for the stack: ``daily_loss_limit`` on the sum, and ``max_drawdown`` from its peak;
* MIS positions at the exchange's square-off time (``config/sessions.toml``);
* a Supertrend exit: Supertrend (Pine v6) on bars the monitor builds from live ticks; a
  long closes when a *closed* bar turns it down (breakdown), a short when one turns it up
  (breakout). Nothing inside a bar counts. It starts cold: the first ``period`` bars after
  risk starts only warm it up.

The risk daemon acts on the triggers (``exits.py``): it closes the positions, sets the
strategy REDUCING (or the stack HALTED) and reports each one as a risk event.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from mytrading.domain import Product
from mytrading.domain.bars import BarBuilder
from mytrading.domain.positions import Ledger, Position
from mytrading.domain.refdata import IST, RefData, RefDataError
from mytrading.indicators import stream
from mytrading.messaging import wire
from mytrading.options.exposure import book_greeks
from mytrading.risk.charges import ZERO, Charges, ChargeTable
from mytrading.risk.limits import LimitBook, Limits

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

Key = tuple[str, str, Product]  # (exchange, symbol, product)
StKey = tuple[str, str, str, int, float]  # a Supertrend: (exchange, symbol, tf, period, mult)


@dataclass(frozen=True)
class Trigger:
    kind: str  # max_loss, max_profit, trailing_stop, leg_stop, leg_target, daily_loss, ...
    strategy: str  # "*" for the stack
    threshold: float
    value: float
    keys: tuple[Key, ...]  # positions to close
    reason: str


@dataclass
class Book:
    """One strategy's day: positions, charges, and the state of its trailing stop."""

    ledger: Ledger[Key] = field(default_factory=Ledger)
    charges: Charges = ZERO
    peak: float = float("-inf")
    trail_level: float | None = None  # the P&L at which the trailing stop fires
    fired: set[str] = field(default_factory=set)  # one-shot triggers fired today
    trades: int = 0  # fills booked today (a restarted risk replays the day's)


class PostTrade:
    def __init__(self, refdata: RefData, limits: LimitBook, charges: ChargeTable) -> None:
        self.refdata = refdata
        self.limits = limits
        self.charge_table = charges
        self._dp_days: dict[tuple[str, str, str], date] = {}  # DP charged: (book, ex, sym)
        self.books: dict[str, Book] = collections.defaultdict(Book)
        self.day: date | None = None
        self.stack_peak = float("-inf")
        self.stack_fired: set[str] = set()
        lims = [limits.defaults, *limits.per.values()]
        self.st_limits = [lim for lim in lims if lim.supertrend_exit]  # limits are fixed
        self.builders: dict[str, BarBuilder] = {
            tf: BarBuilder(refdata.calendar, tf)
            for tf in {lim.supertrend_tf for lim in self.st_limits}
        }
        self.supertrends: dict[StKey, stream.Supertrend] = {}
        self.direction: dict[StKey, float] = {}  # by (exchange, symbol, tf, period, mult)
        self.flips: list[tuple[StKey, float]] = []  # closed-bar direction changes, unread
        # the earliest MIS square-off of any exchange: before it, no square-off to check
        self.first_squareoff = min(s.mis_squareoff for s in refdata.calendar.sessions.values())
        so = self.first_squareoff
        self.first_squareoff_s = so.hour * 3600 + so.minute * 60 + so.second
        closes = [lim.expiry_close for lim in lims if lim.expiry_close is not None]
        ec = min(closes) if closes else None  # the earliest expiry-day close of any book
        self.first_expiry_close_s = ec.hour * 3600 + ec.minute * 60 if ec else None
        self.held_expiries: set[date] = set()  # expiries of the contracts held, any book
        self._expiries: dict[Key, date | None] = {}
        st = limits.stack
        self.marks_matter = bool(st.daily_loss_limit or st.max_drawdown) or any(
            lim.max_loss
            or lim.max_profit
            or lim.trailing_type != "off"
            or lim.leg_stop_pct
            or lim.leg_target_pct
            or lim.max_net_delta
            or lim.max_vega
            for lim in lims
        )
        # every instrument's last price, kept only where Greek limits read them (an
        # index's level is no position's mark; a backtest marks every bar)
        self.keep_marks = any(lim.max_net_delta or lim.max_vega for lim in lims)
        self.marks: dict[tuple[str, str], float] = {}
        self.dirty = True  # a fill or a restored position since the last evaluation
        self.held = 0  # open positions, every book
        self.held_mis = 0  # ... of them MIS
        self._by_symbol: dict[tuple[str, str], list[Position]] = {}  # (exchange, symbol)

    # ----------------------------------------------------------------- inputs

    def on_fill(self, f: wire.Fill, day: date) -> Charges:
        """Book the fill; returns its charges (a delivery sell's DP charge included)."""
        self._roll(day)
        b = self.books[f.strategy]
        signed = f.quantity if f.action == "BUY" else -f.quantity
        b.ledger.apply((f.exchange, f.symbol, f.product), signed, f.price)
        kind = self.refdata.instrument(f.exchange, f.symbol).kind
        c = self.charge_table.of_fill(f, kind, day, self._dp_days)
        b.charges = b.charges + c
        b.trades += 1
        self._recount()
        return c

    def restore(self, strategy: str, key: Key, qty: int, avg: float) -> None:
        """A position held before risk (re)started, at its average price."""
        self.books[strategy].ledger.set_qty(key, qty, avg)
        self._recount()

    def _recount(self) -> None:
        """After a fill or a restore: what is held, and each instrument's positions (open
        or flat) in every book, which every tick marks."""
        self.dirty = True
        self.held = self.held_mis = 0
        self._by_symbol.clear()
        self.held_expiries.clear()
        for b in self.books.values():
            for k, p in b.ledger.positions.items():
                self._by_symbol.setdefault((k[0], k[1]), []).append(p)
                if p.qty:
                    self.held += 1
                    self.held_mis += k[2] == "MIS"
                    expiry = self._expiry(k)
                    if expiry is not None:
                        self.held_expiries.add(expiry)

    def _expiry(self, key: Key) -> date | None:
        """A contract's expiry (None: it has none, or is unknown), looked up once: every
        fill recounts every position."""
        if key not in self._expiries:
            try:
                self._expiries[key] = self.refdata.instrument(key[0], key[1]).expiry
            except RefDataError:
                self._expiries[key] = None
        return self._expiries[key]

    def quiet(self, ist_s: int) -> bool:
        """True when ``evaluate`` can fire nothing: no fill since it last ran, no
        Supertrend flip waiting, and no open position whose marks a limit reads or that
        the square-off or an expiry-day close is due to close. ``ist_s``: seconds since
        the epoch, in IST's wall time. (A backtest asks after every bar; live risk
        evaluates every second regardless.)"""
        if self.dirty or self.flips:
            return False
        if not self.held:
            return True
        if self.marks_matter:
            return False
        second = ist_s % 86_400
        if self.held_mis and second >= self.first_squareoff_s:
            return False
        close = self.first_expiry_close_s
        if close is None or second < close:
            return True
        return date.fromordinal(EPOCH_ORDINAL + ist_s // 86_400) not in self.held_expiries

    def mark(self, exchange: str, symbol: str, ltp: float) -> None:
        self.mark_key((exchange, symbol), ltp)

    def mark_key(self, key: tuple[str, str], ltp: float) -> None:
        """``mark`` with the (exchange, symbol) key made already (a backtest's every bar)."""
        if self.keep_marks:
            self.marks[key] = ltp  # an index's too: Greeks read it
        for p in self._by_symbol.get(key, ()):  # every book and product
            p.ltp = ltp

    def on_tick(self, tick: wire.Tick, now_ns: int | None = None) -> None:
        """Marks, and bars for the Supertrend exits (``now_ns``: the market clock at the
        tick's arrival, for its lag, ``domain/bars.py``)."""
        self.mark(tick.exchange, tick.symbol, tick.ltp)
        for builder in self._builders().values():
            bar = builder.on_tick(tick, now_ns)
            if bar is not None:
                self.on_bar(bar)

    def _builders(self) -> dict[str, BarBuilder]:
        """One bar builder per timeframe some strategy's Supertrend exit uses."""
        return self.builders

    def _supertrend_limits(self) -> list[Limits]:
        return self.st_limits

    def on_bar(self, bar: wire.Bar) -> None:
        """A closed bar: Supertrend exits of its timeframe move on."""
        for lim in self._supertrend_limits():
            if lim.supertrend_tf != bar.tf:
                continue
            sk = (
                bar.exchange,
                bar.symbol,
                bar.tf,
                lim.supertrend_period,
                lim.supertrend_multiplier,
            )
            st = self.supertrends.get(sk)
            if st is None:
                st = self.supertrends[sk] = stream.Supertrend(
                    lim.supertrend_period, lim.supertrend_multiplier
                )
            _, d = st.update(bar.high, bar.low, bar.close)
            before = self.direction.get(sk, 0.0)
            self.direction[sk] = d
            if before and d != before:
                self.flips.append((sk, d))

    # ---------------------------------------------------------------- figures

    def pnl(self, strategy: str) -> dict[str, float]:
        b = self.books.get(strategy) or Book()
        realized = sum(p.realized for p in b.ledger.positions.values())
        unrealized = sum(p.unrealized() for p in b.ledger.positions.values())
        charges = b.charges.total
        return {
            "realized": round(realized, 2),
            "unrealized": round(unrealized, 2),
            "charges": charges,
            "net": round(realized + unrealized - charges, 2),
            "trades": b.trades,
        }

    def open_keys(self, strategy: str) -> tuple[Key, ...]:
        b = self.books.get(strategy)
        if b is None:
            return ()
        return tuple(k for k, p in b.ledger.positions.items() if p.qty)

    def qty(self, strategy: str, key: Key) -> int:
        b = self.books.get(strategy)
        p = b.ledger.positions.get(key) if b else None
        return p.qty if p else 0

    # ------------------------------------------------------------- evaluation

    def evaluate(self, now: datetime) -> list[Trigger]:
        """Every check a strategy's limits ask for; the others are not computed (a
        backtest evaluates after every bar, so the cost of an idle check counts)."""
        local = now.astimezone(IST)
        self._roll(local.date())
        builders = self._builders()
        if builders:
            now_ns = int(now.timestamp() * 1e9)
            for builder in builders.values():
                for bar in builder.close_due(now_ns):
                    self.on_bar(bar)
        out: list[Trigger] = []
        total = 0.0
        flips, self.flips = self.flips, []
        st = self.limits.stack
        stack = bool(st.daily_loss_limit or st.max_drawdown)
        squareoff = local.time() >= self.first_squareoff
        for name in list(self.books):
            lim = self.limits.of(name)
            pnl_limits = lim.max_loss or lim.max_profit or lim.trailing_type != "off"
            if stack or pnl_limits:
                net = self.pnl(name)["net"]
                total += net
                if pnl_limits:
                    out += self._strategy(name, net)
            if lim.leg_stop_pct or lim.leg_target_pct:
                out += self._legs(name)
            if squareoff:
                out += self._squareoff(name, now)
            if lim.max_net_delta or lim.max_vega:
                out += self._greeks(name, lim, local)
            if lim.expiry_close is not None and local.time() >= lim.expiry_close:
                out += self._expiry_close(name, local, lim.expiry_close)
            if flips:
                out += self._supertrend(name, flips)
        if stack:
            out += self._stack(total)
        self.dirty = False
        return out

    # ------------------------------------------------------------- day marks

    def day_marks(self) -> dict[str, Any]:
        """What the day has reached that the fills cannot tell again: trailing-stop peaks
        and levels, the stack's peak, and the one-shot triggers fired. Kept on disk so a
        restarted risk daemon neither loosens a trailing stop nor fires a limit twice."""
        books = {
            name: {"peak": _finite(b.peak), "trail_level": b.trail_level, "fired": sorted(b.fired)}
            for name, b in self.books.items()
            if b.fired or b.trail_level is not None or b.peak != float("-inf")
        }
        return {
            "day": self.day.isoformat() if self.day else None,
            "stack_peak": _finite(self.stack_peak),
            "stack_fired": sorted(self.stack_fired),
            "books": books,
        }

    def restore_marks(self, marks: dict[str, Any], day: date) -> bool:
        """Take back the marks of ``day``; those of another day are stale (False)."""
        if marks.get("day") != day.isoformat():
            return False
        self._roll(day)
        self.stack_peak = max(self.stack_peak, _unfinite(marks.get("stack_peak")))
        self.stack_fired |= set(marks.get("stack_fired", ()))
        for name, m in marks.get("books", {}).items():
            b = self.books[name]
            b.peak = max(b.peak, _unfinite(m.get("peak")))
            level = m.get("trail_level")
            if level is not None:
                b.trail_level = level if b.trail_level is None else max(b.trail_level, level)
            b.fired |= set(m.get("fired", ()))
        return True

    def _once(self, b: Book, kind: str, trig: Trigger) -> list[Trigger]:
        if kind in b.fired:
            return []
        b.fired.add(kind)
        return [trig]

    def _strategy(self, name: str, net: float) -> list[Trigger]:
        lim = self.limits.of(name)
        b = self.books[name]
        keys = self.open_keys(name)
        if not keys:
            return []
        if lim.max_loss and net <= -lim.max_loss:
            return self._once(
                b,
                "max_loss",
                Trigger("max_loss", name, -lim.max_loss, net, keys, "max loss reached"),
            )
        if lim.max_profit and net >= lim.max_profit:
            return self._once(
                b,
                "max_profit",
                Trigger("max_profit", name, lim.max_profit, net, keys, "max profit reached"),
            )
        if lim.trailing_type == "off" or (net < lim.trailing_activation and b.trail_level is None):
            return []
        b.peak = max(b.peak, net)
        if lim.trailing_type == "pct":
            gap = b.peak * lim.trailing_value / 100.0
        elif lim.trailing_type == "amount":
            gap = lim.trailing_value
        else:  # points of the underlying, over the open quantity
            gap = lim.trailing_value * sum(abs(self.qty(name, k)) for k in keys)
        level = b.peak - gap
        b.trail_level = level if b.trail_level is None else max(b.trail_level, level)
        if net <= b.trail_level:
            return self._once(
                b,
                "trailing_stop",
                Trigger(
                    "trailing_stop",
                    name,
                    round(b.trail_level, 2),
                    net,
                    keys,
                    f"trailing stop: peak {b.peak:.2f}, trail {lim.trailing_type} "
                    f"{lim.trailing_value:g}",
                ),
            )
        return []

    def _legs(self, name: str) -> list[Trigger]:
        lim = self.limits.of(name)
        if not (lim.leg_stop_pct or lim.leg_target_pct):
            return []
        b = self.books[name]
        out = []
        for key, p in b.ledger.positions.items():
            if not p.qty or not p.ltp or not p.avg:
                continue
            move = (p.ltp / p.avg - 1.0) * (1 if p.qty > 0 else -1) * 100.0  # + is a gain
            tag = f"{key[0]}:{key[1]}"
            if lim.leg_stop_pct and move <= -lim.leg_stop_pct:
                out += self._once(
                    b,
                    f"leg_stop:{tag}:{p.avg}",
                    Trigger(
                        "leg_stop",
                        name,
                        -lim.leg_stop_pct,
                        round(move, 2),
                        (key,),
                        f"{key[1]} {move:.2f} % against the entry",
                    ),
                )
            elif lim.leg_target_pct and move >= lim.leg_target_pct:
                out += self._once(
                    b,
                    f"leg_target:{tag}:{p.avg}",
                    Trigger(
                        "leg_target",
                        name,
                        lim.leg_target_pct,
                        round(move, 2),
                        (key,),
                        f"{key[1]} {move:.2f} % in favour",
                    ),
                )
        return out

    def _supertrend(self, name: str, flips: list[tuple[StKey, float]]) -> list[Trigger]:
        """A flip of direction on a closed bar against a position closes it."""
        lim = self.limits.of(name)
        if not lim.supertrend_exit or not flips:
            return []
        out = []
        for key in self.open_keys(name):
            sk = (
                key[0],
                key[1],
                lim.supertrend_tf,
                lim.supertrend_period,
                lim.supertrend_multiplier,
            )
            qty = self.qty(name, key)
            for fk, d in flips:
                if fk == sk and ((qty > 0 and d == 1.0) or (qty < 0 and d == -1.0)):
                    what = "breakdown" if qty > 0 else "breakout"  # Pine: +1 is down
                    out.append(
                        Trigger(
                            "supertrend_exit",
                            name,
                            0.0,
                            d,
                            (key,),
                            f"Supertrend {what} on a closed {lim.supertrend_tf} bar",
                        )
                    )
                    break
        return out

    def _squareoff(self, name: str, now: datetime) -> list[Trigger]:
        b = self.books[name]
        t = now.astimezone(IST).time()
        keys = []
        for key in self.open_keys(name):
            cutoff = self.refdata.calendar.session(key[0]).mis_squareoff
            if key[2] == "MIS" and t >= cutoff:
                keys.append(key)
        if not keys:
            return []
        return self._once(
            b,
            f"squareoff:{sorted(keys)}",
            Trigger("mis_squareoff", name, 0.0, 0.0, tuple(keys), "MIS square-off time"),
        )

    def _greeks(self, name: str, lim: Limits, local: datetime) -> list[Trigger]:
        """A book the market has taken past its Greek caps: set REDUCING (only orders that
        shrink its positions pass), once a day per underlying and Greek."""
        net: dict[tuple[str, str], int] = {}
        for k, p in self.books[name].ledger.positions.items():
            if p.qty:
                net[(k[0], k[1])] = net.get((k[0], k[1]), 0) + p.qty
        held = [(ex, sym, q) for (ex, sym), q in net.items() if q]
        got = book_greeks(self.refdata, held, lambda e, s: self.marks.get((e, s), 0.0), local)
        out: list[Trigger] = []
        for und, g in sorted(got.items()):
            for what, cap, x in (
                ("net delta", lim.max_net_delta, g.delta),
                ("vega", lim.max_vega, g.vega),
            ):
                if cap and abs(x) > cap:
                    out += self._once(
                        self.books[name],
                        f"greeks:{und}:{what}",
                        Trigger(
                            "greek_limit",
                            name,
                            cap,
                            round(x, 2),
                            (),
                            f"{what} in {und} is {x:+,.1f} (limit +-{cap:,.0f})",
                        ),
                    )
        return out

    def _expiry_close(self, name: str, local: datetime, at: time) -> list[Trigger]:
        """Positions in contracts that expire today, at the book's ``expiry_close``."""
        today = local.date()
        keys = [k for k in self.open_keys(name) if self._expiry(k) == today]
        if not keys:
            return []
        return self._once(
            self.books[name],
            f"expiry:{sorted(keys)}",
            Trigger(
                "expiry_close",
                name,
                0.0,
                0.0,
                tuple(keys),
                f"expiry day: contracts expiring today are closed at {at:%H:%M}",
            ),
        )

    def _stack(self, total: float) -> list[Trigger]:
        st = self.limits.stack
        self.stack_peak = max(self.stack_peak, total)
        keys: tuple[Key, ...] = ()
        out = []
        if st.daily_loss_limit and total <= -st.daily_loss_limit:
            kind, thr, why = "daily_loss", -st.daily_loss_limit, "daily loss limit reached"
        elif st.max_drawdown and self.stack_peak - total >= st.max_drawdown:
            kind, thr, why = "max_drawdown", st.max_drawdown, "drawdown from the day's peak"
        else:
            return []
        if kind not in self.stack_fired:
            self.stack_fired.add(kind)
            value = total if kind == "daily_loss" else self.stack_peak - total
            out.append(Trigger(kind, "*", thr, round(value, 2), keys, why))
        return out

    def _roll(self, day: date) -> None:
        """A new trading day: limits and one-shot triggers start again; positions stay."""
        if self.day == day:
            return
        if self.day is not None:
            for b in self.books.values():
                for p in b.ledger.positions.values():
                    p.realized = 0.0
                b.charges = ZERO
                b.trades = 0
                b.peak, b.trail_level = float("-inf"), None
                b.fired.clear()
            self.stack_peak = float("-inf")
            self.stack_fired.clear()
        self.day = day


def _finite(x: float) -> float | None:
    return None if x == float("-inf") else x


def _unfinite(x: float | None) -> float:
    return float("-inf") if x is None else float(x)
