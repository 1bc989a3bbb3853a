"""Alert bodies of TradingView, Amibroker and ChartInk, and their meaning per mode (the
real module's rules, docs/openalgo.md §6); any body at all gives an alert or
an AlertError, never another exception."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mytrading.webhook.alerts import Alert, AlertError, Instruction, parse, plan
from mytrading.webhook.model import SymbolMap
from tests.fuzz import alert_bodies

FUT = SymbolMap(
    external="NIFTY1!", exchange="NFO", symbol="NIFTY29DEC26FUT", lots=2, product="NRML"
)


def parse_alerts(raw: bytes) -> list[Alert]:
    return parse(raw).alerts


def one(body: dict, mode: str = "LONG") -> Instruction:
    (alert,) = parse(json.dumps(body).encode()).alerts
    return plan(alert, mode, FUT)  # type: ignore[arg-type]


def test_long_buy_opens_and_sell_goes_flat() -> None:
    i = one({"symbol": "NIFTY1!", "action": "buy", "position_size": "0"})  # the mapping's lots
    assert (i.kind, i.action, i.lots, i.opens) == ("order", "BUY", 2, True)
    i = one({"symbol": "NIFTY1!", "action": "BUY", "position_size": "3"})
    assert (i.kind, i.lots) == ("order", 3)
    i = one({"symbol": "NIFTY1!", "action": "BUY", "quantity": "4", "position_size": "4"})
    assert i.lots == 4  # {{strategy.order.contracts}}
    i = one({"symbol": "NIFTY1!", "action": "sell", "position_size": "0"})
    assert (i.kind, i.action, i.lots, i.opens) == ("target", "SELL", 0, False)


def test_short_mirrors_long() -> None:
    i = one({"symbol": "NIFTY1!", "action": "SELL", "position_size": "-1"}, "SHORT")
    assert (i.kind, i.action, i.lots, i.opens) == ("order", "SELL", 1, True)
    i = one({"symbol": "NIFTY1!", "action": "BUY", "position_size": "0"}, "SHORT")
    assert (i.kind, i.lots, i.opens) == ("target", 0, False)


def test_both_sets_the_target_with_the_sign_checks() -> None:
    i = one({"symbol": "NIFTY1!", "action": "BUY", "position_size": "2"}, "BOTH")
    assert (i.kind, i.lots, i.opens) == ("target", 2, True)
    i = one({"symbol": "NIFTY1!", "action": "SELL", "position_size": "-3.0"}, "BOTH")
    assert (i.kind, i.lots) == ("target", -3)
    i = one({"symbol": "NIFTY1!", "action": "SELL", "position_size": 0}, "BOTH")
    assert (i.lots, i.opens) == (0, False)
    for body, why in (
        ({"symbol": "NIFTY1!", "action": "BUY", "position_size": "-1"}, "signs disagree"),
        ({"symbol": "NIFTY1!", "action": "SELL", "position_size": "1"}, "signs disagree"),
        ({"symbol": "NIFTY1!", "action": "BUY"}, "required"),
    ):
        with pytest.raises(AlertError, match=why):
            one(body, "BOTH")


def test_amibroker_bodies() -> None:
    place = {
        "apikey": "k",
        "strategy": "afl",
        "symbol": "NIFTY1!",
        "action": "BUY",
        "exchange": "NFO",
        "pricetype": "MARKET",
        "product": "NRML",
        "quantity": "1",
    }
    (alert,) = parse_alerts(json.dumps(place).encode())
    assert alert.source == "amibroker" and alert.quantity == 1
    assert plan(alert, "LONG", FUT).lots == 1
    smart = {**place, "action": "SELL", "position_size": "0"}
    assert one(smart).kind == "target"


def test_chartink_keywords_and_several_stocks() -> None:
    body = {
        "stocks": "nifty1!,BANK1!",
        "trigger_prices": "1,2",
        "scan_name": "Breakout SHORT scan",
        "triggered_at": "10:00 am",
    }
    alerts = parse_alerts(json.dumps(body).encode())
    assert [a.external for a in alerts] == ["NIFTY1!", "BANK1!"]
    assert {a.action for a in alerts} == {"SHORT"}
    i = plan(alerts[0], "SHORT", FUT)
    assert (i.kind, i.action, i.opens) == ("order", "SELL", True)
    with pytest.raises(AlertError, match="not allowed for a LONG"):
        plan(alerts[0], "LONG", FUT)
    (cover,) = parse_alerts(
        json.dumps({**body, "stocks": "NIFTY1!", "scan_name": "cover shorts"}).encode()
    )
    assert plan(cover, "SHORT", FUT).kind == "target"
    (buy,) = parse_alerts(
        json.dumps({**body, "stocks": "NIFTY1!", "scan_name": "Buy and sell"}).encode()
    )
    assert buy.action == "BUY"  # BUY is looked for first, as the real module does


def test_fields_we_do_not_know_are_ignored_and_named() -> None:
    """As OpenAlgo's webhook: a TradingView template's ``time`` and ``comment`` (or a
    misspelt ``qty``) do not refuse the alert; their names come back for the audit."""
    tv = {"symbol": "NIFTY1!", "action": "buy", "time": "2026-11-20T10:03:00Z"}
    got = parse(json.dumps({**tv, "comment": "entry", "qty": 1, "price": "24500"}).encode())
    assert got.ignored == ("comment", "qty", "time")  # price is a field we know
    assert [(a.external, a.action, a.quantity) for a in got.alerts] == [("NIFTY1!", "BUY", None)]
    ck = {"stocks": "A,B", "scan_name": "BUY", "scanner": "x", "trigger_prices": "1,2"}
    assert parse(json.dumps(ck).encode()).ignored == ("scanner",)
    assert parse(json.dumps(tv).encode()).ignored == ("time",)
    assert parse(b'{"symbol": "X", "action": "SELL"}').ignored == ()
    assert parse(json.dumps({**tv, "z" * 500: 1}).encode()).ignored == ("time", "z" * 40)


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"symbol": "X"}', "action"),
        (b'{"symbol": "X", "action": "HOLD"}', "BUY or SELL"),
        (b'{"symbol": "X", "action": "BUY", "quantity": "1.5"}', "whole number"),
        (b'{"symbol": "X", "action": "BUY", "quantity": "-2"}', "negative"),
        (b'{"symbol": "X", "action": "BUY", "passphrase": 5}', "passphrase"),
        (b'{"stocks": "", "scan_name": "BUY"}', "missing"),
        (b'{"stocks": "A", "scan_name": "momentum"}', "names none"),
    ],
)
def test_bad_bodies_say_why(raw: bytes, why: str) -> None:
    with pytest.raises(AlertError, match=why):
        parse(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alert_bodies(200),
    st.sampled_from(["LONG", "SHORT", "BOTH"]),
)
def test_any_body_is_an_alert_or_a_reason(raw: bytes, mode: str) -> None:
    with contextlib.suppress(AlertError):  # a reason is a right answer too
        alerts = parse(raw).alerts
        for a in alerts:
            i = plan(a, mode, FUT)  # type: ignore[arg-type]
            assert i.kind in ("order", "target") and (i.kind == "target" or i.lots > 0)
