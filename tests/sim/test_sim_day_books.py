"""The simulated broker's order and trade books show the day, as a broker's do: a
simulator that runs for days answers as one restarted each morning (found by the soak: a
router restarted on a later day met the first day's orders and the reconciler called
every one of them a mismatch)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mytrading.domain.refdata import IST, RefData
from tests.sim.test_sim_settlement import exchange, order


def test_books_show_the_day_and_what_still_works(refdata: RefData, tmp_path: Path) -> None:
    ex = exchange(refdata, datetime(2026, 11, 20, 10, 0, tzinfo=IST), tmp_path)
    fut = "NIFTY23NOV26FUT"
    code, filled = ex.place(order(fut, "BUY", 65))
    assert code == 200
    below = round(ex.trades[-1]["price"] * 0.9 / 0.05) * 0.05  # inside the band, unfilled
    code, resting = ex.place(order(fut, "BUY", 65, pricetype="LIMIT", price=round(below, 2)))
    assert code == 200
    ids = lambda: {r["orderid"] for r in ex.orderbook()[1]["data"]["orders"]}  # noqa: E731
    assert ids() == {filled["orderid"], resting["orderid"]}
    assert len(ex.tradebook()[1]["data"]) == 1
    ex.clock.ns = int(datetime(2026, 11, 23, 9, 20, tzinfo=IST).timestamp() * 1e9)  # type: ignore[attr-defined]
    ex.step()
    assert ids() == {resting["orderid"]}  # yesterday's filled order is gone, the working one not
    assert ex.tradebook()[1]["data"] == []
    code, today = ex.place(order(fut, "SELL", 65))
    assert code == 200 and ids() == {resting["orderid"], today["orderid"]}
    assert [t["orderid"] for t in ex.tradebook()[1]["data"]] == [today["orderid"]]
