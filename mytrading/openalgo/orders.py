"""The router's broker adapter for OpenAlgo, on ``rest.OpenAlgoREST`` (the SDK's calls
and reply shapes on one kept-alive connection, without the SDK's 1.1 s import).

* Every REST call has an explicit timeout (``MT_OPENALGO_TIMEOUT_S``), not the SDK's 120 s.
* Replies are normalised: numbers arrive as strings or numbers, statuses in lowercase,
  errors in two families (docs/openalgo.md §0); the client, like the SDK,
  returns errors as dicts and never raises.
* Each failure is classified: **transient** (timeout, connection, 5xx, 429) or
  **permanent** (400, 403, 404, a broker rejection). Two transient failures certainly left
  nothing at the broker and may be sent again: a 429 (refused before anything happens; its
  ``retry_after`` is read from the body the SDK folds into the message) and a refused
  connection (``httpx.ConnectError``: no request was written).
* After an ambiguous failure of ``placeorder`` (timeout, connection drop, 5xx) the order may
  or may not exist at the broker, and OpenAlgo orders carry no client id. The adapter never
  sends it again; it looks for it in the order book: a row of the same symbol, side,
  quantity, type and product that is not already ours and **was not there before the
  call** (not among the ids of the last order-book read before it). The broker's clock
  plays no part in that; where no read came before the call (a router just started),
  the rows' times are compared with ours corrected by the broker's clock offset, learnt
  from our acknowledged orders (``BrokerClock``), and without one no time is compared.
  One match is adopted; several orders of the same shape unresolved together take as
  many matches, oldest first; more matches than orders stay ``unknown`` (a human must
  decide). No match leaves the order ``unknown``, looked for on every read of the order
  book; it is *absent* (certainly never placed) only after ``ABSENT_READS`` successful
  reads taken after the call, over at least ``ABSENT_MIN_S``.
* Order states come first from the ``order_update`` pushes (``on_order_update``), then
  from polling the order book for working orders, which repairs what a push missed.
  Fills are the increases of filled quantity, priced from the change of the average
  price. An order's first state is what the broker said: while updates are pushed the
  push brings it, else ``orderstatus`` is asked; nothing is assumed in between.
* ``orderstatus`` against a live broker has no filled quantity and the average price of
  the order's *first* trade; a complete order read from it (or from any row without a
  filled quantity) is priced from the trade book, which has every trade.
"""

from __future__ import annotations

import collections
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog

from mytrading import hosttime
from mytrading.domain import PriceType
from mytrading.messaging import wire
from mytrading.openalgo.broker import (
    ABSENT_MIN_S,
    ABSENT_READS,
    BrokerAdapter,
    BrokerBooks,
    Events,
    FillReport,
    OrderEvent,
    OrderReport,
    Outcome,
    PlaceResult,
    PositionReport,
    TradeEvent,
    status_of,
)
from mytrading.openalgo.replies import Failure, classify, num, parse_ts
from mytrading.openalgo.rest import Exchange, OpenAlgoREST
from mytrading.orders.state import is_final

log = structlog.get_logger("router.openalgo")

EARLY_MAX = 1000  # pushes for orders whose placement reply is still on the way
LOOKBACK_S = 5.0  # broker timestamps have 1 s resolution; the offset is learnt to ~1 s
IST_OFFSET_S = 19_800  # IST is UTC+05:30, no daylight saving: market days in epoch seconds
SENT_AT_MAX = 200  # our send times kept for orders the book has not shown yet


def order_report(row: dict[str, Any]) -> OrderReport:
    """An OpenAlgo order-book row, or an ``order_update`` push (the same fields), read."""
    return OrderReport(
        broker_id=str(row.get("orderid", "")),
        exchange=str(row.get("exchange", "")),
        symbol=str(row.get("symbol", "")),
        action=str(row.get("action", "")).upper(),
        quantity=int(num(row.get("quantity"))),
        pricetype=str(row.get("pricetype") or row.get("price_type") or "").upper(),
        product=str(row.get("product", "")).upper(),
        status=status_of(row.get("order_status")),
        filled=int(num(row.get("filled_quantity"))) if "filled_quantity" in row else None,
        avg_price=num(row.get("average_price")),
        price=num(row.get("price")),
        trigger_price=num(row.get("trigger_price")),
        placed_s=parse_ts(row.get("timestamp")),
        strategy=None if row.get("strategy") is None else str(row.get("strategy")),
        reason=str(row.get("rejection_reason") or ""),
    )


