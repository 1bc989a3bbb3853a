"""The simulator server remembers its account like a real broker: across a restart (even
``kill -9``) the day's orders, trades, positions and funds are as they were; on a later
simulated day the books roll overnight; ``main.py sim reset`` starts a fresh account."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.procs import run_cli
from tests.simhelpers import FUT, KEY, post, start_server

pytestmark = pytest.mark.integration  # real processes or servers

CE = "NIFTY23NOV2624500CE"


def _place(host: str, **f: Any) -> str:
    body = {
        "apikey": KEY,
        "strategy": "books",
        "exchange": "NFO",
        "product": "NRML",
        "price": "0",
        "trigger_price": "0",
        **f,
    }
    code, reply = post(host, "placeorder", body)
    assert code == 200 and reply["status"] == "success", reply
    return reply["orderid"]


def _books(host: str) -> dict[str, Any]:
    """What the broker shows: each book, in the fields that must survive a restart."""
    key = {"apikey": KEY}
    orders = post(host, "orderbook", key)[1]["data"]["orders"]
    trades = post(host, "tradebook", key)[1]["data"]
    positions = post(host, "positionbook", key)[1]["data"]
    funds = post(host, "funds", key)[1]["data"]
    return {
        "orders": {
            o["orderid"]: (o["order_status"], o["quantity"], o["filled_quantity"], o["price"])
            for o in orders
        },
        "trades": [(t["tradeid"], t["orderid"], t["quantity"], t["price"]) for t in trades],
        "positions": {p["symbol"]: (p["quantity"], p["average_price"]) for p in positions},
        "realized": float(funds["m2mrealized"]),
        "funds": funds,
    }


def _server(d: Path, start: str = "2026-11-20T10:00") -> tuple[Any, str]:
    return start_server(
        {"MT_LOG_DIR": str(d / "logs"), "MT_STATE_DIR": str(d / "state")}, MT_SIM_START=start
    )


def test_the_simulator_keeps_its_books_across_restarts_and_rolls_them_overnight(
    tmp_path: Path,
) -> None:
    proc, host = _server(tmp_path)
    try:
        # A round trip with a realized P&L, an open position, a resting limit, a stop.
        _place(host, symbol=FUT, action="BUY", quantity="130", pricetype="MARKET")
        _place(host, symbol=FUT, action="SELL", quantity="65", pricetype="MARKET")
        _place(host, symbol=CE, action="BUY", quantity="65", pricetype="MARKET")
        resting = _place(
            host, symbol=FUT, action="BUY", quantity="65", pricetype="LIMIT", price="20000"
        )
        stop = _place(
            host, symbol=FUT, action="SELL", quantity="65", pricetype="SL-M", trigger_price="20000"
        )
        before = _books(host)
        assert before["orders"][resting][0] == "open"
        assert before["orders"][stop][0] == "trigger pending"
        assert before["positions"][FUT][0] == 65 and before["positions"][CE][0] == 65
        assert len(before["trades"]) >= 3 and before["realized"] != 0.0
    finally:
        proc.send_signal(signal.SIGKILL)  # the harshest stop: nothing written at exit
        proc.wait(timeout=10)

    proc, host = _server(tmp_path)
    try:
        after = _books(host)
        for k in ("orders", "trades", "positions", "realized"):
            assert after[k] == before[k], k
        # Cash moves only with the marks of the open future; the margin model is the same.
        assert abs(
            float(after["funds"]["availablecash"]) - float(before["funds"]["availablecash"])
        ) < 0.01 * float(before["funds"]["availablecash"])
        # The restored book is live: the resting order cancels, new ids follow the old.
        code, reply = post(
            host, "cancelorder", {"apikey": KEY, "strategy": "books", "orderid": resting}
        )
        assert code == 200 and reply["status"] == "success", reply
        newer = _place(host, symbol=CE, action="SELL", quantity="65", pricetype="MARKET")
        assert int(newer[-8:]) > max(int(o[-8:]) for o in before["orders"])
        day_end = _books(host)
        assert day_end["positions"][CE][0] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)

    # The next trading day (Friday 20th -> Monday 23rd): a broker's overnight roll.
    proc, host = _server(tmp_path, start="2026-11-23T10:00")
    try:
        monday = _books(host)
        assert monday["trades"] == []
        assert set(monday["orders"]) == {stop}  # only the working order carried over
        assert monday["positions"][FUT] == day_end["positions"][FUT]
        assert CE not in monday["positions"]  # flat: nothing to carry
        assert monday["realized"] == 0.0  # Friday's realized P&L settled into the cash
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_sim_reset_starts_a_fresh_account_and_is_refused_while_the_server_runs(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "MT_LOG_DIR": str(tmp_path / "logs"),
        "MT_STATE_DIR": str(tmp_path / "state"),
        "MT_RUN_DIR": f"/tmp/mt-{os.getpid()}-{tmp_path.name[-14:]}",
        "MT_BROKER": "openalgo",
    }
    proc, host = _server(tmp_path)
    try:
        _place(host, symbol=FUT, action="BUY", quantity="65", pricetype="MARKET")
        r = run_cli("sim", "reset", env=env)
        assert r.returncode == 1 and f"simserver pid {proc.pid}" in r.stderr, r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    # the old account's kill switch, as a demo's first day left it (issue 38): a fresh
    # account starts ACTIVE
    venue_dir = tmp_path / "state" / "venues" / "paper-sim-0123abcd"
    venue_dir.mkdir(parents=True)
    (venue_dir / "risk_state.json").write_text('{"stack": "halted", "strategies": {}}')
    r = run_cli("sim", "reset", env=env)
    assert r.returncode == 0 and "removed" in r.stdout, r.stdout + r.stderr
    assert not (venue_dir / "risk_state.json").exists()
    proc, host = _server(tmp_path)
    try:
        fresh = _books(host)
        assert fresh["orders"] == {} and fresh["trades"] == [] and fresh["positions"] == {}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_an_unreadable_books_file_is_set_aside_not_overwritten(tmp_path: Path) -> None:
    from mytrading.sim.books import BookStore

    store = BookStore(tmp_path)
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b"not json at all\n")
    assert store.read() is None
    assert store.set_aside is not None and store.set_aside.read_bytes() == b"not json at all\n"
    assert not store.path.exists()
    # A torn last line (a crash mid-write) costs that line only.
    store.path.write_bytes(
        b'{"k":"day","day":"2026-11-20","capital":1.0,"order_seq":3,"trade_seq":2}\n{"k":"tr'
    )
    books = BookStore(tmp_path)
    got = books.read()
    assert got is not None and got.day == "2026-11-20" and books.torn_lines == 1


def test_a_failing_books_write_is_counted_and_the_exchange_goes_on(
    tmp_path: Path, refdata: Any
) -> None:
    """A full disk (here: the file closed under the store) must not break order handling:
    the change is logged and counted, the books in memory stay right."""
    from datetime import datetime

    from mytrading.domain.clock import MarketClock
    from mytrading.domain.refdata import IST
    from mytrading.sim.books import BookStore
    from mytrading.sim.exchange import SimExchange
    from mytrading.sim.market import SimMarket

    start = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
    clock = MarketClock(0, int(start.timestamp() * 1e9), 0.0)
    ex = SimExchange(refdata, clock, SimMarket(refdata, ["NIFTY"], start.date(), 5, 42))
    store = BookStore(tmp_path)
    ex.attach_books(store)
    ex.step()
    store._fh.close()  # every later write fails
    code, reply = ex.place(
        {
            "strategy": "s",
            "exchange": "NFO",
            "symbol": FUT,
            "action": "BUY",
            "quantity": 65,
            "pricetype": "MARKET",
            "product": "NRML",
            "price": 0.0,
            "trigger_price": 0.0,
        }
    )
    assert code == 200, reply
    assert store.write_errors >= 2  # the order's rows and its trade
    assert (
        ex.openposition({"exchange": "NFO", "symbol": FUT, "product": "NRML"})[1]["quantity"] == 65
    )
