"""The simulated exchange and account behind the OpenAlgo-compatible server.

Prices come from the simulated market (``sim/market.py``), matching from the simulated
broker (``sim/matching.py``); this module keeps what OpenAlgo's books show (order
rows, trade rows, positions, funds) and answers each endpoint with OpenAlgo's field
names, lowercase statuses and error texts (openalgo-protocol.md sections 1-3). Each
handler returns ``(http_status, body)``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mytrading import wire
from mytrading.clock import MarketClock
from mytrading.openalgo.broker import OrderEvent, TradeEvent
from mytrading.positions import Ledger
from mytrading.refdata import IST, RefData, RefDataError
from mytrading.sim.books import Books, BookStore
from mytrading.sim.history import SUPPORTED as HISTORY_SUPPORTED
from mytrading.sim.history import BarStore
from mytrading.sim.market import SimMarket
from mytrading.sim.matching import SimBroker, SimOrder
from mytrading.sim.options import (
    OptionError,
    atm_strike,
    parse_expiry,
    strike_for,
    symbol_for,
    underlying_for,
)
from mytrading.sim.replay import ReplayMarket

Reply = tuple[int, dict[str, Any]]
HALF_MINUTE_NS = 30 * 10**9
CATCH_UP_NS = 10 * 60 * 10**9  # the longest stall the market fills in (ten market minutes)
FUT_MARGIN = 0.12  # SPAN + exposure, as a share of notional, for futures and short options


def ok(**body: Any) -> Reply:
    return 200, {"status": "success", **body}


def err(code: int, message: Any) -> Reply:
    return code, {"status": "error", "message": message}


def _ts(ns: int) -> str:
    return _ts_of_second(ns // 1_000_000_000)


@functools.lru_cache(maxsize=1024)
def _ts_of_second(s: int) -> str:
    """Broker timestamps have whole seconds: one ``strftime`` per second, not per row."""
    return datetime.fromtimestamp(s, IST).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class OrderMeta:
    strategy: str
    placed_ns: int
    rejection_reason: str = ""


class SimExchange:
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
        self.ledger = Ledger()  # (exchange, symbol, product): realized and unrealized P&L
        self.last: dict[tuple[str, str], wire.Tick] = {}
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # order_update sinks
        self._ids = itertools.count(1)
        self.history_store = BarStore(refdata.calendar)
        self._stepped_ns: int | None = None
        self.books: BookStore | None = None

    # ------------------------------------------------------------------ the books on disk

    def attach_books(self, store: BookStore) -> Books:
        """Take up the account's books from ``store`` (the same simulated day: as they
        were; an earlier day: rolled overnight), then write every change to it."""
        today = self.clock.now().date().isoformat()
        books = store.read() or Books(today, self.capital)
        if books.day != today:
            books = _rolled(books, today)
        books.order_seq, books.trade_seq = _counters(books)
        self._restore(books)
        store.rewrite(books)  # compacted: one line per order
        self.books = store
        return books

    def _restore(self, b: Books) -> None:
        self.capital = b.capital
        _replay(b, self.ledger, self.broker.ledger)
        self.trades.extend(b.trades)
        fields = {f.name for f in dataclasses.fields(SimOrder)}
        for oid, row in b.orders.items():
            so = SimOrder(**{k: v for k, v in row.items() if k in fields})
            self.broker.orders[oid] = so
            self.meta[oid] = OrderMeta(row["strategy"], row["placed_ns"], row["rejection_reason"])
            if so.status in ("open", "trigger pending"):
                self.broker.live.setdefault((so.exchange, so.symbol), []).append(oid)
        self.broker.trades = b.trade_seq
        self.broker._ids = itertools.count(b.order_seq + 1)

    def _order_record(self, oid: str) -> dict[str, Any]:
        """An order's whole state as the file keeps it (flat fields: a shallow copy)."""
        meta = self.meta.get(oid, OrderMeta("", self.clock.now_ns()))
        return {**vars(self.broker.orders[oid]), **vars(meta)}

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
        """Take the market's quotes at ``now_ns``: bars, matching, marks."""
        ticks = self.market.step(now_ns)
        self.history_store.close_due(now_ns)
        for t in ticks:
            self.last[(t.exchange, t.symbol)] = t
            self.history_store.on_tick(t)
            self._on_events(self.broker.on_tick(t))
            self.ledger.mark((t.exchange, t.symbol, "MIS"), t.ltp)
            self.ledger.mark((t.exchange, t.symbol, "NRML"), t.ltp)
        return ticks

    def _quote(self, exchange: str, symbol: str) -> wire.Tick | None:
        return self.last.get((exchange, symbol))

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
        if (f["exchange"], f["symbol"]) not in self.last and not self._known(order):
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

    def _refusal(self, o: wire.Order) -> str:
        """What OpenAlgo (or the exchange behind it) would refuse before matching."""
        now = self.clock.now()
        if not self.refdata.calendar.is_open(o.exchange, now):
            return f"Market is closed for {o.exchange} at {now:%Y-%m-%d %H:%M:%S} IST"
        t = self._quote(o.exchange, o.symbol)
        if t is not None:
            kind = self.refdata.instrument(o.exchange, o.symbol).kind
            band = self.option_band if kind in ("CE", "PE") else self.price_band
            lo, hi = t.ltp * (1 - band), t.ltp * (1 + band)
            for name, px in (("price", o.price), ("trigger_price", o.trigger_price)):
                if px and not lo <= px <= hi:
                    return f"{name} {px} is outside the price band {lo:.2f} - {hi:.2f}"
        key = (o.exchange, o.symbol, o.product)
        cur = self.ledger.positions[key].qty if key in self.ledger.positions else 0
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
            if so.status in ("open", "trigger pending"):
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
                        "timestamp": _ts(self.clock.now_ns()),
                        "trade_value": round(ev.quantity * ev.price, 2),
                        "tradeid": ev.tradeid,
                        "strategy": self.meta.get(ev.orderid, OrderMeta("", 0)).strategy,
                    }
                )
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
            "timestamp": _ts(meta.placed_ns),
            "average_price": round(so.avg, 2),
            "filled_quantity": so.filled,
            "pending_quantity": so.quantity - so.filled
            if so.status in ("open", "trigger pending")
            else 0,
            "rejection_reason": meta.rejection_reason,
            "strategy": meta.strategy,
        }

    def orderbook(self) -> Reply:
        rows = [self._order_row(oid) for oid in self.broker.orders]
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
        if oid not in self.broker.orders:
            return err(404, f"Order {oid} not found")
        r = self._order_row(oid)
        keys = (
            "action",
            "average_price",
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
        return ok(data={k: r[k] for k in keys})

    def tradebook(self) -> Reply:
        return ok(data=list(self.trades))

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

    # -------------------------------------------------------------- market data

    def quotes(self, exchange: str, symbol: str) -> Reply:
        t = self._quote(exchange, symbol)
        if t is None:
            return err(400, f"Symbol '{symbol}' not found for exchange '{exchange}'")
        return ok(
            data={
                "open": t.ltp,
                "high": t.ltp,
                "low": t.ltp,
                "ltp": t.ltp,
                "ask": t.ask,
                "bid": t.bid,
                "prev_close": t.ltp,
                "volume": t.volume,
                "oi": t.oi,
            }
        )

    def depth(self, exchange: str, symbol: str) -> Reply:
        code, body = self.quotes(exchange, symbol)
        if code != 200:
            return code, body
        t = self._quote(exchange, symbol)
        assert t is not None
        tick = self.refdata.instrument(exchange, symbol).tick_size
        bids = [{"price": round(t.bid - i * tick, 2), "quantity": t.bid_qty} for i in range(5)]
        asks = [{"price": round(t.ask + i * tick, 2), "quantity": t.ask_qty} for i in range(5)]
        q = body["data"]
        return ok(
            data={
                **{k: q[k] for k in ("open", "high", "low", "ltp", "prev_close", "volume", "oi")},
                "ltq": 0,
                "totalbuyqty": 5 * t.bid_qty,
                "totalsellqty": 5 * t.ask_qty,
                "asks": asks,
                "bids": bids,
            }
        )

    def symbol_row(self, exchange: str, symbol: str) -> dict[str, Any] | None:
        try:
            inst = self.refdata.instrument(exchange, symbol)
        except RefDataError:
            return None
        return {
            "id": abs(hash((exchange, symbol))) % 10**8,
            "name": inst.underlying,
            "symbol": symbol,
            "brsymbol": symbol,
            "exchange": exchange,
            "brexchange": exchange,
            "instrumenttype": {"INDEX": "INDEX", "FUT": "FUT", "CE": "OPTIDX", "PE": "OPTIDX"}[
                inst.kind
            ],
            "expiry": inst.expiry.strftime("%d-%b-%y").upper() if inst.expiry else "",
            "strike": inst.strike if inst.kind in ("CE", "PE") else -1.0,
            "lotsize": inst.lot_size,
            "tick_size": inst.tick_size,
            "token": symbol,
            "freeze_qty": inst.freeze_qty,
        }

    def symbol(self, exchange: str, symbol: str) -> Reply:
        row = self.symbol_row(exchange, symbol)
        if row is None:
            return err(404, f"Symbol '{symbol}' not found for exchange '{exchange}'")
        return ok(data=row)

    def search(self, query: str, exchange: str | None) -> Reply:
        q = query.upper()
        rows = [
            row
            for si in self.market.instruments
            if q in si.inst.symbol
            and (exchange is None or si.inst.exchange == exchange)
            and (row := self.symbol_row(si.inst.exchange, si.inst.symbol)) is not None
        ]
        return ok(message=f"Found {len(rows)} matching symbols", data=rows)

    def expiry(self, symbol: str, exchange: str, kind: str) -> Reply:
        wanted = "FUT" if kind == "futures" else ("CE", "PE")
        dates = sorted(
            {
                si.inst.expiry
                for si in self.market.instruments
                if si.inst.underlying == symbol
                and si.inst.exchange == exchange
                and si.inst.expiry is not None
                and si.inst.kind in wanted
            }
        )
        if not dates:
            return err(404, f"No expiry dates found for {symbol} on {exchange}")
        return ok(data=[d.strftime("%d-%b-%y").upper() for d in dates])

    def history(self, f: dict[str, Any]) -> Reply:
        if f["interval"] not in HISTORY_SUPPORTED:
            return err(
                400,
                f"Interval '{f['interval']}' is not supported; "
                f"supported: {', '.join(HISTORY_SUPPORTED)}",
            )
        if self.symbol_row(f["exchange"], f["symbol"]) is None:
            return err(400, f"Symbol '{f['symbol']}' not found for exchange '{f['exchange']}'")
        start, end = date.fromisoformat(f["start_date"]), date.fromisoformat(f["end_date"])
        if end < start:
            return err(400, "end_date is before start_date")
        return ok(
            data=self.history_store.history(f["exchange"], f["symbol"], f["interval"], start, end)
        )

    def optionsymbol(self, f: dict[str, Any]) -> Reply:
        try:
            u = underlying_for(self.refdata, f["underlying"], f["exchange"])
            expiry = (
                parse_expiry(f["expiry_date"])
                if f.get("expiry_date")
                else self.refdata.calendar.near_option_expiry(u, self.clock.now().date())
            )
            spot = self.market.spot.get(u.name)
            if spot is None:
                return err(404, f"No quote for underlying {u.name}")
            ltp = round(spot, 2)
            sym = symbol_for(
                u, expiry, strike_for(u, ltp, f["offset"], f["option_type"]), f["option_type"]
            )
        except OptionError as exc:
            return err(400, str(exc))
        inst = self.refdata.instrument(u.fo_exchange, sym)
        return ok(
            symbol=sym,
            exchange=u.fo_exchange,
            lotsize=inst.lot_size,
            tick_size=inst.tick_size,
            freeze_qty=inst.freeze_qty,
            underlying_ltp=ltp,
        )

    def optionchain(self, f: dict[str, Any]) -> Reply:
        try:
            u = underlying_for(self.refdata, f["underlying"], f["exchange"])
            expiry = parse_expiry(f["expiry_date"])
        except OptionError as exc:
            return err(400, str(exc))
        if u.name not in self.market.spot:
            return err(404, f"No quote for underlying {u.name}")
        ltp = round(self.market.spot[u.name], 2)
        atm = atm_strike(u, ltp)
        n = f.get("strike_count") or 10
        chain = []
        for k in range(-n, n + 1):
            strike = atm + k * u.strike_step
            row: dict[str, Any] = {"strike": strike}
            for right in ("CE", "PE"):
                sym = symbol_for(u, expiry, strike, right)
                t = self._quote(u.fo_exchange, sym)
                itm = (strike < atm) if right == "CE" else (strike > atm)
                label = "ATM" if k == 0 else f"{'ITM' if itm else 'OTM'}{abs(k)}"
                row[right.lower()] = {
                    "symbol": sym,
                    "label": label,
                    "ltp": t.ltp if t else 0.0,
                    "bid": t.bid if t else 0.0,
                    "ask": t.ask if t else 0.0,
                    "oi": t.oi if t else 0,
                    "volume": t.volume if t else 0,
                    "lotsize": u.lot_size,
                }
            chain.append(row)
        return ok(
            underlying=u.name,
            underlying_ltp=ltp,
            expiry_date=f["expiry_date"].upper(),
            atm_strike=atm,
            chain=chain,
        )

    def instruments(self, exchange: str | None) -> list[dict[str, Any]]:
        rows = []
        for si in self.market.instruments:
            if exchange and si.inst.exchange != exchange:
                continue
            row = self.symbol_row(si.inst.exchange, si.inst.symbol)
            if row is not None:
                row.pop("id")
                row.pop("freeze_qty")
                rows.append(row)
        return rows

    def intervals(self) -> Reply:
        return ok(
            data={
                "seconds": [],
                "minutes": ["1m", "3m", "5m", "10m", "15m", "30m"],
                "hours": ["1h"],
                "days": ["D"],
                "weeks": [],
                "months": [],
            }
        )


def _counters(b: Books) -> tuple[int, int]:
    """The highest order and trade numbers used so far (ids end in a running number:
    sandbox order ids in 8 digits, trade ids ``T<orderid>-<n>``), so none is reused."""
    orders = [int(oid[-8:]) for oid in b.orders if oid[-8:].isdigit()]
    trades = [int(t["tradeid"].rsplit("-", 1)[1]) for t in b.trades if "-" in t["tradeid"]]
    return max([b.order_seq, *orders]), max([b.trade_seq, *trades])


def _replay(b: Books, *ledgers: Ledger) -> None:
    """The day's positions into each ledger: those carried in, then every trade, with the
    arithmetic the trades had when they happened."""
    for ledger in ledgers:
        for p in b.carried:
            ledger.set_qty((p["exchange"], p["symbol"], p["product"]), p["qty"], p["avg"])
        for t in b.trades:
            signed = t["quantity"] if t["action"] == "BUY" else -t["quantity"]
            ledger.apply((t["exchange"], t["symbol"], t["product"]), signed, t["price"])


def _rolled(b: Books, today: str) -> Books:
    """The books of ``b``'s day as a broker opens them on a later day: working orders and
    open positions carried, the realized P&L settled into the capital, no trades."""
    ledger = Ledger()
    _replay(b, ledger)
    order_seq, trade_seq = _counters(b)
    return Books(
        day=today,
        capital=b.capital + sum(p.realized for p in ledger.positions.values()),
        order_seq=order_seq,
        trade_seq=trade_seq,
        carried=[
            {"exchange": ex, "symbol": sym, "product": prod, "qty": p.qty, "avg": p.avg}
            for (ex, sym, prod), p in ledger.positions.items()  # type: ignore[misc]
            if p.qty
        ],
        orders={
            oid: o for oid, o in b.orders.items() if o["status"] in ("open", "trigger pending")
        },
    )


def _ist_date(ns: int) -> date:
    return datetime.fromtimestamp(ns / 1e9, IST).date()
