"""The market-data and reference endpoints of the simulated OpenAlgo: quotes, depth,
symbols, search, expiries, history, option symbols and chains, instruments, intervals
(docs/openalgo.md §2). A mixin of ``SimExchange``: the quotes it keeps and
the market it quotes are the exchange's."""

from __future__ import annotations

from datetime import date
from typing import Any

from mytrading.domain.clock import MarketClock
from mytrading.domain.refdata import RefData, RefDataError
from mytrading.messaging import wire
from mytrading.sim.history import SUPPORTED as HISTORY_SUPPORTED
from mytrading.sim.history import BarStore
from mytrading.sim.market import SimMarket
from mytrading.sim.options import (
    OptionError,
    atm_strike,
    parse_expiry,
    strike_for,
    symbol_for,
    underlying_for,
)
from mytrading.sim.replay import ReplayMarket
from mytrading.sim.replies import Reply, err, ok


class MarketData:
    refdata: RefData
    clock: MarketClock
    market: SimMarket | ReplayMarket
    history_store: BarStore
    last: dict[tuple[str, str], wire.Tick]  # the latest quote of each instrument
    fresh: set[tuple[str, str]]  # the instruments the latest step quoted

    def _quote(self, exchange: str, symbol: str) -> wire.Tick | None:
        """The latest quote; a listed contract nobody watches is priced now."""
        key = (exchange, symbol)
        if key not in self.fresh and self.market.listed(exchange, symbol):
            t = self.market.quote(exchange, symbol, self.clock.now_ns())
            if t is not None:
                return t
        return self.last.get(key)

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
            # as OpenAlgo's broker plugins store it (e.g. broker/zerodha/database/
            # master_contract_db.py): CE / PE, FUT, EQ, INDEX; its option lookups
            # (optionsymbol, the chain) find strikes by CE / PE
            "instrumenttype": inst.kind,
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
        key = (f["exchange"], f["symbol"])
        return ok(
            data=self.history_store.history(
                *key, f["interval"], start, end, self._option_history(*key)
            )
        )

    def _option_history(self, exchange: str, symbol: str) -> list[wire.Bar] | None:
        """An option's 1-minute bars: its own where it was quoted, and for every other
        minute of its underlying's bars (the sessions before the start included) the
        simulated market's price of it then; None for anything else (its own bars)."""
        try:
            inst = self.refdata.instrument(exchange, symbol)
        except RefDataError:
            return None
        if inst.kind not in ("CE", "PE") or not isinstance(self.market, SimMarket):
            return None
        u = self.refdata.underlying(inst.underlying)
        own = list(self.history_store.bars.get((exchange, symbol), ()))
        have = {b.start_ns for b in own}
        index = [
            b
            for b in self.history_store.bars.get((u.spot_exchange, u.name), ())
            if b.start_ns not in have
        ]
        made = self.market.option_bars(inst, index)
        return sorted([*own, *made], key=lambda b: b.start_ns)

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
