"""Expiry in the simulated broker, as the exchange settles it: when the expiry day's
session closes, an in-the-money index option is closed at its intrinsic value against the
index's last price of the day, an out-of-the-money one at 0, a future at that price, a
stock call in the money leaves its shares (CNC) at the final price; a working order in an
expired contract is cancelled. The trade book does not show settlements (a broker's does
not), the position book and funds do, and the books file keeps them across a restart."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from mytrading.domain.refdata import IST, RefData
from mytrading.sim.books import BookStore
from mytrading.sim.exchange import SimExchange
from mytrading.sim.market import SimMarket

EXPIRY = date(2026, 11, 23)  # NIFTY's weekly and SBIN's monthly (the 24th is a holiday)


class Clock:
    def __init__(self, when: datetime) -> None:
        self.ns = int(when.timestamp() * 1e9)

    def now_ns(self) -> int:
        return self.ns

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ns / 1e9, IST)


def exchange(refdata: RefData, when: datetime, state: Path) -> SimExchange:
    market = SimMarket(refdata, ["NIFTY", "SBIN"], when.date(), 5, 9, stock_strikes=3)
    ex = SimExchange(refdata, Clock(when), market)  # type: ignore[arg-type]  # settable clock
    ex.attach_books(BookStore(state))
    ex.step()
    return ex


def order(symbol: str, action: str, qty: int, exchange: str = "NFO", **kw: object) -> dict:
    return {
        "strategy": "s", "exchange": exchange, "symbol": symbol, "action": action,
        "quantity": qty, "pricetype": "MARKET", "product": "NRML", "price": 0.0,
        "trigger_price": 0.0, **kw,
    }  # fmt: skip


def positions(ex: SimExchange) -> dict[tuple[str, str], dict]:
    return {(r["symbol"], r["product"]): r for r in ex.positionbook()[1]["data"]}


def test_the_simulated_broker_settles_at_the_expiry_close(refdata: RefData, tmp_path: Path) -> None:
    ex = exchange(refdata, datetime(2026, 11, 23, 15, 0, tzinfo=IST), tmp_path)
    atm = round(ex.market.spot["NIFTY"] / 50) * 50
    satm = round(ex.market.spot["SBIN"] / 10) * 10
    itm, otm, fut = f"NIFTY23NOV26{atm - 200}CE", f"NIFTY23NOV26{atm + 500}CE", "NIFTY23NOV26FUT"
    scall = f"SBIN23NOV26{satm - 20}CE"
    entry = {}
    for sym, action, qty in (
        (itm, "BUY", 65),
        (otm, "SELL", 65),
        (fut, "BUY", 65),
        (scall, "BUY", 750),
    ):
        code, body = ex.place(order(sym, action, qty))
        assert code == 200, body
        entry[sym] = next(t["price"] for t in ex.trades if t["orderid"] == body["orderid"])
    rest = f"NIFTY23NOV26{atm - 300}PE"
    code, body = ex.place(order(rest, "BUY", 65, pricetype="LIMIT", price=0.05))
    assert code == 200, body
    resting = body["orderid"]
    for minute in range(30):  # to 15:29:50, the session's last quotes
        ex.clock.ns += 60 * 10**9 if minute < 29 else 50 * 10**9  # type: ignore[attr-defined]
        ex.step()
    final, sfinal = ex.last[("NSE_INDEX", "NIFTY")].ltp, ex.last[("NSE", "SBIN")].ltp
    capital = ex.capital
    before = {s: p for s, p in positions(ex).items()}
    assert before[(itm, "NRML")]["quantity"] == 65
    ex.clock = Clock(datetime(2026, 11, 25, 9, 16, tzinfo=IST))  # the next session
    ex.step()
    want = {
        itm: max(final - (atm - 200), 0.0),
        otm: max(final - (atm + 500), 0.0),
        fut: final,
        scall: max(sfinal - (satm - 20), 0.0),
    }
    assert want[itm] > 0 and want[otm] == 0 and want[scall] > 0  # the cases meant
    now = positions(ex)
    realized = 0.0
    for sym, price in want.items():
        row = now[(sym, "NRML")]
        assert row["quantity"] == 0, row
        side, qty = (-1 if sym == otm else 1), (750 if sym == scall else 65)
        pnl = side * (round(price, 2) - entry[sym]) * qty
        assert row["pnl"] == pytest.approx(pnl, abs=0.01), (sym, row, pnl)
        realized += pnl
    shares = now[("SBIN", "CNC")]
    assert (shares["quantity"], shares["average_price"]) == (750, round(sfinal, 2))
    # the resting order in the expired put was cancelled; no settlement in the trade book
    assert ex.broker.orders[resting].status == "cancelled"
    assert all(t["orderid"] for t in ex.tradebook()[1]["data"])
    funds = ex.funds()[1]["data"]
    assert float(funds["m2mrealized"]) == pytest.approx(realized, abs=0.05)
    assert float(funds["availablecash"]) == pytest.approx(
        capital + realized - ex.used_margin(), abs=0.05
    )
    # the contracts are delisted, as at a real broker: an order for one is not taken
    # (a strategy that had not heard the settlement sent one, and it filled at 0.10)
    code, body = ex.place(order(itm, "SELL", 65))
    assert code == 400 and body["message"] == f"Symbol '{itm}' not found for exchange 'NFO'"
    assert ex.place(order("NIFTY29DEC26FUT", "BUY", 65))[0] == 200  # a live month is
    # a restart the same morning: the books file replays the settlements
    again = exchange(refdata, datetime(2026, 11, 25, 9, 20, tzinfo=IST), tmp_path)
    after = positions(again)
    assert all(after[(s, "NRML")]["quantity"] == 0 for s in want if (s, "NRML") in after)
    assert again.holdings_book()[1]["data"]["holdings"][0]["quantity"] == 750  # T+1: held
