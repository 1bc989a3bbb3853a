"""The router's settlement at expiry (``router/expiry.py``), without processes: what it
watches, when a contract is due, the fills it makes (cash, physical with the delivered
shares), and what it does without a final price (nothing, and it says which)."""

from __future__ import annotations

from datetime import datetime

from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.router.expiry import BookKey, ExpirySettler

CALL, SBIN_CALL = "NIFTY23NOV2624000CE", "SBIN23NOV26900CE"


def tick(exchange: str, symbol: str, ltp: float, when: datetime) -> wire.Tick:
    ns = int(when.timestamp() * 1e9)
    return wire.Tick(
        exchange=exchange, symbol=symbol, ltp=ltp, bid=ltp, ask=ltp, bid_qty=0,
        ask_qty=0, volume=0, exch_ns=ns, ts=ns,
    )  # fmt: skip


def test_held_contracts_settle_once_their_expiry_session_has_closed(refdata: RefData) -> None:
    watched: list[tuple[str, str]] = []
    ex = ExpirySettler(refdata, lambda e, s: watched.append((e, s)))
    ledger: Ledger[BookKey] = Ledger()
    for key, qty, px in (
        (("s", "NFO", CALL, "NRML", "main"), 65, 120.0),
        (("s", "NFO", SBIN_CALL, "NRML", "main"), -750, 8.0),
    ):
        ledger.apply(key, qty, px)
        ex.held(key[1], key[2])
    ex.held("NSE", "SBIN")  # not a derivative: nothing to watch for it
    # each underlying's final price is read where settlement says: the index, the stock,
    # else the stock's future of that expiry
    assert watched == [("NSE_INDEX", "NIFTY"), ("NSE", "SBIN"), ("NFO", "SBIN23NOV26FUT")]
    day = datetime(2026, 11, 23, 15, 29, 50, tzinfo=IST)
    ex.on_tick(tick("NSE_INDEX", "NIFTY", 24_150.0, day))
    ex.on_tick(tick("NSE", "SBIN", 930.0, day))
    ex.on_tick(tick("NSE", "RELIANCE", 1.0, day))  # not watched: not kept
    assert ("NSE", "RELIANCE") not in ex.finals
    assert ex.due(ledger, day) == []  # the session is still open
    fills = ex.due(ledger, datetime(2026, 11, 23, 15, 30, tzinfo=IST))
    got = {(f.symbol, f.action, f.quantity, f.price, f.settlement, f.product) for f in fills}
    assert got == {
        (CALL, "SELL", 65, 150.0, "cash", "NRML"),  # 24,150 - 24,000
        (SBIN_CALL, "BUY", 750, 30.0, "physical", "NRML"),  # the short call assigned ...
        ("SBIN", "SELL", 750, 930.0, "delivery", "CNC"),  # ... delivers the shares
    }
    assert {f.order_id for f in fills} == {
        f"s.settle-{CALL}",
        f"s.settle-{SBIN_CALL}",
        "s.settle-SBIN",
    }
    assert len({f.fill_id for f in fills}) == 3 and all(f.fill_no == 0 for f in fills)
    assert ex.missing == {}


def test_without_a_tick_of_the_expiry_day_nothing_is_settled(refdata: RefData) -> None:
    """A router down through the expiry close has no final price: it settles nothing and
    names the contract (the daemon raises one alert for it)."""
    ex = ExpirySettler(refdata, lambda e, s: None)
    ledger: Ledger[BookKey] = Ledger()
    ledger.apply(("s", "NFO", CALL, "NRML", "main"), -65, 100.0)
    ex.held("NFO", CALL)
    ex.on_tick(tick("NSE_INDEX", "NIFTY", 24_150.0, datetime(2026, 11, 20, 15, 29, tzinfo=IST)))
    assert ex.due(ledger, datetime(2026, 11, 25, 9, 20, tzinfo=IST)) == []
    assert list(ex.missing) == [CALL] and "nothing settled until one is" in ex.missing[CALL]
    assert ex.final_price(refdata.instrument("NFO", CALL)) is None
