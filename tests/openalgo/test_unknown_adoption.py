"""An order whose placement reply was lost is found in the order book whatever the
broker's clock says: candidates are the rows that were not there before the call (and,
with no read before it, rows not older than the call by the broker's clock as learnt
from our acknowledged orders). It is *absent* only after several good reads, never
after garbled ones.

The broker here is a small OpenAlgo speaking the real JSON to the adapter's in-process
hook (the same bytes as over HTTP): its clock is set off ours, and each call can lose
its reply after doing the work.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.openalgo.broker import ABSENT_MIN_S, ABSENT_READS, Outcome
from mytrading.openalgo.orders import OpenAlgoAdapter

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=IST).timestamp()


class Broker:
    """OpenAlgo's order endpoints over a list of rows, on a clock ``offset_s`` off ours."""

    def __init__(self, now: list[float], offset_s: float) -> None:
        self.now = now
        self.offset_s = offset_s
        self.rows: list[dict[str, Any]] = []
        self.lose: list[str] = []  # the next calls' fates: "lose" (done, reply lost), "refuse"
        self.garble = 0  # the next order-book reads answered with garbage
        self.placed = 0

    def stamp(self, at: float) -> str:
        return datetime.fromtimestamp(at + self.offset_s, IST).strftime("%Y-%m-%d %H:%M:%S")

    def add(self, qty: int, at: float, strategy: str = "s", action: str = "BUY") -> str:
        oid = f"B{len(self.rows) + 1}"
        self.rows.append(
            {"orderid": oid, "symbol": "SBIN", "exchange": "NSE", "action": action,
             "quantity": qty, "pricetype": "MARKET", "product": "MIS", "price": 0,
             "trigger_price": 0, "order_status": "complete", "filled_quantity": qty,
             "average_price": 800.0, "timestamp": self.stamp(at), "strategy": strategy}
        )  # fmt: skip
        return oid

    def __call__(self, endpoint: str, body: bytes) -> tuple[int, bytes]:
        req = json.loads(body)
        if endpoint == "placeorder":
            fate = self.lose.pop(0) if self.lose else ""
            if fate == "refuse":
                return 503, b"<html><h1>503 Service Temporarily Unavailable</h1></html>"
            self.placed += 1
            oid = self.add(int(req["quantity"]), self.now[0], req["strategy"], req["action"])
            if fate == "lose":
                return 502, b"<html><h1>502 Bad Gateway</h1></html>"
            return 200, json.dumps({"status": "success", "orderid": oid}).encode()
        if endpoint == "orderbook":
            if self.garble:
                self.garble -= 1
                return 200, b'{"status": "success", "data": null}'
            return 200, json.dumps({"status": "success", "data": {"orders": self.rows}}).encode()
        if endpoint == "tradebook":
            return 200, json.dumps({"status": "success", "data": []}).encode()
        if endpoint == "orderstatus":
            row = next(r for r in self.rows if r["orderid"] == req["orderid"])
            return 200, json.dumps({"status": "success", "data": row}).encode()
        return 404, b'{"status": "error", "message": "no"}'


def order(oid: str, qty: int = 10, strategy: str = "s") -> wire.Order:
    return wire.Order(
        order_id=oid, intent_id=oid, strategy=strategy, exchange="NSE", symbol="SBIN",
        action="BUY", quantity=qty, pricetype="MARKET", product="MIS", price=0.0,
        trigger_price=0.0, approved_by="risk",
    )  # fmt: skip


def make(offset_s: float) -> tuple[OpenAlgoAdapter, Broker, list[float]]:
    now = [T0]
    broker = Broker(now, offset_s)
    return OpenAlgoAdapter("k", "http://unused", 1.0, lambda: now[0], local=broker), broker, now


@pytest.mark.parametrize("offset_s", [-60.0, 60.0, -3600.0, 0.0])
def test_a_lost_reply_is_adopted_whatever_the_brokers_clock(offset_s: float) -> None:
    a, broker, now = make(offset_s)
    # a row of the same shape placed by hand an hour ago, seen in a read before the call
    stranger = broker.add(10, T0 - 3600, strategy="")
    assert a.poll() == ([], []) and a._read_book() is not None  # a read before the call
    now[0] += 30
    broker.lose = ["lose"]
    res, events = a.place_order(order("s.1"))
    assert res.outcome is Outcome.ACCEPTED and res.orderid != stranger
    assert [e.status for e in events if hasattr(e, "status")] == ["complete"]
    assert broker.placed == 1 and not a.unknown


@pytest.mark.parametrize("offset_s", [-60.0, 60.0])
def test_without_a_read_before_the_call_the_brokers_clock_is_learnt(offset_s: float) -> None:
    """At start nothing was read before the call: the rows' times decide, corrected by
    the offset learnt from an acknowledged order (a stranger of the same shape placed
    before our call, by the broker's clock, is not taken)."""
    a, broker, now = make(offset_s)
    res, _ = a.place_order(order("s.ok", qty=5))  # acknowledged: its row teaches the clock
    assert res.ok
    a.book_ids = None  # as after a restart: no read before the next call
    broker.add(10, now[0] - 20, strategy="")  # by hand, 20 s before our call
    now[0] += 1
    a._read_book()  # the acknowledged order's row: the offset is learnt here
    assert a.clock.offset_s is not None and abs(a.clock.offset_s - offset_s) <= 1.0
    a.book_ids = None
    now[0] += 30
    broker.lose = ["lose"]
    res, _ = a.place_order(order("s.2"))
    assert res.outcome is Outcome.ACCEPTED and res.orderid == broker.rows[-1]["orderid"]


