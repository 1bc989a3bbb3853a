"""The engine's and router's newer OpenAlgo paths against a real simulator process:
warm-up history over HTTP (the preloaded past sessions included) and modify/cancel
through the adapter."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import date, datetime

import pytest

from mytrading.domain.bars import BarBuilder
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.openalgo.broker import OrderEvent
from mytrading.openalgo.history import HistoryError, http_history
from mytrading.openalgo.orders import OpenAlgoAdapter
from tests.simhelpers import FUT, KEY, start_server

pytestmark = pytest.mark.integration  # real processes or servers

DAY = date(2026, 11, 20)  # the simulator starts at 10:00 that day


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = tmp_path_factory.mktemp("sim")
    proc, h = start_server({"MT_LOG_DIR": str(d / "logs"), "MT_STATE_DIR": str(d / "s")})
    yield h
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def ist(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, IST)


def test_history_serves_past_sessions_for_warm_up(host: str, refdata: RefData) -> None:
    builders = {tf: BarBuilder(refdata.calendar, tf) for tf in ("1m", "15m", "D")}
    fetch = http_history(host, KEY, 5.0, builders.__getitem__)
    one = fetch("NFO", FUT, "1m", date(2026, 11, 17), DAY)
    # two full sessions before the start day (18th and 19th) and 09:15-09:59 of the 20th
    assert len(one) >= 2 * 375 + 45
    assert ist(one[0].start_ns) == datetime(2026, 11, 18, 9, 15, tzinfo=IST)
    assert all(b.start_ns % 60_000_000_000 == 0 for b in one)
    starts = [b.start_ns for b in one]
    assert starts == sorted(set(starts))
    quarter = fetch("NFO", FUT, "15m", DAY, DAY)
    assert ist(quarter[0].start_ns).strftime("%H:%M") == "09:15"
    first = [b for b in one if quarter[0].start_ns <= b.start_ns < quarter[1].start_ns]
    assert len(first) == 15 and quarter[0].high == max(b.high for b in first)
    daily = fetch("NFO", FUT, "D", date(2026, 11, 16), DAY)
    # a daily row (00:00 UTC of the date) becomes that day's 09:15 open, like live D bars
    assert [ist(b.start_ns) for b in daily[:2]] == [
        datetime(2026, 11, 18, 9, 15, tzinfo=IST),
        datetime(2026, 11, 19, 9, 15, tzinfo=IST),
    ]
    assert fetch("NFO", FUT, "1m", date(2026, 1, 1), date(2026, 1, 2)) == []  # no_data
    with pytest.raises(HistoryError, match=r"Invalid|interval|7m"):
        fetch("NFO", FUT, "7m", DAY, DAY)
    bad_key = http_history(host, "wrong", 5.0, builders.__getitem__)
    with pytest.raises(HistoryError):
        bad_key("NFO", FUT, "1m", DAY, DAY)
    dead = http_history("http://127.0.0.1:9", KEY, 1.0, builders.__getitem__)
    with pytest.raises(HistoryError):
        dead("NFO", FUT, "1m", DAY, DAY)


def test_adapter_modifies_and_cancels_a_working_order(host: str) -> None:
    ad = OpenAlgoAdapter(KEY, host, 5.0, lambda: time.time())
    order = wire.Order(
        order_id="s.m1",
        intent_id="m1",
        strategy="s",
        exchange="NFO",
        symbol=FUT,
        action="BUY",
        quantity=65,
        pricetype="LIMIT",
        product="MIS",
        price=20_000.0,  # far below the market: rests
        trigger_price=0.0,
        approved_by="risk",
    )
    placed, _ = ad.place_order(order)
    assert placed.ok
    res, events = ad.modify_order(placed.orderid, "LIMIT", 20_100.0, 0.0, 130)
    assert res.ok, res.message
    book = ad.sdk.orderstatus(order_id=placed.orderid, strategy="s")["data"]
    assert float(book["price"]) == 20_100.0 and int(float(book["quantity"])) == 130
    assert ad.tracked[placed.orderid].order.quantity == 130
    res, events = ad.cancel_order(placed.orderid)
    assert res.ok and any(isinstance(e, OrderEvent) and e.status == "cancelled" for e in events)
    res, _ = ad.modify_order(placed.orderid, "LIMIT", 20_200.0, 0.0, 65)
    assert not res.ok and "not working" in res.message


def test_adapter_reads_the_margin_for_one_lot(host: str) -> None:
    ad = OpenAlgoAdapter(KEY, host, 5.0, lambda: time.time())
    from openalgo import api  # the official SDK as the reference client

    ltp = api(api_key=KEY, host=host).quotes(symbol=FUT, exchange="NFO")["data"]["ltp"]
    per = ad.margin_per_lot("NFO", FUT, "SELL", "MIS", 65)
    assert per == pytest.approx(65 * ltp * 0.12, rel=0.01)  # the simulator's 12 % of notional
    assert ad.margin_per_lot("NFO", "NOPE29DEC26FUT", "SELL", "MIS", 65) is None
    assert ad.counts["margin_unanswered"] == 1


def test_a_history_server_that_hangs_costs_only_the_timeout(refdata: RefData) -> None:
    """The engine's loop waits for history: a server that accepts and never answers must
    turn into a HistoryError (warm-up retried, strategy cold) within the timeout."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        fetch = http_history(url, KEY, 0.5, lambda tf: BarBuilder(refdata.calendar, tf))
        t0 = time.monotonic()
        with pytest.raises(HistoryError):
            fetch("NFO", FUT, "1m", DAY, DAY)
        assert time.monotonic() - t0 < 1.5
    finally:
        silent.close()
