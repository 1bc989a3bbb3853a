"""The simulated exchange and account behind the OpenAlgo-compatible server.

Prices come from a market (``sim/market.py`` generated, ``sim/replay.py`` recorded, or
pushed ticks in ``sim/local.py``), matching from the fill model (``sim/matching.py``).
This module keeps what OpenAlgo's books show (order rows, trade rows, positions, funds,
margin) and answers the order and account endpoints with OpenAlgo's field names,
lowercase statuses and error texts (docs/openalgo.md §1-3); the market-data
endpoints are in ``sim/market_data.py``, the books on disk in ``sim/books.py``. Each
handler returns ``(http_status, body)`` (``sim/replies.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import structlog

from mytrading import hosttime
from mytrading.domain import Product
from mytrading.domain.clock import MarketClock
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import IST, Instrument, RefData, RefDataError
from mytrading.domain.settlement import (
    Leg,
    expired,
    final_price_places,
    no_final_price,
    settle_legs,
    settled_through,
    settlement_id,
    settlement_time,
)
from mytrading.messaging import wire
from mytrading.openalgo.broker import RESTING, OrderEvent, TradeEvent
from mytrading.sim.books import Books, BookStore, counters, replay, rolled
from mytrading.sim.history import BarStore
from mytrading.sim.market import SimMarket
from mytrading.sim.market_data import MarketData
from mytrading.sim.matching import SimBroker, SimOrder
from mytrading.sim.replay import ReplayMarket
from mytrading.sim.replies import Reply, err, ok, ts

HALF_MINUTE_NS = 30 * 10**9
CATCH_UP_NS = 10 * 60 * 10**9  # the longest stall the market fills in (ten market minutes)
FUT_MARGIN = 0.12  # SPAN + exposure, as a share of notional, for futures and short options


@dataclass
class OrderMeta:
    strategy: str
    placed_ns: int
    rejection_reason: str = ""


log = structlog.get_logger("simserver.exchange")

BAND_MIN_TICKS = 40  # a band of a cheap option is never narrower than this, in ticks


class SimExchange(MarketData):
    def __init__(
        self,
        refdata: RefData,
        clock: MarketClock,
        market: SimMarket | ReplayMarket,
        capital: float = 10_000_000.0,
        slippage_ticks: int = 0,
        fill_model: str = "realistic",
        partial_fills: bool = True,
        price_band_pct: float = 20.0,
        option_band_pct: float = 50.0,
    ) -> None:
        self.refdata = refdata
        self.clock = clock
        self.market = market
        self.broker = SimBroker(refdata, clock, slippage_ticks, fill_model, partial_fills)
        self.price_band = price_band_pct / 100.0
        self.option_band = option_band_pct / 100.0
        self.capital = capital
        self.meta: dict[str, OrderMeta] = {}
        self.trades: list[dict[str, Any]] = []
        self.first_price: dict[str, float] = {}  # order id -> its first trade's price
        self.trade_wall_ns: dict[str, int] = {}  # order id -> wall time of its last trade
        # (exchange, symbol, product): realized and unrealized P&L
        self.ledger: Ledger[tuple[str, str, Product]] = Ledger()
        self.holdings: dict[tuple[str, str], tuple[int, float]] = {}  # settled CNC: qty, avg
        self.last: dict[tuple[str, str], wire.Tick] = {}
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # order_update sinks
        self._ids = itertools.count(1)
        self.history_store = BarStore(refdata.calendar)
        self.fresh: set[tuple[str, str]] = set()  # quoted in the latest step
        # what the WebSocket's clients subscribed (None: no server says: the strip)
        self.subscribed: set[tuple[str, str]] | None = None
        self._stepped_ns: int | None = None
        self.books: BookStore | None = None
        self._settled_through: date | None = None  # expiries settled up to this day
        self._settle_check_ns = 0  # before this, the settlement cutoff cannot have moved
        # expiry cutoffs with a contract still held for want of a final price: settled
        # at the next step that has one (nothing is settled at a guess)
        self.unsettled: set[date] = set()
        self._said_unsettled: set[str] = set()

    # ------------------------------------------------------------------ the books on disk

    def attach_books(self, store: BookStore) -> Books:
        """Take up the account's books from ``store`` (the same simulated day: as they
        were; an earlier day: rolled overnight), then write every change to it."""
        today = self.clock.now().date().isoformat()
        books = store.read() or Books(today, self.capital)
        if books.day != today:
            books = rolled(books, today)
        books.order_seq, books.trade_seq = counters(books)
        self._restore(books)
        store.rewrite(books)  # compacted: one line per order
        self.books = store
        return books

    def _restore(self, b: Books) -> None:
        self.capital = b.capital
        self.holdings = {(h["exchange"], h["symbol"]): (h["qty"], h["avg"]) for h in b.holdings}
        replay(b, self.ledger, self.broker.ledger)
        self.trades.extend(b.trades)
        for t in b.trades:
            self.first_price.setdefault(str(t["orderid"]), float(t["average_price"]))
        fields = {f.name for f in dataclasses.fields(SimOrder)}
        for oid, row in b.orders.items():
            so = SimOrder(**{k: v for k, v in row.items() if k in fields})
            self.broker.orders[oid] = so
            self.meta[oid] = OrderMeta(row["strategy"], row["placed_ns"], row["rejection_reason"])
            if so.status in RESTING:
                self.broker.live.setdefault((so.exchange, so.symbol), []).append(oid)
        self.broker.trades = b.trade_seq
        self.broker._ids = itertools.count(b.order_seq + 1)

    def _order_record(self, oid: str) -> dict[str, Any]:
        """An order's whole state as the file keeps it (flat fields: a shallow copy)."""
        meta = self.meta.get(oid, OrderMeta("", self.clock.now_ns()))
        so = self.broker.orders[oid]  # fields, not vars(): a compiled SimOrder has no __dict__
        return {**{f.name: getattr(so, f.name) for f in dataclasses.fields(so)}, **vars(meta)}

    # ------------------------------------------------------------------ market

    def step(self) -> list[wire.Tick]:
        """Advance the market to now; match working orders; return the new quotes.

        When the loop was late (a busy machine, a fast clock) the market also quotes at
        every half minute it skipped, up to ``CATCH_UP_NS`` within one session day: a stall
        must not leave a minute without a bar in ``history``, nor a stop unchecked on it."""
        now_ns = self.clock.now_ns()
        last, self._stepped_ns = self._stepped_ns, now_ns
        out: list[wire.Tick] = []
        stalled = last is not None and HALF_MINUTE_NS < now_ns - last <= CATCH_UP_NS
        if last is not None and stalled and _ist_date(last) == _ist_date(now_ns):
            for t in range(last + HALF_MINUTE_NS, now_ns, HALF_MINUTE_NS):
                out += self.step_to(t)
        return out + self.step_to(now_ns)

    def step_to(self, now_ns: int) -> list[wire.Tick]:
        """Take the market's quotes at ``now_ns``: bars, matching, marks (after settling
        what expired before it, on the last quotes of its expiry day)."""
        self._settle_expired(now_ns)
        self.market.watch(self._watched())
        ticks = self.market.step(now_ns)
        self.history_store.close_due(now_ns)
        self.fresh = set()
        for t in ticks:
            self._take(t)
        return ticks

    def _take(self, t: wire.Tick) -> None:
        """One quote into the books: last, bars, matching, marks."""
        key = (t.exchange, t.symbol)
        self.last[key] = t
        self.fresh.add(key)
        self.history_store.on_tick(t)
        self._on_events(self.broker.on_tick(t))
        self.ledger.mark((t.exchange, t.symbol, "MIS"), t.ltp)
        self.ledger.mark((t.exchange, t.symbol, "NRML"), t.ltp)
        self.ledger.mark((t.exchange, t.symbol, "CNC"), t.ltp)

    def _settle_expired(self, now_ns: int) -> None:
        """Settle every position in a contract whose expiry session has closed by
        ``now_ns``, as the exchange does (``mytrading/domain/settlement.py``): the contract closes
        at its settlement price (an index option at its intrinsic value against the
        index's close, a future at that close), a physically settled one leaves shares
        (CNC) at the final price; working orders in it are cancelled. Each settlement is
        a record in the books (replayed after a restart), not a trade: the trade book
        does not show it, the position book does (the contract flat, the P&L realized)."""
        if self.unsettled:  # a contract waits for its final price: look again
            cutoffs, self.unsettled = self.unsettled, set()
            for c in sorted(cutoffs):
                self._settle_through(c)
        if now_ns < self._settle_check_ns:  # every step (every tick of a local broker)
            return
        cutoff, recheck = settled_through(
            self.refdata.calendar, datetime.fromtimestamp(now_ns / 1e9, IST)
        )
        self._settle_check_ns = int(recheck.timestamp()) * 1_000_000_000
        if self._settled_through is not None and cutoff <= self._settled_through:
            return
        self._settled_through = cutoff
        self._settle_through(cutoff)

    def _settle_through(self, cutoff: date) -> None:
        for ex, sym in [k for k, ids in self.broker.live.items() if ids]:
            if expired(self.refdata, ex, sym, cutoff) is not None:
                for oid in list(self.broker.live[(ex, sym)]):
                    self._on_events(self.broker.cancel_order(oid)[1])
        for (ex, sym, prod), p in list(self.ledger.positions.items()):
            inst = expired(self.refdata, ex, sym, cutoff) if p.qty else None
            if inst is None:
                continue
            final = self._final_price(inst)
            legs = settle_legs(self.refdata, inst, p.qty, prod, final)
            if legs is None:
                self.unsettled.add(cutoff)  # asked again at every step until a price comes
                if sym not in self._said_unsettled:
                    self._said_unsettled.add(sym)
                    log.error(no_final_price(inst), symbol=sym)
                continue
            for leg in legs:
                self._book_settlement(leg, inst)
            log.info("settled at expiry", symbol=sym, product=prod, qty=p.qty, final=final,
                     price=legs[0].price, kind=legs[0].how)  # fmt: skip

    def _final_price(self, inst: Instrument) -> float | None:
        """The final settlement price of ``inst``'s expiry: its underlying's last quote
        on the expiry day (the index's close; a stock's, else its future's), from the
        quotes seen, else the day's last 1-minute bar (after a restart); None if neither
        is there."""
        keys = final_price_places(self.refdata, inst)
        for key in keys:
            t = self.last.get(key)
            if t is not None and _ist_date(t.exch_ns) == inst.expiry:
                return t.ltp
            bars = [
                b
                for b in self.history_store.bars.get(key, ())
                if _ist_date(b.start_ns) == inst.expiry
            ]
            if bars:
                return bars[-1].close
        return None

    def _book_settlement(self, leg: Leg, inst: Instrument) -> None:
        assert inst.expiry is not None
        (ex, sym), prod, qty, price = leg.where, leg.product, leg.signed, leg.price
        at = settlement_time(self.refdata.calendar, inst.expiry)
        row = {
            "action": "BUY" if qty > 0 else "SELL",
            "symbol": sym,
            "exchange": ex,
            "orderid": "",
            "product": prod,
            "quantity": abs(qty),
            "average_price": price,
            "price": price,
            "timestamp": at.strftime("%Y-%m-%d %H:%M:%S"),
            "trade_value": round(abs(qty) * price, 2),
            "tradeid": settlement_id(inst.symbol, prod, inst.expiry) + leg.suffix,
            "strategy": "",
            "settlement": leg.how,
        }
        self.ledger.apply((ex, sym, prod), qty, price)
        self.broker.ledger.apply((ex, sym, prod), qty, price)
        self.trades.append(row)
        if self.books is not None:
            self.books.trade(row)

    def _watched(self) -> set[tuple[str, str]]:
        """The options to quote: what clients subscribed (``subscribed``; until one
        says, the market's strip), every one with a working order (a resting order must
        be matched) and every one held (its position must be marked)."""
        base = self.subscribed if self.subscribed is not None else self.market_strip()
        out = set(base)
        out.update(k for k, ids in self.broker.live.items() if ids)
        out.update((ex, sym) for (ex, sym, _), p in self.ledger.positions.items() if p.qty)
        return out

    def market_strip(self) -> frozenset[tuple[str, str]]:
        return getattr(self.market, "strip", frozenset())

    # ------------------------------------------------------------------ orders

    def place(self, f: dict[str, Any]) -> Reply:
        order = wire.Order(
            order_id=f"sim-{next(self._ids)}",
            intent_id="",
            strategy=f["strategy"],
            exchange=f["exchange"],
            symbol=f["symbol"],
            action=f["action"],
            quantity=f["quantity"],
            pricetype=f["pricetype"],
            product=f["product"],
            price=f["price"],
            trigger_price=f["trigger_price"],
            approved_by="openalgo",
        )
        key = (f["exchange"], f["symbol"])
        if key not in self.fresh and self.market.listed(*key):  # listed, not watched
            t = self.market.quote(*key, self.clock.now_ns())
            if t is not None:
                self._take(t)  # quoted from now on: it will have a working order
        if (key not in self.last and not self._known(order)) or self._expired(order):
            # OpenAlgo's master contract drops a contract after its expiry: not found
            return err(400, f"Symbol '{f['symbol']}' not found for exchange '{f['exchange']}'")
        refusal = self._refusal(order)
        if refusal:
            return err(400, refusal)
        res, events = self.broker.place_order(order)
        if not res.ok:
            return err(res.http_status, res.message)
        self.meta[res.orderid] = OrderMeta(f["strategy"], self.clock.now_ns())
        self._on_events(events)
        return ok(orderid=res.orderid)

    def _expired(self, o: wire.Order) -> bool:
        """A contract whose expiry day has passed (its settlement is booked, its quote
        stays in ``last``): no longer listed, as at a real broker."""
        try:
            expiry = self.refdata.instrument(o.exchange, o.symbol).expiry
        except RefDataError:
            return False
        return expiry is not None and expiry < self.clock.now().date()

    def _refusal(self, o: wire.Order) -> str:
        """What OpenAlgo (or the exchange behind it) would refuse before matching."""
        now = self.clock.now()
        if not self.refdata.calendar.is_open(o.exchange, now):
            return f"Market is closed for {o.exchange} at {now:%Y-%m-%d %H:%M:%S} IST"
        band = getattr(self.market, "bands", {}).get(o.symbol)
        if band is not None and o.exchange in ("NSE", "BSE"):
            for name, px in (("price", o.price), ("trigger_price", o.trigger_price)):
                if px and not band[0] <= px <= band[1]:
                    return (
                        f"{name} {px} is outside {o.symbol}'s price band "
                        f"{band[0]:.2f} - {band[1]:.2f} for the day"
                    )
        t = self._quote(o.exchange, o.symbol)
        if t is not None:
            inst = self.refdata.instrument(o.exchange, o.symbol)
            band = self.option_band if inst.kind in ("CE", "PE") else self.price_band
            half = max(t.ltp * band, BAND_MIN_TICKS * inst.tick_size)
            lo, hi = max(t.ltp - half, 0.0), t.ltp + half
            for name, px in (("price", o.price), ("trigger_price", o.trigger_price)):
                if px and not lo <= px <= hi:
                    return f"{name} {px} is outside the price band {lo:.2f} - {hi:.2f}"
        key = (o.exchange, o.symbol, o.product)
        cur = self.ledger.positions[key].qty if key in self.ledger.positions else 0
        why = self._product_refusal(o, cur)
        if why:
            return why
        new = cur + (o.quantity if o.action == "BUY" else -o.quantity)
        if abs(new) > abs(cur) and t is not None:
            price = o.price or t.ltp
            need = self.position_margin(o.exchange, o.symbol, new, price) - self.position_margin(
                o.exchange, o.symbol, cur, price
            )
            available = float(self.funds()[1]["data"]["availablecash"])
            if need > available:
                return f"Insufficient funds: margin required {need:.2f}, available {available:.2f}"
        return ""

    def _product_refusal(self, o: wire.Order, cur: int) -> str:
        """The sandbox's product rules: NRML not on NSE/BSE, CNC only there; a CNC sell
        needs the day's delivery position plus settled holdings."""
        equity = o.exchange in ("NSE", "BSE")
        if o.product == "NRML" and equity:
            return f"NRML is not allowed on {o.exchange}: use CNC or MIS"
        if o.product == "CNC" and not equity:
            return f"CNC is not allowed on {o.exchange}: use NRML or MIS"
        if o.product == "CNC" and o.action == "SELL":
            held = self.holdings.get((o.exchange, o.symbol), (0, 0.0))[0]
            if o.quantity > held + cur:
                return (
                    f"Insufficient holdings: {o.symbol} has {held} in holdings and {cur} "
                    f"bought today for delivery; cannot sell {o.quantity}"
                )
        return ""

    def holdings_book(self) -> Reply:
        """OpenAlgo's ``holdings``: settled delivery shares at today's prices."""
        rows, value, cost = [], 0.0, 0.0
        for (ex, sym), (qty, avg) in sorted(self.holdings.items()):
            t = self._quote(ex, sym)
            ltp = t.ltp if t is not None else avg
            pnl = (ltp - avg) * qty
            value, cost = value + ltp * qty, cost + avg * qty
            rows.append(
                {
                    "symbol": sym,
                    "exchange": ex,
                    "product": "CNC",
                    "quantity": qty,
                    "pnl": round(pnl, 2),
                    "pnlpercent": round(pnl / (avg * qty) * 100, 2),
                }
            )
        return ok(
            data={
                "holdings": rows,
                "statistics": {
                    "totalholdingvalue": round(value, 2),
                    "totalinvvalue": round(cost, 2),
                    "totalprofitandloss": round(value - cost, 2),
                    "totalpnlpercentage": round((value - cost) / cost * 100, 2) if cost else 0.0,
                },
            }
        )

    def _known(self, order: wire.Order) -> bool:
        try:
            self.refdata.instrument(order.exchange, order.symbol)
            return True
        except RefDataError:
            return False

    def smart(self, f: dict[str, Any]) -> Reply:
        """Target-position semantics (section 1): trade to make the net equal position_size."""
        key = (f["exchange"], f["symbol"], f["product"])
        current = (
            self.broker.ledger.positions[key].qty if key in self.broker.ledger.positions else 0
        )
        target = int(f["position_size"])
        if target == current:
            if target == 0 and f["quantity"] == 0:
                return ok(message="No OpenPosition Found. Not placing Exit order.")
            if target != 0 or f["quantity"] == 0:
                return ok(message="Positions Already Matched. No Action needed.")
        if target == 0 and current == 0:
            action, qty = f["action"], f["quantity"]
        elif target == 0:
            action, qty = ("SELL" if current > 0 else "BUY"), abs(current)
        else:
            diff = target - current
            action, qty = ("BUY" if diff > 0 else "SELL"), abs(diff)
        return self.place({**f, "action": action, "quantity": qty})

    def modify(self, f: dict[str, Any]) -> Reply:
        oid = f["orderid"]
        if oid not in self.meta:
            return err(404, f"Order {oid} not found")
        res, events = self.broker.modify_order(
            oid, f["pricetype"], f["price"], f["trigger_price"], f["quantity"]
        )
        if not res.ok:
            return err(res.http_status, res.message)
        self._on_events(events)
        return ok(orderid=oid)

    def cancel(self, oid: str) -> Reply:
        res, events = self.broker.cancel_order(oid)
        if not res.ok:
            return err(res.http_status, res.message)
        self._on_events(events)
        return ok(orderid=oid)

    def cancel_all(self) -> Reply:
        done, failed = [], []
        for oid, so in list(self.broker.orders.items()):
            if so.status in RESTING:
                res, events = self.broker.cancel_order(oid)
                self._on_events(events)
                if res.ok:
                    done.append(oid)
                else:
                    failed.append({"orderid": oid, "message": res.message})
        return ok(
            message=f"Canceled {len(done)} orders. Failed to cancel {len(failed)} orders.",
            canceled_orders=done,
            failed_cancellations=failed,
        )

    def close_all(self) -> Reply:
        closed = failed = 0
        for (ex, sym, prod), p in list(self.broker.ledger.positions.items()):
            if p.qty == 0:
                continue
            code, _ = self.place(
                {
                    "strategy": "CLOSE_ALL",
                    "exchange": ex,
                    "symbol": sym,
                    "product": prod,
                    "action": "SELL" if p.qty > 0 else "BUY",
                    "quantity": abs(p.qty),
                    "pricetype": "MARKET",
                    "price": 0.0,
                    "trigger_price": 0.0,
                }
            )
            closed, failed = (closed + 1, failed) if code == 200 else (closed, failed + 1)
        return ok(
            message="All Open Positions Squared Off",
            closed_positions=closed,
            failed_closures=failed,
        )

    # ------------------------------------------------------------------- events

    def _on_events(self, events: list[OrderEvent | TradeEvent]) -> None:
        """Apply the broker's events to the books (and the file) and push order updates.
        Each change is on disk before the reply or update that reports it leaves."""
        for ev in events:
            so = self.broker.orders[ev.orderid]
            if self.books is not None and isinstance(ev, OrderEvent):
                self.books.order(self._order_record(ev.orderid))
            if isinstance(ev, TradeEvent):
                signed = ev.quantity if so.action == "BUY" else -ev.quantity
                self.ledger.apply((so.exchange, so.symbol, so.product), signed, ev.price)
                self.trades.append(
                    {
                        "action": so.action,
                        "symbol": so.symbol,
                        "exchange": so.exchange,
                        "orderid": ev.orderid,
                        "product": so.product,
                        "quantity": ev.quantity,
                        "average_price": ev.price,
                        "price": ev.price,
                        "timestamp": ts(self.clock.now_ns()),
                        "trade_value": round(ev.quantity * ev.price, 2),
                        "tradeid": ev.tradeid,
                        "strategy": self.meta.get(ev.orderid, OrderMeta("", 0)).strategy,
                    }
                )
                self.first_price.setdefault(ev.orderid, ev.price)
                self.trade_wall_ns[ev.orderid] = hosttime.time_ns()  # for bench/fill_latency.py
                if self.books is not None:
                    self.books.trade(self.trades[-1])
                continue
            row = self._order_row(ev.orderid)
            # The event's own state, not the order's latest: an order that filled at once
            # must still report "open" first, as OpenAlgo's sandbox does.
            row.update(
                order_status=ev.status,
                filled_quantity=ev.filled_quantity,
                average_price=round(ev.average_price, 2),
                pending_quantity=0
                if ev.status in ("complete", "cancelled", "rejected")
                else so.quantity - ev.filled_quantity,
                rejection_reason=ev.rejection_reason,
            )
            update = {
                "type": "order_update",
                "user_id": "sim",
                "mode": "live",
                "broker": "mytrading-sim",
                **{
                    k: row[k]
                    for k in (
                        "orderid",
                        "symbol",
                        "exchange",
                        "action",
                        "quantity",
                        "price",
                        "trigger_price",
                        "pricetype",
                        "product",
                        "order_status",
                        "filled_quantity",
                        "pending_quantity",
                        "average_price",
                        "rejection_reason",
                    )
                },
            }
            for sink in self.listeners:
                sink(update)

    # -------------------------------------------------------------------- books

    def _order_row(self, oid: str) -> dict[str, Any]:
        so = self.broker.orders[oid]
        meta = self.meta.get(oid, OrderMeta("", self.clock.now_ns()))
        return {
            "action": so.action,
            "symbol": so.symbol,
            "exchange": so.exchange,
            "orderid": oid,
            "product": so.product,
            "quantity": so.quantity,
            "price": 0.0 if so.pricetype == "MARKET" else round(so.price, 2),
            "pricetype": so.pricetype,
            "order_status": so.status,
            "trigger_price": round(so.trigger_price, 2),
            "timestamp": ts(meta.placed_ns),
            "average_price": round(so.avg, 2),
            "filled_quantity": so.filled,
            "pending_quantity": so.quantity - so.filled if so.status in RESTING else 0,
            "rejection_reason": meta.rejection_reason,
            "strategy": meta.strategy,
        }

    def _todays(self, oid: str) -> bool:
        """A broker's books show the day: orders placed today, and orders still working."""
        so = self.broker.orders[oid]
        if so.status in RESTING:
            return True
        meta = self.meta.get(oid)
        return meta is None or _ist_date(meta.placed_ns) == _ist_date(self.clock.now_ns())

    def orderbook(self) -> Reply:
        """The day's orders (and those still working), as a broker's book is cleared
        overnight: a simulator that runs for days answers as one that restarted daily."""
        rows = [self._order_row(oid) for oid in self.broker.orders if self._todays(oid)]
        st = [r["order_status"] for r in rows]
        return ok(
            data={
                "orders": rows,
                "statistics": {
                    "total_buy_orders": sum(r["action"] == "BUY" for r in rows),
                    "total_sell_orders": sum(r["action"] == "SELL" for r in rows),
                    "total_completed_orders": st.count("complete"),
                    "total_open_orders": st.count("open"),
                    "total_rejected_orders": st.count("rejected"),
                    "total_trigger_pending_orders": st.count("trigger pending"),
                },
            }
        )

    def orderstatus(self, oid: str) -> Reply:
        """As OpenAlgo answers it against a live broker (``services/orderstatus_service.py``):
        the order-book row without filled or pending quantity or rejection reason, and an
        ``average_price`` that is the *first* matching trade's once the order is complete
        (0.0 before): an order filled in several trades reads at its first trade's price
        here; only the trade book, or a pushed ``order_update``, has the true average."""
        if oid not in self.broker.orders:
            return err(404, f"Order {oid} not found")
        r = self._order_row(oid)
        keys = (
            "action",
            "exchange",
            "order_status",
            "orderid",
            "price",
            "pricetype",
            "product",
            "quantity",
            "symbol",
            "timestamp",
            "trigger_price",
        )
        row: dict[str, Any] = {k: r[k] for k in keys}
        complete = r["order_status"] == "complete"
        row["average_price"] = round(self.first_price.get(oid, 0.0), 2) if complete else 0.0
        return ok(data=row)

    def tradebook(self) -> Reply:
        """The day's trades (a settlement at expiry is not one: the position book has it)."""
        today = ts(self.clock.now_ns())[:10]
        return ok(
            data=[
                t
                for t in self.trades
                if not t.get("settlement") and str(t.get("timestamp", "")).startswith(today)
            ]
        )

    def positionbook(self) -> Reply:
        rows = []
        for (ex, sym, prod), p in sorted(self.ledger.positions.items()):
            rows.append(
                {
                    "symbol": sym,
                    "exchange": ex,
                    "product": prod,
                    "quantity": p.qty,
                    "average_price": round(p.avg, 2),
                    "ltp": p.ltp,
                    "pnl": round(p.realized + p.unrealized(), 2),
                }
            )
        return ok(data=rows)

    def openposition(self, f: dict[str, Any]) -> Reply:
        p = self.ledger.positions.get((f["exchange"], f["symbol"], f["product"]))
        return ok(quantity=p.qty if p else 0)

    def position_margin(self, exchange: str, symbol: str, qty: int, price: float) -> float:
        """Margin for a signed quantity: premium for long options, a share of the notional
        (of the underlying for short options) otherwise, like the sandbox's leverage rules."""
        inst = self.refdata.instrument(exchange, symbol)
        if inst.kind in ("CE", "PE"):
            if qty > 0:
                return qty * price
            return abs(qty) * self.market.spot[inst.underlying] * FUT_MARGIN
        if inst.kind == "INDEX":
            return 0.0
        return abs(qty) * price * FUT_MARGIN

    def used_margin(self) -> float:
        return sum(
            self.position_margin(
                ex, sym, p.qty, p.avg if sym[-2:] in ("CE", "PE") else (p.ltp or p.avg)
            )
            for (ex, sym, _), p in self.ledger.positions.items()
            if p.qty
        )

    def margin(self, positions: list[Any]) -> Reply:
        if not 1 <= len(positions) <= 50:
            return err(400, "{'positions': ['Length must be between 1 and 50.']}")
        total = 0.0
        for i, pos in enumerate(positions):
            try:
                ex, sym = str(pos["exchange"]), str(pos["symbol"])
                qty = int(float(pos["quantity"]))
                side = 1 if str(pos["action"]).upper() == "BUY" else -1
                t = self._quote(ex, sym)
                price = float(pos.get("price") or 0) or (t.ltp if t else 0.0)
                if price <= 0:
                    return err(400, f"No price for {sym} on {ex}")
                total += self.position_margin(ex, sym, side * qty, price)
            except (KeyError, TypeError, ValueError, RefDataError) as exc:
                return err(400, f"{{'positions': {{{i}: ['{exc}']}}}}")
        span = round(total * 0.75, 2)
        return ok(
            data={
                "total_margin_required": round(total, 2),
                "span_margin": span,
                "exposure_margin": round(total - span, 2),
            }
        )

    def funds(self) -> Reply:
        realized = sum(p.realized for p in self.ledger.positions.values())
        unrealized = sum(p.unrealized() for p in self.ledger.positions.values())
        used = self.used_margin()
        # Live OpenAlgo sends these as strings with two decimals (section 1).
        return ok(
            data={
                "availablecash": f"{self.capital + realized - used:.2f}",
                "collateral": "0.00",
                "m2mrealized": f"{realized:.2f}",
                "m2munrealized": f"{unrealized:.2f}",
                "utiliseddebits": f"{used:.2f}",
            }
        )


def _ist_date(ns: int) -> date:
    return datetime.fromtimestamp(ns / 1e9, IST).date()