def test_orders_of_one_shape_lost_together_take_one_row_each() -> None:
    a, broker, now = make(-60.0)
    a._read_book()
    broker.lose = ["lose", "lose"]
    # the first call's own read already shows it, with nothing else to share it: adopted
    r1, _ = a.place_order(order("s.1"))
    assert r1.ok
    # two unknown at once: the broker's book shows neither until both were sent
    broker.lose = ["refuse", "refuse"]
    ra, _ = a.place_order(order("s.a"))
    rb, _ = a.place_order(order("s.b"))
    assert ra.outcome is rb.outcome is Outcome.UNKNOWN
    broker.add(10, now[0])
    broker.add(10, now[0])  # (as if the proxy's 503 had passed them on after all)
    _, resolved = a.poll()
    got = {o.order_id: bid for o, how, bid in resolved if how == "found"}
    assert set(got) == {"s.a", "s.b"} and len(set(got.values())) == 2
    assert r1.orderid not in got.values()


def test_more_matches_than_orders_stay_unknown_for_a_person() -> None:
    a, broker, now = make(0.0)
    broker.lose = ["refuse"]
    res, _ = a.place_order(order("s.1"))
    assert res.outcome is Outcome.UNKNOWN
    broker.add(10, now[0], strategy="")
    broker.add(10, now[0], strategy="")  # two strangers of its shape after the call
    now[0] += 60
    for _ in range(5):
        _, resolved = a.poll()
        assert resolved == []
    assert "s.1" in a.unknown  # never guessed, never absent


def test_absent_only_after_good_reads_over_time() -> None:
    a, broker, _ = make(0.0)
    a._read_book()
    broker.lose = ["refuse"]  # a 503 from a proxy: nothing reached the broker
    res, _ = a.place_order(order("s.1"))
    assert res.outcome is Outcome.UNKNOWN
    u = a.unknown["s.1"]
    broker.garble = 10
    for _ in range(10):  # garbled reads are no evidence of absence
        assert a.poll() == ([], [])
    assert u.reads == 1  # only the read right after the call
    broker.garble = 0
    for _ in range(ABSENT_READS):
        assert a.poll()[1] == []  # enough reads, but not yet over ABSENT_MIN_S
    u.first_seen -= ABSENT_MIN_S
    _, resolved = a.poll()
    assert [(o.order_id, how) for o, how, _ in resolved] == [("s.1", "absent")]
    assert broker.placed == 0


def test_the_reconcilers_claim_is_taken_if_the_row_fits() -> None:
    a, broker, now = make(0.0)
    before = broker.add(10, now[0] - 5, strategy="")  # there before the call
    a._read_book()
    broker.lose = ["refuse"]
    a.place_order(order("s.1"))
    after = broker.add(10, now[0], strategy="")
    broker.add(10, now[0], strategy="")  # two candidates: the adapter cannot choose
    assert a.poll()[1] == []
    assert not a.claim("s.1", "")
    assert not a.claim("s.nope", after)
    assert a.claim("s.1", before)  # taken as a claim, but the row was there before
    assert a.poll()[1] == []
    assert a.claim("s.1", after)
    _, resolved = a.poll()
    assert [(o.order_id, how, bid) for o, how, bid in resolved] == [("s.1", "found", after)]


def test_a_row_found_for_one_order_is_never_given_to_another() -> None:
    """Two unknown orders of one shape: the first never reached the broker (a 503), the
    second did and its reply was lost. The read after the second's call gives the one row
    to the older order (any assignment among them is the same trade); it is handed over at
    the next poll, and until then no other unknown order may take it (a process test
    found both adopting it: one fill, two orders complete)."""
    a, broker, now = make(0.0)
    a._read_book()
    broker.lose = ["refuse"]
    r1, _ = a.place_order(order("s.1"))
    now[0] += 5
    broker.lose = ["lose"]
    r2, _ = a.place_order(order("s.2"))
    assert r1.outcome is r2.outcome is Outcome.UNKNOWN  # the row went to s.1, for now
    _, resolved = a.poll()
    found = [(o.order_id, bid) for o, how, bid in resolved if how == "found"]
    assert len(found) == 1 and found[0][1] == broker.rows[-1]["orderid"]
    assert "s.2" in a.unknown  # looked for still: absent in time, never the same row
    for _ in range(3):
        _, more = a.poll()
        assert [x for x in more if x[1] == "found"] == []


def test_a_later_days_book_is_no_evidence_of_absence() -> None:
    """A call in flight when a simulated day closed: the next day's book no longer shows
    the old day's orders, so reads of it never make the order absent; it stays unknown,
    for a person (at 1x on a wall clock the night is real, and the 30 s come first)."""
    a, broker, now = make(0.0)
    a._read_book()
    broker.lose = ["lose"]
    res, _ = a.place_order(order("s.1"))
    assert res.ok  # found at once in the same day's book
    broker.lose = ["refuse"]
    res, _ = a.place_order(order("s.2"))
    u = a.unknown["s.2"]
    now[0] += 18 * 3600  # the next morning: a new day's book (the sim shows only its day)
    broker.rows.clear()
    u.first_seen -= ABSENT_MIN_S
    for _ in range(ABSENT_READS + 2):
        assert a.poll()[1] == []
    assert "s.2" in a.unknown and u.reads == 1  # only the read on its own day counted
