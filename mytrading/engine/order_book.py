"""A strategy's own books, kept by the engine from what the router reports: working
orders (``OpenOrder``; a split order's children merged into one), positions from fills,
and, after an engine restart, the working orders taken up again with their links.

A part of ``StrategyContext`` (``engine/context.py``), the engine's side of a strategy."""

from __future__ import annotations

import msgspec

from mytrading.domain.ids import intent_of
from mytrading.engine.parts import OpenOrder, Parts
from mytrading.messaging import wire

__all__ = ["OpenOrder", "OrderBook"]


class OrderBook:
    def __init__(self, ctx: Parts) -> None:
        self.ctx = ctx

    def working_order(self, intent_id: str, what: str) -> OpenOrder:
        o = self.ctx.open_orders.get(intent_id)
        if o is None:
            raise ValueError(f"{what}: no open order {intent_id}")
        return o

    def restore_working(self, w: wire.WorkingOrder) -> None:
        """After an engine restart: an order the router still has working is open again
        (a child of a split intent adds to its parent's), with its bracket, protective
        and OCO links (``OrderLink``), so later fills are still protected."""
        o = w.order
        oo = self.ctx.open_orders.get(o.intent_id)
        if oo is None:
            oo = self.ctx.open_orders[o.intent_id] = OpenOrder(
                o.order_id if o.parts <= 1 else "",
                o.intent_id,
                o.exchange,
                o.symbol,
                o.action,
                0,
                w.status,
                o.pricetype,
                o.price,
                o.trigger_price,
                o.product,
            )
        oo.quantity += o.quantity
        oo.filled_qty += w.filled_qty
        oo.avg_price = w.avg_price or oo.avg_price
        if o.parts > 1:
            oo.parts = o.parts
            oo.children[o.order_id] = (w.status, w.filled_qty, w.avg_price)
        link = o.link
        if link is not None:  # the engine's own links, as the order carried them
            if link.bracket is not None:
                self.ctx.brackets[o.intent_id] = link.bracket
            if link.protective:
                self.ctx.protective.add(o.intent_id)
            if link.oco:
                self.ctx.oco[o.intent_id] = link.oco

    def take_up(self, i: wire.PlaceIntent) -> None:
        """A new order settled as rejected for want of risk's answer was approved after
        all: working again, as it was sent (its updates and fills follow)."""
        if i.intent_id not in self.ctx.open_orders:
            self.ctx.open_orders[i.intent_id] = OpenOrder(
                "", i.intent_id, i.exchange, i.symbol, i.action, i.quantity, "new",
                i.pricetype, i.price, i.trigger_price, i.product,
            )  # fmt: skip

    # Each update and fill is booked first (``book_update``, ``book_fill``, then
    # ``fill_duties``: the engine's own work, run outside any hook deadline), then shown to
    # the author's hooks.

    def update_hooks(self, u: wire.OrderUpdate) -> None:
        """The author's ``on_order_update`` with the update as booked, then ``on_roll``
        for a roll whose legs both ended."""
        self.ctx.strategy.on_order_update(u)
        while self.ctx.rolls_ended:
            self.ctx.link.roll_ended(self.ctx.name, self.ctx.rolls_ended.pop(0))

    def fill_hooks(self, f: wire.Fill) -> None:
        self.ctx.strategy.on_fill(f)
        self.ctx.strategy.on_position(self.ctx.position_view(f.exchange, f.symbol))

    def book_update(self, u: wire.OrderUpdate) -> wire.OrderUpdate:
        """Keep ``open_orders`` current; returns the update as the author should see it
        (a child order's update becomes one of the whole order)."""
        amend = self.ctx.amends.pop(u.intent_id, None)
        if amend is not None and u.status == "rejected":
            self.ctx.log.warning("amend refused", target=amend[0], reason=u.reason)
        if u.status == "rejected" and u.intent_id in self.ctx.rolls:  # refused as a pair
            self.ctx.log.warning("roll refused", intent=u.intent_id, reason=u.reason)
            for leg in self.ctx.roll_refused(u.intent_id):
                lo = self.ctx.open_orders[leg]
                self.book_update(
                    msgspec.structs.replace(
                        u, intent_id=leg, symbol=lo.symbol, action=lo.action, quantity=lo.quantity
                    )
                )
            return u
        o = self.ctx.open_orders.get(u.intent_id)
        if o is None:
            return u
        if u.parts > 1:
            u = o.merge(u)
        o.order_id = u.order_id or o.order_id
        o.status = u.status
        o.quantity = u.quantity or o.quantity
        o.filled_qty = u.filled_qty
        o.avg_price = u.avg_price or o.avg_price
        for a_id, (target, fields) in list(self.ctx.amends.items()):
            if target == u.intent_id and u.status in ("open", "trigger pending"):
                o.price, o.trigger_price = fields["price"], fields["trigger_price"]
                o.pricetype = fields["pricetype"]
                del self.ctx.amends[a_id]
        if u.status in wire.TERMINAL_STATUSES:
            del self.ctx.open_orders[u.intent_id]
            if u.intent_id in self.ctx.protective and u.status == "rejected":
                if o.pricetype == "LIMIT":  # a bracket's target: not what protects it
                    self.ctx.log.error(
                        "bracket target rejected: the position keeps its stop",
                        symbol=o.symbol,
                        reason=u.reason,
                    )
                else:
                    self.ctx.unprotected(o, u.reason)
            self.ctx.protective.discard(u.intent_id)
            self.ctx.brackets.pop(u.intent_id, None)  # its fills came first: exits are out
            self.ctx.oco_done(u.intent_id, u.status)
            if self.ctx.rolls:
                self.ctx.roll_leg_ended(u.intent_id, u.status)
        return u

    def book_fill(self, f: wire.Fill) -> None:
        """The position from the fill. Nothing else: what the fill asks of the engine
        (``fill_duties``) comes after, on a book that already holds it."""
        signed = f.quantity if f.action == "BUY" else -f.quantity
        self.ctx.ledger.apply((f.exchange, f.symbol), signed, f.price)
        self.ctx.products[(f.exchange, f.symbol)] = f.product
        self.ctx.fills += 1

    def fill_duties(self, f: wire.Fill) -> None:
        """The engine's own duties a booked fill brings: a bracket entry's exits go out,
        and an exit's OCO sibling shrinks or is cancelled."""
        intent_id = intent_of(f.order_id)
        self.ctx.engine_orders = True  # protective orders pass even in quarantine
        try:
            br = self.ctx.brackets.get(intent_id)
            if br is not None:
                self.ctx.protect(br, f)
            sibling = self.ctx.oco.get(intent_id)
            if sibling and sibling in self.ctx.open_orders:
                left = self.ctx.open_orders[sibling].remaining - f.quantity
                if left > 0:
                    self.ctx.modify(sibling, quantity=left)
                else:
                    self.ctx.cancel(sibling)
                    # the pair is done: the exit's "complete" must not cancel it again
                    self.ctx.oco.pop(intent_id, None)
                    self.ctx.oco.pop(sibling, None)
        finally:
            self.ctx.engine_orders = False
