"""Brackets and OCO, kept by the engine: an entry's protective exits go out as each part
of it fills, the other exit of a pair shrinks or is cancelled when one fills, a refused
protective exit closes the unguarded quantity at market, and after a restart the duties
the dead engine missed are done once (``OrderLink`` travels with every order).

A part of ``StrategyContext`` (``engine/context.py``); ``BaseStrategy.bracket`` calls
``bracket`` here."""

from __future__ import annotations

from typing import Literal

from mytrading import domain
from mytrading.domain.ids import intent_of
from mytrading.engine.parts import OpenOrder, Parts
from mytrading.messaging import wire


class Brackets:
    def __init__(self, ctx: Parts) -> None:
        self.ctx = ctx

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
        stop = self.ctx.order(
            br.exit_action,
            f.exchange,
            f.symbol,
            f.quantity,
            pricetype="SL",
            trigger_price=trig,
            price=inst.round_price(trig + up * br.stop_buffer),
            product=br.product,
            link=wire.OrderLink(protective=True, oco=tgt_id, protects=f.fill_id),
            intent_id=stop_id,
        )
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

    def unprotected(self, stop: OpenOrder, reason: str) -> None:
        """A protective exit was refused: the position it guarded is open without a stop.
        Fail safe: close that quantity at market, and say so loudly."""
        pos = self.ctx.position(stop.exchange, stop.symbol)
        guarded = pos < 0 if stop.action == "BUY" else pos > 0
        qty = min(stop.remaining, abs(pos)) if guarded else 0
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
