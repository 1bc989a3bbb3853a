"""Equities at the simulator server, over its REST API as OpenAlgo's sandbox behaves: a
stock and its future quoted and in the master contract; CNC only on NSE/BSE and NRML only
on F&O; a CNC buy settles into the holdings overnight (T+1); a CNC sell needs the day's
delivery position plus holdings, and is refused beyond them; a stock's price band."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.simhelpers import KEY, post, start_server

pytestmark = pytest.mark.integration  # real processes or servers


def order(symbol: str, action: str, qty: int, product: str, exchange: str = "NSE") -> dict:
    return {
        "apikey": KEY,
        "strategy": "t",
        "symbol": symbol,
        "exchange": exchange,
        "action": action,
        "quantity": str(qty),
        "pricetype": "MARKET",
        "product": product,
    }


def position(host: str, symbol: str, product: str) -> int:
    rows = post(host, "positionbook", {"apikey": KEY})[1]["data"]
    return sum(r["quantity"] for r in rows if (r["symbol"], r["product"]) == (symbol, product))


def wait_position(host: str, symbol: str, product: str, qty: int) -> None:
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if position(host, symbol, product) == qty:
            return
        time.sleep(0.1)
    raise AssertionError(f"{symbol} {product} never reached {qty}")


def test_cnc_buy_settles_overnight_and_a_sell_needs_holdings(tmp_env: dict[str, str]) -> None:
    env = {"MT_LOG_DIR": tmp_env["MT_LOG_DIR"], "MT_STATE_DIR": tmp_env["MT_STATE_DIR"]}
    proc, host = start_server(env, MT_SIM_START="2026-11-20T10:00", MT_SIM_STOCKS="*")
    try:
        code, q = post(host, "quotes", {"apikey": KEY, "symbol": "RELIANCE", "exchange": "NSE"})
        assert code == 200 and q["data"]["bid"] < q["data"]["ask"]
        with urllib.request.urlopen(f"{host}/api/v1/instruments?apikey={KEY}&exchange=NSE") as r:
            nse = {row["symbol"]: row for row in json.loads(r.read())["data"]}
        assert nse["RELIANCE"]["instrumenttype"] == "EQ" and nse["RELIANCE"]["lotsize"] == 1
        assert "NIFTYBEES" in nse  # an ETF
        assert post(host, "placeorder", order("RELIANCE", "BUY", 10, "CNC"))[0] == 200
        wait_position(host, "RELIANCE", "CNC", 10)
        code, body = post(host, "placeorder", order("RELIANCE", "SELL", 11, "CNC"))
        assert code == 400 and "Insufficient holdings" in body["message"], body
        assert post(host, "placeorder", order("RELIANCE", "SELL", 4, "CNC"))[0] == 200
        wait_position(host, "RELIANCE", "CNC", 6)  # sold from today's delivery buy
        code, body = post(host, "placeorder", order("RELIANCE", "BUY", 1, "NRML"))
        assert code == 400 and "NRML is not allowed on NSE" in body["message"]
        fut = order("SBIN23NOV26FUT", "BUY", 750, "CNC", exchange="NFO")
        assert "CNC is not allowed on NFO" in post(host, "placeorder", fut)[1]["message"]
        holdings = post(host, "holdings", {"apikey": KEY})[1]["data"]
        assert holdings["holdings"] == []  # T+1: nothing settled yet
        # RELIANCE's band is 20 % (config/stocks.toml) of the day's reference, 1,480
        far = {**order("RELIANCE", "BUY", 1, "MIS"), "pricetype": "LIMIT", "price": "1800"}
        code, body = post(host, "placeorder", far)
        assert code == 400 and "outside RELIANCE's price band 1184.00 - 1776.00" in body["message"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    # the next trading day (a Monday): the 6 shares are holdings, sellable once
    proc, host = start_server(env, MT_SIM_START="2026-11-23T10:00", MT_SIM_STOCKS="*")
    try:
        holdings = post(host, "holdings", {"apikey": KEY})[1]["data"]
        [row] = holdings["holdings"]
        assert (row["symbol"], row["quantity"], row["product"]) == ("RELIANCE", 6, "CNC")
        assert holdings["statistics"]["totalinvvalue"] > 0
        assert position(host, "RELIANCE", "CNC") == 0  # not a carried position
        assert post(host, "placeorder", order("RELIANCE", "SELL", 6, "CNC"))[0] == 200
        wait_position(host, "RELIANCE", "CNC", -6)
        code, body = post(host, "placeorder", order("RELIANCE", "SELL", 1, "CNC"))
        assert code == 400 and "Insufficient holdings" in body["message"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_stock_never_leaves_its_price_band(refdata) -> None:
    from datetime import date

    from mytrading.sim.market import SimMarket

    m = SimMarket(refdata, ["RELIANCE", "SBIN"], date(2026, 11, 20), 0, 1)
    lo, hi = m.bands["RELIANCE"]
    assert (round(lo, 2), round(hi, 2)) == (1184.0, 1776.0)  # 1,480 +- 20 %
    m.step(1_000_000_000)
    m.spot["RELIANCE"] = 5_000.0  # a jump the exchange would halt at the upper band
    m.step(2_000_000_000)
    assert m.spot["RELIANCE"] == hi
