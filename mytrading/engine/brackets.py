"""Brackets and OCO, kept by the engine: an entry's protective exits go out as each part
of it fills, the other exit of a pair shrinks or is cancelled when one fills, and after a
restart the duties the dead engine missed are done once (``OrderLink`` travels with
every order).

**A stop the band would refuse.** Risk and the broker take a price only within a band
around the last price (``domain/bands.py``); a stop far from a fast-moving price (a
short option's stop 30 % above a premium that has just dipped) lies outside it and is
refused. As a careful trader would, the engine places such a stop at the band's edge
(with room for the price to move before it lands, ``BAND_ROOM``) and moves it out
towards where it was meant to be as the band allows (``on_mark``: the position's price
moves the band). A stop refused for its band all the same is placed again, each time
nearer the price (half the room of the last try: the engine's last price may be older
than the broker's, seen on a loaded machine), at most ``BAND_RETRIES`` times; a stop
refused for any other reason, or again and again, leaves the position unguarded, and the
engine closes that quantity at market: the last resort.

A part of ``StrategyContext`` (``engine/context.py``); ``BaseStrategy.bracket`` calls
``bracket`` here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mytrading import domain
from mytrading.domain.ids import intent_of
from mytrading.domain.refdata import Instrument
from mytrading.engine.parts import OpenOrder, Parts
from mytrading.messaging import wire

BAND_ROOM = 0.9  # a stop at the edge sits this far out of the band's half: room to move
BAND_RETRIES = 3  # a stop refused for its band is placed again, nearer each time, this often
MOVE_SHARE = 0.25  # moved out once the band allows this share of the way left (or all)


@dataclass
class StopPlan:
    """Where a protective stop was meant to be, and what protects what: to move it out
    as the band allows, and to place it again if it is refused for its band."""

    exchange: str
    symbol: str
    up: int  # +1: a BUY stop above the price (a short's); -1: a SELL stop below
    trigger: float  # as meant
    limit: float
    product: str
    protects: str  # the fill id
    oco: str  # the target's intent id ("" without one)
    tries: int = 0  # placed again after a refusal for its band

    @property
    def room(self) -> float:
        """The share of the band's half the stop may use: half that of the try before
        after each refusal for its band, also when it is moved out (the full room again
        would put it back where the broker refused it)."""
        return BAND_ROOM * 0.5**self.tries


class Brackets:
    def __init__(self, ctx: Parts) -> None:
        self.ctx = ctx
        self.plans: dict[str, StopPlan] = {}  # protective stops placed by this engine

    def bracket(
        self,
        exchange: str,
        symbol: str,
        action: str,
        quantity: int,
        entry_trigger: float | None = None,
        entry_buffer: float = 3.0,
        stop_trigger: float | None = None,
        stop_distance: float | None = None,
        stop_pct: float | None = None,
        stop_buffer: float = 3.0,
        target: float | None = None,
        units: Literal["rupees", "ticks"] = "rupees",
        product: str = "MIS",
        sizing: str = "",
        sizing_per_lot: float = 0.0,
    ) -> str:
        """An entry whose protective SL-L exit goes out as soon as (each part of) the entry
        fills (sized by risk from margin with ``sizing``, as ``order`` is).

        The entry is an SL order at ``entry_trigger`` with its limit ``entry_buffer``
        beyond it, or MARKET when no trigger is given. The exit's trigger is
        ``stop_trigger``, or ``stop_distance`` from the fill price, or ``stop_pct`` of
        the fill price away from it (exactly one of the three); its limit is
        ``stop_buffer`` beyond the trigger. Buffers and the distance are in rupees or
        ticks (``units``). With a ``target``, a LIMIT exit goes out too, and whichever
        exit fills first cancels (or shrinks) the other: OCO.
        """
        given = [x for x in (stop_trigger, stop_distance, stop_pct) if x is not None]
        if len(given) != 1:
            raise ValueError("bracket: give exactly one of stop_trigger, stop_distance, stop_pct")
        act = domain.action(action, "bracket: action")
        prod = domain.product(product, "bracket: product")
        if units not in ("rupees", "ticks"):
            raise ValueError(f"bracket: units {units!r} is not one of rupees, ticks")
        scale = self.ctx.refdata.instrument(exchange, symbol).tick_size if units == "ticks" else 1.0
        sign = 1 if act == "BUY" else -1  # a BUY stop entry's limit sits above its trigger
        spec = wire.BracketSpec(
            exit_action=domain.opposite(act),
            product=prod,
            stop_trigger=stop_trigger,
            stop_distance=None if stop_distance is None else stop_distance * scale,
            stop_pct=stop_pct,
            stop_buffer=stop_buffer * scale,
            target=target,
        )
        link = wire.OrderLink(bracket=spec)
        if entry_trigger is None:
            entry = self.ctx.order(
                action,
                exchange,
                symbol,
                quantity,
                product=product,
                link=link,
                sizing=sizing,
                sizing_per_lot=sizing_per_lot,
            )
        else:
            entry = self.ctx.order(
                action,
                exchange,
                symbol,
                quantity,
                pricetype="SL",
                trigger_price=entry_trigger,
                price=entry_trigger + sign * entry_buffer * scale,
                product=product,
                link=link,
                sizing=sizing,
                sizing_per_lot=sizing_per_lot,
            )
        if entry:
            self.ctx.brackets[entry] = spec
        return entry

    def protect(self, br: wire.BracketSpec, f: wire.Fill) -> None:
        """Place the exits for one fill of a bracket entry."""
        inst = self.ctx.refdata.instrument(f.exchange, f.symbol)
        up = 1 if br.exit_action == "BUY" else -1  # a BUY stop triggers above the fill
        if br.stop_trigger is not None:
            trig = br.stop_trigger
        elif br.stop_distance is not None:
            trig = f.price + up * br.stop_distance
        else:
            trig = f.price * (1 + up * (br.stop_pct or 0.0))
        trig = inst.round_price(trig)
        stop_id = self.ctx.link.next_intent_id()
        tgt_id = self.ctx.link.next_intent_id() if br.target is not None else ""
        plan = StopPlan(
            f.exchange, f.symbol, up, trig, inst.round_price(trig + up * br.stop_buffer),
            br.product, f.fill_id, tgt_id,
        )  # fmt: skip
        stop = self._place_stop(plan, br.exit_action, f.quantity, inst, stop_id)
        tgt = ""
        if br.target is not None:
            tgt = self.ctx.order(
                br.exit_action,
                f.exchange,
                f.symbol,
                f.quantity,
                pricetype="LIMIT",
                price=inst.round_price(br.target),
                product=br.product,
                link=wire.OrderLink(protective=True, oco=stop, protects=f.fill_id),
                intent_id=tgt_id,
            )
        self.ctx.protective.update(x for x in (stop, tgt) if x)
        if stop and tgt:
            self.ctx.oco[stop], self.ctx.oco[tgt] = tgt, stop
        if not stop:
            self.ctx.log.error("bracket stop could not be placed", symbol=f.symbol, qty=f.quantity)

    def _place_stop(
        self, plan: StopPlan, action: str, qty: int, inst: Instrument, intent_id: str = ""
    ) -> str:
        """The SL-L stop of ``plan``, inside the band now (``plan.room``); kept to be
        moved out."""
        trig, limit = self._inside(plan, inst)
        stop = self.ctx.order(
            action,
            plan.exchange,
            plan.symbol,
            qty,
            pricetype="SL",
            trigger_price=trig,
            price=limit,
            product=plan.product,
            link=wire.OrderLink(protective=True, oco=plan.oco, protects=plan.protects),
            intent_id=intent_id,
        )
        if stop:
            self.plans[stop] = plan
            if (trig, limit) != (plan.trigger, plan.limit):
                self.ctx.log.warning(
                    "protective stop placed at the price band's edge; moved out as the band "
                    "allows", symbol=plan.symbol, trigger=trig, limit=limit,
                    meant_trigger=plan.trigger, meant_limit=plan.limit,
                )  # fmt: skip
        return stop

    def _inside(self, plan: StopPlan, inst: Instrument) -> tuple[float, float]:
        """(trigger, limit) of ``plan`` as near as the band around the last price allows
        (``plan.room`` of the band's half), the buffer between them kept; as meant before
        a price."""
        band = self.ctx.link.band(self.ctx.name, plan.exchange, plan.symbol)
        if band is None:
            return plan.trigger, plan.limit
        last, half = band
        tick = inst.tick_size
        gap = abs(plan.limit - plan.trigger)
        # a trigger drawn in by the band stays a tick beyond the price (or at the limit):
        # a stop at or through the price would trigger at once and close the position
        if plan.up > 0:  # the highest price a BUY stop may carry, on the tick grid
            edge = round(math.floor((last + half * plan.room) / tick + 1e-9) * tick, 2)
            limit = min(plan.limit, edge)
            trig = min(plan.trigger, inst.round_price(limit - gap))
            beyond = round(math.floor(last / tick + 1e-9) * tick + tick, 2)
            if trig < plan.trigger:
                trig = max(trig, min(limit, beyond))
        else:
            edge = round(math.ceil((last - half * plan.room) / tick - 1e-9) * tick, 2)
            limit = max(plan.limit, edge)
            trig = max(plan.trigger, inst.round_price(limit + gap))
            beyond = round(math.ceil(last / tick - 1e-9) * tick - tick, 2)
            if trig > plan.trigger:
                trig = min(trig, max(limit, beyond))
        return trig, limit

    def on_mark(self, exchange: str, symbol: str) -> None:
        """A new price of a held instrument: its stops placed short of where they were
        meant to be move out as far as the band now allows (one amend in flight per
        stop, and only for a real step: ``MOVE_SHARE`` of the way left, or all of it)."""
        if not self.plans:
            return
        for iid, plan in list(self.plans.items()):
            if plan.exchange != exchange or plan.symbol != symbol:
                continue
            o = self.ctx.open_orders.get(iid)
            if o is None:
                del self.plans[iid]  # ended (its fate is the order book's)
                continue
            at = (o.trigger_price, o.price)
            if at == (plan.trigger, plan.limit) or o.status not in ("open", "trigger pending"):
                continue
            if any(target == iid for target, _ in self.ctx.amends.values()):
                continue  # the last move is still on its way
            inst = self.ctx.refdata.instrument(exchange, symbol)
            trig, limit = self._inside(plan, inst)
            moved = (trig - at[0]) * plan.up  # outward: towards where it was meant to be
            left = (plan.trigger - at[0]) * plan.up
            small = moved < left * MOVE_SHARE and trig != plan.trigger
            if moved < inst.tick_size - 1e-9 or small:
                continue
            if self.ctx.modify(iid, trigger_price=trig, price=limit):
                self.ctx.log.info("protective stop moved out as the band allows",
                                  symbol=symbol, trigger=trig, limit=limit,
                                  meant_trigger=plan.trigger)  # fmt: skip

    def unprotected(self, stop: OpenOrder, reason: str) -> None:
        """A protective exit was refused: the position it guarded is open without a stop.
        Refused for its price band, it is placed again inside the band, nearer the price
        each time (at most ``BAND_RETRIES`` times); else, fail safe: close that quantity at
        market, and say so loudly."""
        pos = self.ctx.position(stop.exchange, stop.symbol)
        guarded = pos < 0 if stop.action == "BUY" else pos > 0
        qty = min(stop.remaining, abs(pos)) if guarded else 0
        plan = self.plans.pop(stop.intent_id, None)
        if qty and plan is not None and "band" in reason and plan.tries < BAND_RETRIES:
            plan.tries += 1
            inst = self.ctx.refdata.instrument(stop.exchange, stop.symbol)
            self.ctx.engine_orders = True  # it protects: it passes even in quarantine
            try:
                again = self._place_stop(plan, stop.action, qty, inst)
            finally:
                self.ctx.engine_orders = False
            if again:
                self.ctx.protective.add(again)
                if plan.oco and plan.oco in self.ctx.open_orders:
                    self.ctx.oco[again], self.ctx.oco[plan.oco] = plan.oco, again
                self.ctx.log.warning("protective stop refused for its price band: placed "
                                     "again nearer the price", symbol=stop.symbol,
                                     reason=reason, attempt=plan.tries)  # fmt: skip
                return
        self.ctx.log.critical(
            "protective exit rejected: closing the unprotected quantity at market",
            symbol=stop.symbol,
            reason=reason,
            qty=qty,
        )
        if qty:
            self.ctx.engine_orders = True
            try:
                self.ctx.order(stop.action, stop.exchange, stop.symbol, qty, product=stop.product)
            finally:
                self.ctx.engine_orders = False

    def oco_done(self, intent_id: str, status: str) -> None:
        sibling = self.ctx.oco.pop(intent_id, None)
        if sibling is None:
            return
        self.ctx.oco.pop(sibling, None)
        if status == "complete" and sibling in self.ctx.open_orders:
            self.ctx.cancel(sibling)

    def settle_missed(self, orders: list[wire.WorkingOrder], fills: list[wire.Fill]) -> list[str]:
        """After an engine restart, the duties the dead engine may not have done for fills
        it never saw (they are in the restored positions, so they come no more):

        * a fill of a bracket entry that no exit of the day protects (``OrderLink.protects``
          names the fill) gets its exits now, once, however often the engine restarts;
        * a working exit whose OCO sibling filled shrinks by that fill, or is cancelled.

        Returns what it did, for the log."""
        by_intent = {w.order.intent_id: w for w in orders}
        protected = {
            w.order.link.protects
            for w in orders
            if w.order.link is not None and w.order.link.protects and w.status != "rejected"
        }
        done: list[str] = []
        self.ctx.engine_orders = True  # protective orders pass even in quarantine
        try:
            for f in fills:
                entry = by_intent.get(intent_of(f.order_id))
                link = entry.order.link if entry is not None else None
                if link is not None and link.bracket is not None and f.fill_id not in protected:
                    self.protect(link.bracket, f)
                    done.append(f"protected {f.symbol} fill {f.fill_id}")
            sizes = {f.fill_id: f.quantity for f in fills}
            for intent_id, sibling in list(self.ctx.oco.items()):
                me, sib = by_intent.get(intent_id), by_intent.get(sibling)
                oo = self.ctx.open_orders.get(intent_id)
                if oo is None or me is None or sib is None or not sib.filled_qty:
                    continue
                pair = sizes.get(me.order.link.protects if me.order.link else "", me.order.quantity)
                left = pair - sib.filled_qty - me.filled_qty
                if left <= 0:
                    self.ctx.cancel(intent_id)
                    done.append(f"cancelled {intent_id}: its OCO sibling filled")
                elif left < oo.remaining:
                    self.ctx.modify(intent_id, quantity=left)
                    done.append(f"shrank {intent_id} to {left}: its OCO sibling filled")
        finally:
            self.ctx.engine_orders = False
        return done
