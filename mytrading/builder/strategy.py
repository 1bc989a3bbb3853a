"""``BuilderStrategy``: what runs a builder file (``builder/spec.py``) as a strategy.

The loader makes one subclass per file (``make_class``) with the file's ``Spec`` on it,
so the engine and the backtest run it as they run any ``BaseStrategy``: every order is an
intent risk judges, every exit goes through the same books. One day of it:

1. On a day the schedule allows (any, the underlying's expiry day, or any other day), at
   ``entry`` (market time) it chooses each leg's contract with the Python API's selectors
   (``BaseStrategy.option``; a premium or delta choice waits until the chain is quoted),
   then sends the legs: buys first (a hedge before the short it covers), each leg with a
   stop or target as a ``bracket`` (the SL-L stop and LIMIT target rest at the broker,
   OCO), the others at market. With a risk profile (``sizing.mode``) the first leg is
   sized by risk from the free margin against the margin of the whole set (margins.toml,
   as risk counts it); the other legs follow at the same number of sets once it fills.
2. Every second it marks the strategy: max loss, max profit and the trailing stop on its
   P&L since entry, the Supertrend exit on the underlying's closed bars, and the
   square-off time; any of them cancels the resting stops and closes every leg, and the
   day is over.
3. A leg's stop that fills may move the other legs' stops to their cost price
   (``stop_to_cost``), and re-enters that leg (chosen afresh) after ``reentry.delay``
   seconds, at most ``reentry.count`` times a day, until ``last_entry``.

After an engine restart the positions and working orders come back before ``on_start``:
legs still open are today's, watched by the exits and squared off; they are not
re-entered (which leg a position was is not kept across restarts).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from mytrading.builder.spec import Leg, Spec
from mytrading.domain.errors import ConfigError
from mytrading.domain.ids import intent_of
from mytrading.engine.parts import SetMargins
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.messaging import wire

TIMER = "builder"
ST = "BUILDER_ST"


@dataclass
class LegState:
    """One leg today: its contract once chosen, its entry, its stops, its re-entries."""

    leg: Leg
    contract: tuple[str, str] | None = None
    entry: str = ""  # the entry's intent id
    reentries: int = 0
    reenter_at: datetime | None = None
    stops: set[str] = field(default_factory=set)  # working protective stops' intent ids
    cost_stop: float = 0.0  # after another leg's stop: close at market past this price
    closing: bool = False  # a close of it is on its way: never a second one


class BuilderStrategy(BaseStrategy[StrategyParams]):
    """Runs ``spec`` (set by ``make_class``); see the module's docstring."""

    spec: ClassVar[Spec]
    source: ClassVar[Path]

    def _note(self, level: str, event: str, **fields: Any) -> None:
        """Log one of the strategy's decisions and keep it (``decisions``: the latest
        1,000, with market time), so what it did is there to read after a run."""
        getattr(self.log, level)(event, **fields)
        self.decisions.append({"event": event, "at": self.now(), **fields})

    def on_start(self) -> None:
        s = self.spec
        self.decisions: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self.u = self.refdata.underlying(s.underlying)
        self.index = self.spot(s.underlying)
        self.subscribe_ticks(*self.index)
        st = s.exits.supertrend
        if st is not None:
            self.subscribe_bars(*self.index, st.timeframe, warmup=5 * st.period)
            self.add_indicator(
                "SUPERTREND",
                ST,
                *self.index,
                tf=st.timeframe,
                period=st.period,
                multiplier=st.multiplier,
            )
        self.day: date | None = None
        self._new_day(self.today())
        self._margins: SetMargins | None = None
        self.set_timer(TIMER, 1.0)
        held = [(v.exchange, v.symbol) for v in self.positions() if v.quantity]
        if held or self.has_open_orders():
            self.entered = True
            self.restored = True
            for c in held:
                self.subscribe_ticks(*c)
            self._note(
                "info", "builder legs already open: watching them", legs=[s for _, s in held]
            )

    def _new_day(self, day: date) -> None:
        self.day = day
        self.legs = [LegState(leg) for leg in self.spec.legs]
        self.entered = False
        self.done = False
        self.restored = False
        self.sets = self.spec.sizing.lots if self.spec.sizing.mode == "fixed" else 0
        self.sizing_leg: LegState | None = None
        self.base_pnl = 0.0
        self.peak = -math.inf
        self.trend = math.nan
        # a short session (Muhurat trading, a special Saturday) closes before the file's
        # square-off: square off five minutes before its close instead
        self.squareoff = self.spec.schedule.squareoff
        hours = self.refdata.calendar.hours(self.u.fo_exchange, day)
        if hours is not None:
            close = datetime.combine(day, hours[1]) - timedelta(minutes=5)
            self.squareoff = min(self.squareoff, close.time())

    # ------------------------------------------------------------------ the clock

    def on_timer(self, name: str, now: datetime) -> None:
        if name != TIMER:
            return
        if now.date() != self.day:
            self._new_day(now.date())
        if self.done:
            return
        sch = self.spec.schedule
        t = now.time()
        last = sch.last_entry or sch.squareoff
        if not self.entered:
            if not self._trades_today(now.date()):
                self.done = True
                return
            if sch.entry <= t < last:
                self._enter()
            elif t >= last:
                self.done = True
            return
        if t >= self.squareoff:
            self._exit("square-off time")
            return
        why = self._strategy_exit()
        if why:
            self._exit(why)
            return
        self._note_stops()
        self._watch_legs()
        if self.sizing_leg is not None:
            self._after_sizing()
        for ls in self.legs:
            if ls.reenter_at is not None and now >= ls.reenter_at:
                ls.reenter_at = None
                if t < last:
                    ls.contract = None  # chosen afresh
                    self._send_leg(ls, self.sets)

    def _trades_today(self, day: date) -> bool:
        days = self.spec.schedule.days
        if days == "any":
            return True
        expiry_day = self.refdata.calendar.near_option_expiry(self.u, day) == day
        return expiry_day if days == "expiry" else not expiry_day

    # ------------------------------------------------------------------ entry

    def _enter(self) -> None:
        """Choose every leg (once all are priced) and send them, buys first."""
        if self.ltp(*self.index) <= 0:
            return
        for ls in self.legs:
            if ls.contract is None:
                ls.contract = self._choose(ls.leg)
        if any(ls.contract is None or self.ltp(*ls.contract) <= 0 for ls in self.legs):
            return  # a selector or a leg waits for quotes: ask again next second
        self.base_pnl = self.pnl()
        self.peak = -math.inf
        self.entered = True
        order = sorted(self.legs, key=lambda ls: ls.leg.action != "BUY")
        if self.spec.sizing.mode != "fixed":
            self.sizing_leg = order[0]
            self._send_sized(order[0])
            return
        for ls in order:
            self._send_leg(ls, self.sets)
        self._note("info", "builder entered", legs=[ls.contract[1] for ls in order if ls.contract])

    def _choose(self, leg: Leg) -> tuple[str, str] | None:
        c: tuple[str, str] | None
        if leg.instrument == "FUT":
            c = self.future(self.spec.underlying, "near" if leg.expiry == "monthly" else "next")
        else:
            c = self.option(
                self.spec.underlying, leg.instrument, expiry=leg.expiry, **leg.strike_rule
            )
        if c is not None:
            self.subscribe_ticks(*c)
        return c

    def _send_leg(self, ls: LegState, sets: int) -> None:
        if ls.contract is None:
            ls.contract = self._choose(ls.leg)
            if ls.contract is None or self.ltp(*ls.contract) <= 0:
                ls.reenter_at = self.now() + timedelta(seconds=1)  # not priced yet
                return
        ex, sym = ls.contract
        qty = sets * ls.leg.lots * self.lot_size(ex, sym)
        ls.entry = self._place(ls.leg, ex, sym, qty, "")

    def _place(self, leg: Leg, ex: str, sym: str, qty: int, sizing: str, per: float = 0.0) -> str:
        product = self.spec.product
        if not leg.has_stop:
            send = self.buy if leg.action == "BUY" else self.sell
            if sizing:
                return send(ex, sym, 0, product=product, sizing=sizing, sizing_per_lot=per)
            return send(ex, sym, qty, product=product)
        pct = (leg.stop_pct or 0) / 100 or None
        tick = self.tick_size(ex, sym)
        ltp = self.ltp(ex, sym)
        buffer = max(2 * tick, self.round_price(ex, sym, 0.03 * ltp * (1 + (pct or 0))))
        return self.bracket(
            ex,
            sym,
            leg.action,
            qty,
            stop_pct=pct,
            stop_distance=leg.stop_points,
            stop_buffer=buffer,
            product=product,
            sizing=sizing,
            sizing_per_lot=per,
        )

    # ------------------------------------------------------------------ sizing

    def _send_sized(self, ls: LegState) -> None:
        """The first leg, sized by risk against the margin of one set of every leg."""
        assert ls.contract is not None
        per_set = self._set_margin()
        per = per_set / ls.leg.lots
        ls.entry = self._place(ls.leg, *ls.contract, 0, self.spec.sizing.mode, per)
        self._note(
            "info",
            "builder sizing",
            mode=self.spec.sizing.mode,
            set_margin=round(per_set),
            first=ls.contract[1],
        )

    def _set_margin(self) -> float:
        if self._margins is None:
            # the table risk sizes by, from the process's configuration
            self._margins = self.link.margins()
            if self._margins is None:
                raise ConfigError("builder sizing: no margin table (config/margins.toml)")
        legs = []
        for ls in self.legs:
            assert ls.contract is not None
            inst = self.refdata.instrument(*ls.contract)
            legs.append((inst, ls.leg.action, ls.leg.lots * inst.lot_size, self.ltp(*ls.contract)))
        return self._margins.set_need(legs, self.today(), self.spec.product)

    def _after_sizing(self) -> None:
        """Once the sized leg is done: the other legs at the sets it got, or none."""
        ls = self.sizing_leg
        if ls is None or ls.entry in self.open_orders:
            return
        self.sizing_leg = None
        assert ls.contract is not None
        held = abs(self.position(*ls.contract))
        self.sets = held // (ls.leg.lots * self.lot_size(*ls.contract))
        if self.sets <= 0:
            self._note("warning", "builder sized to nothing: no entry today", first=ls.contract[1])
            self.done = True  # nothing was opened: nothing to close
            return
        for other in self.legs:
            if other is not ls:
                self._send_leg(other, self.sets)
        self._note("info", "builder entered", sets=self.sets)

    # ------------------------------------------------------------------ exits

    def _strategy_exit(self) -> str:
        e = self.spec.exits
        pnl = self.pnl() - self.base_pnl
        self.peak = max(self.peak, pnl)
        if e.max_loss and pnl <= -e.max_loss:
            return f"max loss ({pnl:,.0f})"
        if e.max_profit and pnl >= e.max_profit:
            return f"max profit ({pnl:,.0f})"
        if e.trail_after and self.peak >= e.trail_after and pnl <= self.peak - e.trail_by:
            return f"trailing stop ({pnl:,.0f} from a peak of {self.peak:,.0f})"
        st = e.supertrend
        if st is not None:
            d = self.get_indicator_value(ST, "direction")
            if d in (1.0, -1.0):
                before, self.trend = self.trend, d
                turned = before in (1.0, -1.0) and d != before
                up = d == -1.0  # Pine: -1 is an uptrend
                if turned and (st.exit_on == "flip" or (st.exit_on == "up") == up):
                    return f"supertrend turned {'up' if up else 'down'}"
        return ""

    def _exit(self, why: str) -> None:
        self._note("warning", "builder exit", reason=why, pnl=round(self.pnl() - self.base_pnl, 2))
        self.cancel_all()
        self.close_all(product=self.spec.product)
        self.done = True

    def _note_stops(self) -> None:
        """Which working protective orders are which leg's stops (SL, not the target)."""
        for iid in self.protective:
            oo = self.open_orders.get(iid)
            if oo is None or oo.pricetype != "SL":
                continue
            for ls in self.legs:
                if ls.contract == (oo.exchange, oo.symbol):
                    ls.stops.add(iid)

    def on_fill(self, fill: wire.Fill) -> None:
        if not self.entered or self.done or self.restored:
            return
        self._note_stops()
        iid = intent_of(fill.order_id)
        hit = next((ls for ls in self.legs if iid in ls.stops), None)
        if hit is None:
            return
        hit.stops.discard(iid)
        self._note("warning", "builder leg stopped", leg=fill.symbol, price=fill.price)
        if self.spec.exits.stop_to_cost:
            self._stops_to_cost(hit)
        r = self.spec.reentry
        if hit.reentries < r.count and self.position(*(hit.contract or ("", ""))) == 0:
            hit.reentries += 1
            hit.reenter_at = self.now() + timedelta(seconds=r.delay)

    def _stops_to_cost(self, stopped: LegState) -> None:
        """The other open legs' stops move to their cost: watched here every second on
        live prices, closing the leg at market once the price reaches its cost. The leg's
        resting stop stays where it was as the stop of last resort: moved to the cost of
        a short leg whose premium has decayed, it would sit further from the price than
        any price band allows (risk refuses such an amendment, as an exchange would)."""
        for ls in self.legs:
            if ls is stopped or ls.contract is None:
                continue
            view = self.position_view(*ls.contract)
            if view.quantity and view.avg_price > 0:
                ls.cost_stop = view.avg_price
                self._note("info", "builder stop to cost", leg=ls.contract[1], cost=view.avg_price)

    def _watch_legs(self) -> None:
        """Each open leg's target and cost stop, on live prices: reached, the leg is
        closed at market (its resting stop cancelled). A target is watched, not rested
        at the broker: a LIMIT 80 % above an option's price is outside any price band."""
        for ls in self.legs:
            if ls.contract is None:
                continue
            pos = self.position(*ls.contract)
            ltp = self.ltp(*ls.contract)
            if pos == 0:
                ls.cost_stop, ls.closing = 0.0, False
                continue
            if ls.closing and not self.has_open_orders(ls.contract[1]):
                ls.closing = False  # the close was refused or cancelled: try again
            if ltp <= 0 or ls.closing:
                continue
            why = ""
            if ls.cost_stop and (ltp >= ls.cost_stop if pos < 0 else ltp <= ls.cost_stop):
                why = "at cost"
            target = ls.leg.target_price(self.position_view(*ls.contract).avg_price)
            if target is not None and (ltp <= target if pos < 0 else ltp >= target):
                why = "target"
            if why:
                self._note("warning", f"builder leg {why}: closing it", leg=ls.contract[1], ltp=ltp)
                ls.cost_stop, ls.closing = 0.0, True
                self.close(*ls.contract, product=self.spec.product)


def make_class(name: str, spec: Spec, source: Path) -> type[BuilderStrategy]:
    """The strategy class of one builder file, named as the file is."""
    attrs: dict[str, Any] = {
        "name": name,
        "spec": spec,
        "source": source,
        "__module__": __name__,
        "__doc__": f"The builder strategy of {source}.",
    }
    return type(f"Builder_{name}", (BuilderStrategy,), attrs)
