"""Follower accounts: each mirrors its strategy's position on main, at its own size.

For every order risk approves for a strategy with followers (``config/accounts.toml``),
each follower gets the order that brings its *exposure* (position plus working orders,
in its own book ``<strategy>@<account>``) to its target::

    target = sign(lead) * floor(|lead| * ratio / lot) * lot

where ``lead`` is the strategy's exposure on its lead account once this order is counted. ``ratio``
is fixed when the lead opens from flat: the follower's multiple, or the lots its own free
margin buys at its grade (``margins.toml [sizing]``) over the lead's lots (that margin
is reserved on the follower's account until its broker's next funds report). It is
forgotten when the lead is flat again, and after a risk restart it is read back from the
exposures (follower over lead).

Because the target comes from the lead's exposure, not from the order, a follower whose
order was refused catches up at the lead's next order, and the lead going flat takes
every follower flat. It does not wait for that either (``converge``): once a second,
a follower book that differs from its lead's exposure x its ratio, with nothing working
on either side, for ``CONVERGE_AFTER_S`` in a row, while its account's broker answers
(a funds report younger than ``FRESH_NS``), gets the order that brings it back, through
the same rules as any follower order. A copy the broker refused while it was away is
so made good within seconds of its return, not at the lead's next trade. With a lead's
order, a follower that would have to trade *against* it (it is ahead of its target, e.g.
filled where the lead was refused) is not traded (logged as drift); the convergence pass
brings it back once nothing is working.
A cancel reaches the follower's orders of the same intent; a modify moves their prices
and scales their quantity by the ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import msgspec
import structlog

from mytrading import hosttime
from mytrading.domain import Product
from mytrading.domain.accounts import Accounts, Follow, book_name
from mytrading.domain.ids import OrderId
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.risk.book import RiskBook
from mytrading.risk.margin import MarginTable

log = structlog.get_logger("risk.mirror")

Key = tuple[str, str, str]  # (book, exchange, symbol)
CONVERGE_AFTER_S = 3.0  # a follower's difference from its lead, unchanged this long, is made good
FRESH_NS = 15 * 1_000_000_000  # an account whose funds report is older: its broker is away


@dataclass
class Mirror:
    accounts: Accounts
    refdata: RefData
    margins: MarginTable | None
    ratios: dict[Key, float] = field(default_factory=dict)
    drift: int = 0  # follower orders not sent because they would go against the lead's
    # the product of each strategy's latest order per instrument (a catch-up uses it)
    products: dict[Key, Product] = field(default_factory=dict)
    gaps: dict[Key, tuple[int, int]] = field(default_factory=dict)  # key -> (delta, since)
    caught_up: int = 0  # catch-up orders made

    def converge(
        self, book: RiskBook, wall_ns: int, new_intent: Callable[[], str], by: str
    ) -> list[wire.Order]:
        """The catch-up orders due now (see the module's doc)."""
        out: list[wire.Order] = []
        for strategy, follows in self.accounts.follows.items():
            for fol in follows:
                fb = book_name(strategy, fol.account)
                for ex, sym in sorted(self._keys(book, strategy) | self._keys(book, fb)):
                    o = self._catch_up(book, strategy, fol, fb, ex, sym, wall_ns, new_intent, by)
                    if o is not None:
                        out.append(o)
        return out

    @staticmethod
    def _keys(book: RiskBook, name: str) -> set[tuple[str, str]]:
        held = {(k[1], k[2]) for k, q in book.positions.items() if k[0] == name and q}
        return held | {(k[1], k[2]) for k, w in book.working.by_key.items() if k[0] == name and w}

    def target(
        self, book: RiskBook, fol: Follow, fb: str, lead: int, ex: str, sym: str
    ) -> int | None:
        """The follower's target for the lead's exposure ``lead`` (None: no ratio known)."""
        if lead == 0:
            return 0
        key = (fb, ex, sym)
        ratio = self.ratios.get(key) or fol.multiple
        have = book.net(key)
        if not ratio and have and (have > 0) == (lead > 0):
            ratio = abs(have) / abs(lead)  # sized by margin before a restart: what it holds
        if not ratio:
            return None
        lot = self.refdata.instrument(ex, sym).lot_size
        return int(math.copysign(math.floor(abs(lead) * ratio / lot + 1e-9) * lot, lead))

    def _catch_up(
        self, book: RiskBook, strategy: str, fol: Follow, fb: str, ex: str, sym: str,
        wall_ns: int, new_intent: Callable[[], str], by: str,
    ) -> wire.Order | None:  # fmt: skip
        key = (fb, ex, sym)
        if book.working.of((strategy, ex, sym)) or book.working.of(key):
            self.gaps.pop(key, None)  # in flux: the fills decide
            return None
        target = self.target(book, fol, fb, book.net((strategy, ex, sym)), ex, sym)
        have = book.net(key)
        delta = 0 if target is None else target - have
        if delta == 0:
            self.gaps.pop(key, None)
            return None
        if wall_ns - book.funds[fol.account].funds_ns > FRESH_NS:
            return None  # its broker does not answer: when it does
        seen = self.gaps.get(key)
        if seen is None or seen[0] != delta:
            self.gaps[key] = (delta, wall_ns)
            return None
        if wall_ns - seen[1] < CONVERGE_AFTER_S * 1e9:
            return None
        del self.gaps[key]
        pos = book.positions.get(key, 0)
        reducing = (pos > 0 > delta or pos < 0 < delta) and abs(delta) <= abs(pos)
        if book.states.of(fb) in ("halted", "reducing") and not reducing:
            return None
        intent = new_intent()
        self.caught_up += 1
        log.warning("follower brought back to its lead", book=fb, symbol=sym, follower=have,
                    target=target, delta=delta)  # fmt: skip
        return wire.Order(
            order_id=str(OrderId(strategy, intent, fol.account)),
            intent_id=intent,
            strategy=fb,
            exchange=ex,
            symbol=sym,
            action="BUY" if delta > 0 else "SELL",
            quantity=abs(delta),
            pricetype="MARKET",
            product=self.products.get((strategy, ex, sym), "MIS"),
            price=0.0,
            trigger_price=0.0,
            approved_by=by,
            exit=reducing,
            account=fol.account,
        )

    def differences(self, book: RiskBook) -> dict[str, dict[str, str]]:
        """Each follower book's instruments that differ from its lead x its ratio, as
        ``have/target``: what ``status`` shows."""
        out: dict[str, dict[str, str]] = {}
        for strategy, follows in self.accounts.follows.items():
            for fol in follows:
                fb = book_name(strategy, fol.account)
                for ex, sym in sorted(self._keys(book, strategy) | self._keys(book, fb)):
                    t = self.target(book, fol, fb, book.net((strategy, ex, sym)), ex, sym)
                    have = book.net((fb, ex, sym))
                    if t is not None and t != have:
                        out.setdefault(fb, {})[sym] = f"{have}/{t}"
        return out

    def plan(
        self, base: wire.Order, lead_before: int, book: RiskBook, day: date
    ) -> list[wire.Order]:
        """The followers' orders for one approved lead order (``base``, before any split);
        ``lead_before``: the strategy's exposure on its lead account before it."""
        out: list[wire.Order] = []
        if base.op == "place":
            self.products[(base.strategy, base.exchange, base.symbol)] = base.product
        for fol in self.accounts.followers(base.strategy):
            fb = book_name(base.strategy, fol.account)
            if base.op == "place":
                o = self._place(base, fol, fb, lead_before, book, day)
                out += [o] if o is not None else []
            else:
                out += self._amend(base, fol, fb, book)
        return out

    def _place(
        self, base: wire.Order, fol: Follow, fb: str, lead_before: int, book: RiskBook, day: date
    ) -> wire.Order | None:
        key = (fb, base.exchange, base.symbol)
        lot = self.refdata.instrument(base.exchange, base.symbol).lot_size
        signed = base.quantity if base.action == "BUY" else -base.quantity
        lead_after = lead_before + signed
        have = book.net(key)
        ratio = self._ratio(fol, key, base, lead_before, lead_after, have, book, day)
        if lead_after == 0:
            self.ratios.pop(key, None)
        if ratio is None:
            return None
        target = int(
            math.copysign(math.floor(abs(lead_after) * ratio / lot + 1e-9) * lot, lead_after)
        )
        delta = target - have
        if delta == 0:
            return None
        if (delta > 0) != (signed > 0):
            self.drift += 1
            log.warning(
                "follower ahead of its target: not traded against the lead",
                book=fb,
                symbol=base.symbol,
                follower=have,
                target=target,
                lead_order=base.order_id,
            )
            return None
        pos = book.positions.get(key, 0)
        reducing = (pos > 0 > delta or pos < 0 < delta) and abs(delta) <= abs(pos)
        state = book.states.of(fb)  # a follower book's own state, or the stack's
        if state in ("halted", "reducing") and not reducing:
            # no entry while HALTED or REDUCING; an order that only reduces still goes
            log.warning("follower book not trading: not mirrored", book=fb, state=state)
            return None
        return msgspec.structs.replace(
            base,
            order_id=str(OrderId.parse(base.order_id).copy_for(fol.account)),
            strategy=fb,
            account=fol.account,
            action="BUY" if delta > 0 else "SELL",
            quantity=abs(delta),
            exit=reducing,
            link=None,
        )

    def _ratio(
        self,
        fol: Follow,
        key: Key,
        base: wire.Order,
        lead_before: int,
        lead_after: int,
        have: int,
        book: RiskBook,
        day: date,
    ) -> float | None:
        """Follower quantity per lead quantity, fixed when the lead opens."""
        if lead_before and key in self.ratios:
            return self.ratios[key]
        if lead_before and have and (have > 0) == (lead_before > 0):
            ratio = abs(have) / abs(lead_before)  # after a risk restart: what it holds
        elif fol.multiple:
            ratio = fol.multiple
        else:
            lots = self._lots_from_margin(fol, base, book, day)
            if lots is None:
                return None
            ratio = lots * self.refdata.instrument(base.exchange, base.symbol).lot_size
            ratio /= abs(lead_after) or 1
        self.ratios[key] = ratio
        return ratio

    def _lots_from_margin(
        self, fol: Follow, base: wire.Order, book: RiskBook, day: date
    ) -> int | None:
        wall = hosttime.time_ns()
        funds = book.funds[fol.account]
        free = funds.free(wall)
        inst = self.refdata.instrument(base.exchange, base.symbol)
        price = base.price or book.ltp.get((base.exchange, base.symbol), 0.0)
        if free is None or self.margins is None:
            log.warning("follower not sized: no funds figure yet", account=fol.account)
            return None
        if inst.kind in ("CE", "PE") and base.action == "BUY" and price <= 0:
            log.warning("follower not sized: no price for an option purchase", book=base.symbol)
            return None
        per = self.margins.need(
            inst,
            base.action,
            inst.lot_size,
            price,
            inst.lot_size,
            False,
            day,
            product=base.product,
        ).per_lot
        lots = self.margins.lots_for(fol.grade, free, per)
        if lots <= 0:
            log.warning(
                "follower not sized: its margin is not one lot",
                account=fol.account,
                free=round(free),
                per_lot=round(per),
            )
            return None
        funds.reserve(wall, lots * per)  # until its broker's next report
        return lots

    def _amend(self, base: wire.Order, fol: Follow, fb: str, book: RiskBook) -> list[wire.Order]:
        """A cancel reaches each of the follower's orders for the intent; a modify, its one
        working order, with the lead's prices and its quantity scaled by the ratio."""
        ref = str(OrderId.parse(base.ref_order_id).copy_for(fol.account))
        targets = book.children(ref)
        oid = OrderId.parse(base.order_id).copy_for(fol.account)
        common = {"strategy": fb, "account": fol.account, "link": None}
        if base.op == "cancel":
            return [
                msgspec.structs.replace(
                    base,
                    order_id=str(oid.part(k) if len(targets) > 1 else oid),
                    ref_order_id=t,
                    **common,
                )
                for k, t in enumerate(targets, 1)
            ]
        ratio = self.ratios.get((fb, base.exchange, base.symbol))
        if targets != [ref] or ratio is None:
            return []  # nothing working there (or split): the lead's next order evens it
        lot = self.refdata.instrument(base.exchange, base.symbol).lot_size
        qty = max(lot, math.floor(base.quantity * ratio / lot + 1e-9) * lot)
        return [
            msgspec.structs.replace(
                base, order_id=str(oid), ref_order_id=ref, quantity=qty, **common
            )
        ]
