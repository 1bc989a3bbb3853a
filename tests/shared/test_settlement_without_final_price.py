"""A position held through its expiry when the final settlement price is unknown is handled
one way in all three places that settle (``settlement.settle_legs``): nothing is settled
at a guess, it is said (the same words) and alerted, the position stays held, and it
settles as soon as a price of the expiry day is known."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import structlog

from mytrading.backtest.data import Batch, GeneratedBars
from mytrading.backtest.loop import Backtest, Spec
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import IST, RefData
from mytrading.domain.settlement import no_final_price
from mytrading.risk.config import risk_files
from mytrading.router.books import BookKey
from mytrading.router.expiry import ExpirySettler
from mytrading.settings import PROJECT_ROOT
from tests.backtest.test_expiry_settlement import START, HoldToExpiry
from tests.router.test_expiry import tick
from tests.sim.test_sim_settlement import EXPIRY, exchange, order, positions

CALL = "NIFTY23NOV2624000CE"


def test_the_router_settles_nothing_and_says_so_then_settles_with_a_price(
    refdata: RefData,
) -> None:
    ex = ExpirySettler(refdata, lambda e, s: None)
    ledger: Ledger[BookKey] = Ledger()
    ledger.apply(("s", "NFO", CALL, "NRML", "main"), 65, 100.0)
    ex.held("NFO", CALL)
    after = datetime(2026, 11, 25, 9, 20, tzinfo=IST)
    assert ex.due(ledger, after) == []
    assert ex.missing == {CALL: no_final_price(refdata.instrument("NFO", CALL))}
    # a price of the expiry day comes (a tick recorded before the router went down)
    ex.on_tick(tick("NSE_INDEX", "NIFTY", 24_150.0, datetime(2026, 11, 23, 15, 29, tzinfo=IST)))
    (fill,) = ex.due(ledger, after)
    assert (fill.price, fill.action, fill.settlement) == (150.0, "SELL", "cash")
    assert ex.missing == {}


class IndexHole(GeneratedBars):
    """Generated history whose index has no bars on one day (a download with a hole)."""

    hole = EXPIRY

    def batches(self, exchange: str, symbol: str, start: date, end: date) -> Iterator[Batch]:
        for b in super().batches(exchange, symbol, start, end):
            if (exchange, symbol) != ("NSE_INDEX", "NIFTY"):
                yield b
                continue
            days = np.array(
                [datetime.fromtimestamp(t / 1e9, IST).date() for t in b.start_ns.tolist()]
            )
            keep = days != self.hole
            yield Batch(*(getattr(b, f.name)[keep] for f in dataclasses.fields(Batch)))


def test_the_backtest_holds_the_position_and_notes_it(refdata: RefData) -> None:
    src = IndexHole(refdata, 5, origin=START - timedelta(days=60))
    first = next(iter(src.batches("NSE_INDEX", "NIFTY", START, START)))
    atm = round(float(first.close[0]) / 50) * 50
    call = f"NIFTY23NOV26{atm - 400}CE"
    HoldToExpiry.legs = [("NFO", call, "BUY", 65)]
    spec = Spec([(HoldToExpiry, {})], START, EXPIRY + timedelta(days=2), capital=50_000_000.0)
    bt = Backtest(spec, refdata, risk_files(PROJECT_ROOT / "config", {"expiry_close": ""}), src)
    bt.run()
    assert not [f for f in bt.results.fills if "settle" in f["order_id"]]
    assert no_final_price(refdata.instrument("NFO", call)) in bt.notes
    held = {p["symbol"]: p["quantity"] for p in bt.results.open_positions()}
    assert held == {call: 65}


def test_the_simulated_broker_waits_for_a_price_then_settles(
    refdata: RefData, tmp_path: Path
) -> None:
    ex = exchange(refdata, datetime(2026, 11, 23, 15, 0, tzinfo=IST), tmp_path)
    atm = round(ex.market.spot["NIFTY"] / 50) * 50
    call = f"NIFTY23NOV26{atm - 200}CE"
    code, body = ex.place(order(call, "BUY", 65))
    assert code == 200, body
    # the expiry day's prices of the index are lost (no quote, no bar), then the day closes
    key = ("NSE_INDEX", "NIFTY")
    index_tick = ex.last.pop(key)
    ex.history_store.bars.pop(key, None)
    ex.market.spot.pop("NIFTY", None)  # and the market quotes it no more that day
    with structlog.testing.capture_logs() as said:
        ex.clock.ns = int(datetime(2026, 11, 23, 15, 45, tzinfo=IST).timestamp() * 1e9)  # type: ignore[attr-defined]
        ex._settle_expired(ex.clock.ns)  # type: ignore[attr-defined]
        ex._settle_expired(ex.clock.ns + 10**9)  # type: ignore[attr-defined]
    assert positions(ex)[(call, "NRML")]["quantity"] == 65  # held, not settled at a guess
    words = [e for e in said if e["log_level"] == "error"]
    assert [e["event"] for e in words] == [no_final_price(refdata.instrument("NFO", call))]
    # the day's last index quote is found (a restart reading its books): settled at once
    ex.last[key] = index_tick
    ex._settle_expired(ex.clock.ns + 2 * 10**9)  # type: ignore[attr-defined]
    row = positions(ex)[(call, "NRML")]
    assert row["quantity"] == 0
    settled = [t for t in ex.trades if t.get("settlement")]
    assert [t["tradeid"] for t in settled] == [f"settle:main::{call}:NRML:2026-11-23"]
    assert settled[0]["price"] == round(max(index_tick.ltp - (atm - 200), 0.0), 2)
    assert settled[0]["timestamp"] == "2026-11-23 15:30:00"  # the sessions file's close