def fill_report(row: dict[str, Any]) -> FillReport:
    """An OpenAlgo trade-book row, read (its price is the trade's average)."""
    return FillReport(
        str(row.get("orderid", "")),
        int(num(row.get("quantity"))),
        num(row.get("average_price")) or num(row.get("price")),
    )


def _order_rows(reply: dict[str, Any]) -> list[OrderReport] | None:
    """An order book's rows; None for a reply that is not one (``data`` null or without
    its ``orders`` list: a garbled read is no evidence that an order is absent)."""
    data = reply.get("data")
    if data == [] or data == {}:
        return []  # an empty book, as some brokers' mappings give it
    orders = data.get("orders") if isinstance(data, dict) else None
    if not isinstance(orders, list):
        return None
    try:
        return [order_report(r) for r in orders if isinstance(r, dict)]
    except (TypeError, ValueError):
        return None


def _list_rows(reply: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A trade or position book's rows; None for a reply that is not one."""
    data = reply.get("data")
    if data == {}:
        return []
    if not isinstance(data, list):
        return None
    return [r for r in data if isinstance(r, dict)]


@dataclass
class Tracked:
    order: wire.Order
    orderid: str
    status: str = ""  # none until the broker says
    filled: int = 0
    avg: float = 0.0
    value: float = 0.0  # the fills reported so far: quantity x price, summed
    price_waits: int = 0  # reads a fill's part has waited for the trade book to price it


@dataclass
class Unknown:
    order: wire.Order
    since_s: float  # market-clock seconds when we sent it
    # the broker ids of the last order-book read before the call (None: none came before)
    before: frozenset[str] | None = None
    reads: int = 0  # successful order-book reads after the call that did not show it
    claimed: str = ""  # the broker id the reconciler saw it as
    first_seen: float = field(default_factory=lambda: hosttime.monotonic())
    said_ambiguous: bool = False

    def shape(self) -> tuple[str, ...]:
        o = self.order
        return (o.exchange, o.symbol, o.action, str(o.quantity), o.pricetype, o.product,
                o.strategy)  # fmt: skip


Found = tuple[Unknown, OrderReport]  # an unknown order, and the broker's row of it


class BrokerClock:
    """The broker's clock less ours, learnt from our acknowledged orders: the time its
    order book gives each less the time we sent it (its timestamps have whole seconds,
    so one sample is within a second and a round trip; the median of the latest is
    kept)."""

    KEEP = 15

    def __init__(self) -> None:
        self.samples: collections.deque[float] = collections.deque(maxlen=self.KEEP)

    def learn(self, broker_s: float, ours_s: float) -> None:
        self.samples.append(broker_s - ours_s)

    @property
    def offset_s(self) -> float | None:
        if not self.samples:
            return None
        return statistics.median(self.samples)


PRICE_WAITS = 3  # reads a fill waits for the trade book before the averages price it


class TradeBookOnce:
    """The trade book (filled quantity and value per order id), read when first asked
    for and not again: one read serves every order an update or a poll prices."""

    def __init__(self, read: Callable[[], dict[str, tuple[int, float]]]) -> None:
        self._read = read
        self._got: dict[str, tuple[int, float]] | None = None

    def __call__(self) -> dict[str, tuple[int, float]]:
        if self._got is None:
            self._got = self._read()
        return self._got


class OpenAlgoAdapter:
    def __init__(
        self,
        api_key: str,
        host: str,
        timeout_s: float,
        now_s: Any,
        local: Exchange | None = None,
        transport: Any = None,
    ) -> None:
        self.sdk = OpenAlgoREST(api_key, host, timeout_s, local, transport)
        self.now_s = now_s  # market-clock seconds (broker timestamps are market time)
        self.tracked: dict[str, Tracked] = {}  # broker order id -> working order
        self.known_ids: set[str] = set()
        self.unknown: dict[str, Unknown] = {}  # our order id -> not yet found at the broker
        # the broker ids in the last order-book read (None: no read yet): what an
        # ambiguous order cannot be, since it was there before the call
        self.book_ids: frozenset[str] | None = None
        self.clock = BrokerClock()
        self.sent_at: dict[str, float] = {}  # broker id -> our send time, until the book shows it
        self.counts: dict[str, int] = {}
        self.early: dict[str, OrderReport] = {}  # order id -> a push before its reply
        # unknown orders settled by a read made for another one (the row found, or None:
        # absent), handed over at the next poll
        self._pending: list[tuple[Unknown, OrderReport | None]] = []
        # True while the broker's order updates are pushed to us (subscribed, confirmed):
        # a new order's state then comes from the push, not from a call of our own
        self.pushing: Callable[[], bool] = lambda: False
        # an instrument's (tick, unit a trade is a multiple of: its lot, or 1 share), the
        # router's from reference data: a part of a fill derived from rounded averages is
        # priced exactly where only one value fits (``_part_price``)
        self.steps_of: Callable[[str, str], tuple[float, int]] | None = None
        self.absent_s = ABSENT_MIN_S  # the router sets MT_OPENALGO_ABSENT_S

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # --------------------------------------------------------------------- orders

    def place_order(self, order: wire.Order) -> tuple[PlaceResult, Events]:
        sent_s = self.now_s()
        before = self.book_ids
        reply = self.sdk.placeorder(
            strategy=order.strategy,
            symbol=order.symbol,
            action=order.action,
            exchange=order.exchange,
            price_type=order.pricetype,
            product=order.product,
            quantity=order.quantity,
            price=order.price,
            trigger_price=order.trigger_price,
        )
        fail = classify(reply)
        if fail is None:
            oid = str(reply.get("orderid", ""))
            self._sent(oid, sent_s)
            return PlaceResult.accepted(oid), self._adopt(order, oid)
        self._count("transient" if fail.transient else "permanent")
        if not fail.ambiguous:
            return PlaceResult(
                Outcome.RETRY if fail.not_sent else Outcome.REJECTED,
                message=fail.message,
                http_status=fail.code,
                retry_after_s=fail.retry_after_s,
            ), []
        log.warning(
            "placeorder ambiguous; looking in the order book",
            order_id=order.order_id,
            code=fail.code,
            reason=fail.message,
        )
        self.unknown[order.order_id] = Unknown(order, sent_s, before)
        row = self._look_now(order.order_id)
        if row is not None:
            self._count("recovered_after_timeout")
            found = PlaceResult(Outcome.ACCEPTED, orderid=row.broker_id, unanswered=True)
            return found, self._take(order, row)
        return PlaceResult(Outcome.UNKNOWN, message=fail.message, http_status=0,
                           unanswered=True), []  # fmt: skip

    def remember(self, broker_ids: set[str]) -> None:
        self.known_ids |= broker_ids

    def recover(
        self, order: wire.Order, broker_id: str, filled: int, avg: float, since_s: float
    ) -> str | None:
        """At start: an order the journal left in flight. With its broker id it is tracked
        again; without one it is looked for now, and if not found it stays unknown here,
        looked for on every poll like an order whose reply was lost."""
        if not broker_id:
            self.unknown[order.order_id] = Unknown(order, since_s)
            row = self._look_now(order.order_id)
            if row is None:
                return None
            broker_id = row.broker_id
        else:
            self._sent(broker_id, since_s)
        self.known_ids.add(broker_id)
        self.tracked[broker_id] = Tracked(order, broker_id, "open", filled, avg, filled * avg)
        return broker_id

    def _adopt(self, order: wire.Order, oid: str) -> Events:
        """Track an order the broker took. Its first state is the broker's: a push that
        came before this reply, else (updates not pushed) its ``orderstatus``."""
        self.known_ids.add(oid)
        self.tracked[oid] = Tracked(order, oid)
        early = self.early.pop(oid, None)
        if early is not None:
            return self._apply(oid, early)
        if self.pushing():
            return []  # the push brings it, the poll repairs a push missed
        return self._refresh_one(oid)

    def _refresh_one(self, oid: str) -> Events:
        reply = self.sdk.orderstatus(order_id=oid, strategy=self.tracked[oid].order.strategy)
        if classify(reply) is not None:
            return []  # the next poll of the order book will see it
        return self._apply(oid, order_report({"orderid": oid, **(reply.get("data") or {})}))

    def cancel_order(self, orderid: str) -> tuple[PlaceResult, Events]:
        reply = self.sdk.cancelorder(order_id=orderid)
        fail = classify(reply)
        if fail is not None:
            return PlaceResult.rejected(fail.message, fail.code), []
        return PlaceResult.accepted(orderid), self._refresh_one(
            orderid
        ) if orderid in self.tracked else []

    def modify_order(
        self, orderid: str, pricetype: PriceType, price: float, trigger_price: float, quantity: int
    ) -> tuple[PlaceResult, Events]:
        t = self.tracked.get(orderid)
        if t is None:
            return PlaceResult.rejected(f"Order {orderid} is not working"), []
        o = t.order
        reply = self.sdk.modifyorder(
            order_id=orderid,
            strategy=o.strategy,
            symbol=o.symbol,
            action=o.action,
            exchange=o.exchange,
            price_type=pricetype,
            product=o.product,
            quantity=str(quantity),
            price=str(price),
            trigger_price=str(trigger_price),
        )
        fail = classify(reply)
        if fail is not None:
            return PlaceResult.rejected(fail.message, fail.code), []
        t.order = msgspec.structs.replace(
            o, quantity=quantity, pricetype=pricetype, price=price, trigger_price=trigger_price
        )
        return PlaceResult.accepted(orderid), self._refresh_one(orderid)

    def on_tick(self, tick: wire.Tick) -> Events:
        return []  # the broker fills; market data plays no part here

    # -------------------------------------------------------------------- polling

    def poll(self) -> tuple[Events, list[tuple[wire.Order, str, str]]]:
        """(events for working orders, [(order, "found" | "absent", broker id)] for unknown
        orders resolved)."""
        if not self.tracked and not self.unknown and not self._pending:
            return [], []
        rows = self._read_book()
        events: Events = []
        found = [(u, r) for u, r in self._pending if r is not None]
        absent = [u for u, r in self._pending if r is None]
        self._pending = []
        if rows is None:
            self._count("poll_failed")
        else:
            mine = [r for r in rows if r.broker_id in self.tracked]
            book = TradeBookOnce(self._trades)  # read once for every order of this poll
            for r in mine:
                events += self._apply(r.broker_id, r, book)
            got, gone = self._resolve(rows, {r.broker_id for _, r in found})
            found += got
            absent += gone
        resolved: list[tuple[wire.Order, str, str]] = []
        for u, row in found:
            self._count("recovered_after_timeout")
            resolved.append((u.order, "found", row.broker_id))
            events += self._take(u.order, row)
        for u in absent:
            self._count("unknown_absent")
            resolved.append((u.order, "absent", ""))
        return events, resolved

    def unresolved(self) -> int:
        """Orders whose placement may or may not have reached the broker, still looked for."""
        return len(self.unknown) + len(self._pending)

    def claim(self, order_id: str, broker_id: str) -> bool:
        u = self.unknown.get(order_id)
        if u is None or not broker_id or broker_id in self.known_ids:
            return False
        u.claimed = broker_id
        return True

    def _look_now(self, our_id: str) -> OrderReport | None:
        """One read of the order book for the unknown orders: the row found for
        ``our_id`` (None: not found, or the book unread); what the read settled for the
        others is handed over at the next poll."""
        rows = self._read_book()
        if rows is None:
            return None
        found, absent = self._resolve(rows)
        hit = None
        for u, row in found:
            if u.order.order_id == our_id:
                hit = row
            else:
                self._pending.append((u, row))
        self._pending += [(u, None) for u in absent]
        return hit

    def on_order_update(self, msg: dict[str, Any]) -> Events:
        """An ``order_update`` from OpenAlgo's WebSocket (same fields as an order-book row).
        An order not tracked (yet) is left to the next poll: its placement reply may still
        be on the way."""
        report = order_report(msg)
        oid = report.broker_id
        if oid not in self.tracked:
            if oid in self.known_ids:
                return []  # finished already (a repeat or a late push)
            self._count("ws_updates_untracked")
            if len(self.early) >= EARLY_MAX:  # not ours, most likely: the oldest goes
                del self.early[next(iter(self.early))]
            self.early[oid] = report  # the placement's reply may still be on the way
            return []
        self._count("ws_updates")
        return self._apply(oid, report)

    def _trades(self) -> dict[str, tuple[int, float]]:
        """Filled quantity and value per order id, from the trade book ({} when it
        cannot be read: the next poll asks again)."""
        got = self._trade_book()
        if got is None:
            self._count("tradebook_failed")
        return got or {}

    def _trade_rows(self) -> list[FillReport] | None:
        reply = self.sdk.tradebook()
        rows = None if classify(reply) is not None else _list_rows(reply)
        if rows is None:
            return None
        try:
            return [fill_report(r) for r in rows]
        except (TypeError, ValueError):
            return None

    def _trade_book(self) -> dict[str, tuple[int, float]] | None:
        rows = self._trade_rows()
        return None if rows is None else BrokerBooks({}, rows).filled()

    def _apply(self, oid: str, row: OrderReport, book: TradeBookOnce | None = None) -> Events:
        t = self.tracked[oid]
        book = book or TradeBookOnce(self._trades)
        status = row.status
        qty = row.quantity or t.order.quantity
        avg = row.avg_price
        if row.filled is not None:
            filled = row.filled
        elif status in ("open", "complete", "cancelled"):
            # A live order-book row has neither filled quantity nor average price, and
            # ``orderstatus`` gives the first trade's price (docs/openalgo.md §1): the
            # trade book has every trade of the order, so its true average.
            self._count("fills_from_tradebook")
            q, value = book().get(oid, (0, 0.0))
            filled = q if q or status != "complete" else qty
            avg = value / q if q else avg
        else:
            filled = 0
        if filled > t.filled and not avg:
            q, value = book().get(oid, (0, 0.0))
            avg = value / q if q else 0.0
        events: Events = []
        if filled > t.filled:
            part = filled - t.filled
            px = self._part_price(t, oid, filled, avg, book) if avg else 0.0
            if px is None:  # its price waits for the trade book: the next read prices it
                self._count("fills_held_for_price")
                return []
            events.append(
                TradeEvent(oid, f"{oid}-{filled}", part, round(px, 6), int(self.now_s() * 1e9))
            )
            t.filled, t.avg = filled, avg
            t.value += part * round(px, 6)
        if status != t.status or events:
            t.status = status or t.status
            events.append(OrderEvent(oid, t.status, t.filled, t.avg, row.reason))
        if is_final(t.status):
            del self.tracked[oid]
        return events

    def _part_price(
        self, t: Tracked, oid: str, filled: int, avg: float, book: TradeBookOnce
    ) -> float | None:
        """The price of the part of a fill that takes the order from ``t.filled`` to
        ``filled``, from the broker's average ``avg`` (rounded to the paisa) and what the
        earlier parts were worth (``t.value``, exact).

        The part's value is ``avg * filled - t.value``, known to within half a paisa a
        unit filled. Its trades each traded whole units (a lot of a contract, a share)
        on the tick grid, so the value is a multiple of ``tick * unit``: where that step
        is wider than the rounding's reach, one value fits, and the part is priced
        exactly, several trades at different prices included (an average of 24,609.28
        for two lots at 24,609.25 and 24,609.30 is 24,609.275: simulator seed 30). Where
        more than one fits (106 shares at 942.75 and 942.80 average 942.75: seed 141),
        the trade book's value prices the part; unread, the averages' word stands."""
        part = filled - t.filled
        value = avg * filled - t.value
        tick, unit = self.steps_of(t.order.exchange, t.order.symbol) if self.steps_of else (0, 0)
        if tick > 0 and unit > 0:
            step = tick * unit
            if 0.005 * filled * 2 < step - 1e-9:
                return round(value / step) * step / part
            q, traded = book().get(oid, (0, 0.0))
            if q == filled and traded:
                self._count("fills_priced_from_tradebook")
                t.price_waits = 0
                return (traded - t.value) / part
            if t.price_waits < PRICE_WAITS:  # the book unread, or behind the order's row
                t.price_waits += 1
                return None
            self._count("fills_priced_from_averages")
            log.warning(
                "a fill priced from the broker's averages: the trade book could not say",
                broker_id=oid,
                quantity=part,
                price=round(value / part, 6),
                reads=t.price_waits,
            )
            t.price_waits = 0
        return value / part

    def _read_book(self) -> list[OrderReport] | None:
        """The order book now (None when it could not be read); every good read is what
        a later ambiguous order cannot be, and teaches the broker's clock offset."""
        reply = self.sdk.orderbook()
        rows = None if classify(reply) is not None else _order_rows(reply)
        if rows is None:
            return None
        self.book_ids = frozenset(r.broker_id for r in rows)
        if self.sent_at:
            for r in rows:
                ours = self.sent_at.pop(r.broker_id, None)
                if ours is not None and r.placed_s is not None:
                    self.clock.learn(r.placed_s, ours)
        return rows

    def _sent(self, broker_id: str, sent_s: float) -> None:
        self.sent_at[broker_id] = sent_s
        while len(self.sent_at) > SENT_AT_MAX:
            del self.sent_at[next(iter(self.sent_at))]

    def _take(self, order: wire.Order, row: OrderReport) -> Events:
        """An unknown order found as ``row``: tracked from the row's state (fills
        included), as if its reply had said so."""
        oid = row.broker_id
        self.known_ids.add(oid)
        self.tracked[oid] = Tracked(order, oid)
        self.early.pop(oid, None)  # the row is newer than any push kept for it
        return self._apply(oid, row)

    def _resolve(
        self, rows: list[OrderReport], given: set[str] | frozenset[str] = frozenset()
    ) -> tuple[list[Found], list[Unknown]]:
        """Unknown orders against one good read of the order book: (found, absent).
        Oldest first; orders of one shape unresolved together share its matches, oldest
        row first (any assignment among them is the same trade)."""
        if not self.unknown:
            return [], []
        # rows already given to an order (found by an earlier read, handed over at the next
        # poll) are no one else's: two orders must never take one row
        taken = {row.broker_id for _, row in self._pending if row is not None} | set(given)
        shapes = collections.Counter(u.shape() for u in self.unknown.values())
        found: list[tuple[Unknown, OrderReport]] = []
        absent: list[Unknown] = []
        now = hosttime.monotonic()
        for our_id, u in sorted(self.unknown.items(), key=lambda kv: kv[1].since_s):
            hits = [r for r in rows if r.broker_id not in taken and self._could_be(r, u)]
            if hits and len(hits) <= shapes[u.shape()]:
                row = min(hits, key=lambda r: r.placed_s if r.placed_s is not None else 0.0)
                taken.add(row.broker_id)
                shapes[u.shape()] -= 1
                del self.unknown[our_id]
                found.append((u, row))
            elif hits:
                if not u.said_ambiguous:
                    u.said_ambiguous = True
                    log.error(
                        "ambiguous order-book match; leaving the order unknown",
                        order_id=u.order.order_id,
                        candidates=[r.broker_id for r in hits],
                    )
            elif self._same_day(u.since_s):
                # a read of a later day's book is no evidence: the broker's book clears
                # overnight (a call in flight at the close of a simulated day): it stays
                # unknown, for a person
                u.reads += 1
                if u.reads >= ABSENT_READS and now - u.first_seen >= self.absent_s:
                    del self.unknown[our_id]
                    absent.append(u)
        return found, absent

    def _same_day(self, since_s: float) -> bool:
        """Our market day now is the day of ``since_s`` (IST)."""
        return int((self.now_s() + IST_OFFSET_S) // 86_400) == int(
            (since_s + IST_OFFSET_S) // 86_400
        )

    def _could_be(self, r: OrderReport, u: Unknown) -> bool:
        """Row ``r`` could be unknown order ``u``: not ours already, not in the book before
        the call, the same order, and (with the broker's clock known) not placed before."""
        if r.broker_id in self.known_ids:
            return False
        if u.claimed and r.broker_id != u.claimed:  # the reconciler's: this row, if it fits
            return False
        if u.before is not None and r.broker_id in u.before:
            return False  # there before the call: not it, whatever anyone says
        o = u.order
        if not (
            r.symbol == o.symbol
            and r.exchange == o.exchange
            and r.action == o.action
            and r.quantity == o.quantity
            and r.pricetype == o.pricetype
            and r.product == o.product
            and r.strategy in (None, "", o.strategy)
        ):
            return False
        offset = self.clock.offset_s
        if u.claimed or offset is None or r.placed_s is None:
            return True
        return r.placed_s - offset >= u.since_s - LOOKBACK_S

    # ---------------------------------------------------------------------- books

    def close(self) -> None:
        self.sdk.close()

    def ping(self) -> Failure | None:
        return classify(self.sdk.ping())

    def books(self) -> BrokerBooks | None:
        rows = self._read_book()
        trades = self._trade_rows() if rows is not None else None
        if rows is None or trades is None:
            return None
        return BrokerBooks({r.broker_id: r for r in rows}, trades)

    def funds(self) -> wire.Funds:
        """OpenAlgo ``funds``; live values are strings (coerced here)."""
        reply = self.sdk.funds()
        fail = classify(reply)
        if fail is not None:
            raise ConnectionError(f"funds: {fail.message}")
        d = reply.get("data") or {}
        return wire.Funds(
            available=num(d.get("availablecash")),
            utilised=num(d.get("utiliseddebits")),
            realized=num(d.get("m2mrealized")),
            unrealized=num(d.get("m2munrealized")),
        )

    def margin_per_lot(
        self, exchange: str, symbol: str, action: str, product: str, lot: int
    ) -> float | None:
        """OpenAlgo ``margin`` for one lot at market; None where it does not answer."""
        reply = self.sdk.margin(
            positions=[
                {
                    "symbol": symbol,
                    "exchange": exchange,
                    "action": action,
                    "quantity": str(lot),
                    "product": product,
                    "pricetype": "MARKET",
                    "price": "0",
                }
            ]
        )
        if classify(reply) is not None:
            self._count("margin_unanswered")
            return None
        total = num((reply.get("data") or {}).get("total_margin_required"))
        return total if total > 0 else None

    def positionbook(self) -> list[PositionReport]:
        reply = self.sdk.positionbook()
        fail = classify(reply)
        if fail is not None:
            raise ConnectionError(f"positionbook: {fail.message}")
        rows = _list_rows(reply)
        if rows is None:
            raise ConnectionError("positionbook: a reply that is not a position book")
        return [
            wire.BrokerPosition(
                str(r.get("exchange", "")),
                str(r.get("symbol", "")),
                str(r.get("product", "")),
                int(num(r.get("quantity"))),
                num(r.get("average_price")),
            )
            for r in rows
        ]


def as_broker(adapter: OpenAlgoAdapter) -> BrokerAdapter:
    """The adapter as a lane holds it (the type checker proves it meets the Protocol)."""
    return adapter
