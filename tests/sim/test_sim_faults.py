"""The simulator's bad days on demand (``MT_SIM_FAULTS``): parsed strictly, seeded, and
served by the real server process as a broker behind a bad proxy would serve them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from mytrading.settings import PROJECT_ROOT
from mytrading.sim.server.faults import FaultPlan, parse
from tests.simhelpers import FUT, KEY, control, start_server


def test_the_spec_is_read_strictly() -> None:
    assert parse("") == FaultPlan() and not parse("false").harness
    assert parse("true") == FaultPlan(harness=True)
    p = parse("seed=7, lose_place=0.3,late_place=0.1,late_s=6,clock_offset_s=-60")
    assert (p.harness, p.seed, p.lose_place, p.late_place, p.late_s, p.clock_offset_s) == (
        True, 7, 0.3, 0.1, 6.0, -60.0,
    )  # fmt: skip
    for bad, said in [
        ("lose=0.3", "not key=value with a key among"),
        ("lose_place=lots", "is not a number"),
        ("garble_books=1.5", "is a share"),
        ("lose_place=0.6,refuse_5xx=0.6", "exceed 1"),
        ("late_s=0", "late_s must be"),
    ]:
        with pytest.raises(ValueError, match=said):
            parse(bad)


def test_draws_are_seeded_and_shares_hold() -> None:
    a, b = (
        parse("seed=3,lose_place=0.3,refuse_5xx=0.1"),
        parse("seed=3,lose_place=0.3,refuse_5xx=0.1"),
    )
    seq = [a.draw("placeorder") for _ in range(2000)]
    assert seq == [b.draw("placeorder") for _ in range(2000)]
    assert 500 < seq.count("lose") < 700 and 140 < seq.count("refuse") < 260
    assert {a.draw("orderbook") for _ in range(50)} == {""}  # no garbling asked
    assert {a.draw("funds") for _ in range(50)} == {""}


def test_broker_timestamps_move_by_the_offset() -> None:
    p = parse("clock_offset_s=-60")
    body = {"data": {"orders": [{"timestamp": "2026-11-20 10:00:30", "quantity": 1}]}}
    assert p.shift("orderbook", body)["data"]["orders"][0]["timestamp"] == "2026-11-20 09:59:30"
    assert p.shift("history", {"data": [{"timestamp": 5}]}) == {"data": [{"timestamp": 5}]}


def _post(host: str, ep: str, body: dict) -> tuple[int, str, bytes]:
    req = urllib.request.Request(
        f"{host}/api/v1/{ep}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.headers.get_content_type(), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get_content_type(), e.read()


@pytest.mark.integration
def test_a_bad_day_served_by_the_real_server(tmp_path: Path) -> None:
    proc, host = start_server(
        {"MT_LOG_DIR": str(tmp_path / "logs"), "MT_STATE_DIR": str(tmp_path / "state")},
        MT_SIM_FAULTS="seed=1,lose_place=1.0,garble_books=1.0,clock_offset_s=-60",
    )
    try:
        order = {
            **{"apikey": KEY, "strategy": "f", "symbol": FUT, "exchange": "NFO"},
            **{"action": "BUY", "quantity": "65", "pricetype": "MARKET", "product": "NRML"},
        }
        code, kind, body = _post(host, "placeorder", order)
        assert code == 502 and kind == "text/html" and b"Bad Gateway" in body
        # the order is at the broker all the same; every book read is garbage
        code, kind, body = _post(host, "orderbook", {"apikey": KEY})
        assert code == 200
        assert kind == "text/html" or body.endswith(b'"ord') or b'"data": null' in body
        control(host, "/_sim/counts")  # the test endpoints are open with a spec
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    # the clock: a server whose book reads are whole shows the order a minute early
    proc, host = start_server(
        {"MT_LOG_DIR": str(tmp_path / "logs2"), "MT_STATE_DIR": str(tmp_path / "state2")},
        MT_SIM_FAULTS="clock_offset_s=-60",
    )
    try:
        code, _, _ = _post(host, "placeorder", order)
        assert code == 200
        _, _, raw = _post(host, "orderbook", {"apikey": KEY})
        (row,) = json.loads(raw)["data"]["orders"]
        at = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S")
        assert at.strftime("%H:%M") == "09:59"  # the market clock starts at 10:00 here
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    # a mistake in the spec stops the server at once, with the reason
    bad = subprocess.run(
        [sys.executable, "-m", "mytrading.sim.server"],
        env={**os.environ, "MT_LOG_DIR": str(tmp_path / "l3"), "MT_SIM_FAULTS": "lose=1"},
        capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert bad.returncode == 2 and "MT_SIM_FAULTS: 'lose=1'" in bad.stderr, bad.stderr
