"""The router's broker reads that fail: warnings while a broker started with the stack may
still be starting (until it answers, for the router's first seconds), then one error per
outage (``router/broker_reads.py``)."""

from __future__ import annotations

from typing import Any

import structlog

from mytrading.domain.outages import START_GRACE_S
from mytrading.router.broker_reads import BrokerReads
from mytrading.settings import load_settings


class Ports:
    """What ``read_failed`` reaches of the router's shell: its log and its error count."""

    def __init__(self) -> None:
        self.log = structlog.get_logger("router-test")
        self.errors: list[tuple[str, dict[str, Any]]] = []

    def count_error(self, event: str, **fields: Any) -> None:
        self.errors.append((event, fields))


def reads(ports: Ports, up_s: float) -> BrokerReads:
    r = BrokerReads({}, None, load_settings(), None, ports)  # type: ignore[arg-type]
    r.started -= up_s  # the router has been up this long
    return r


def test_failed_reads_while_the_stack_starts_are_warnings_then_one_error_an_outage() -> None:
    down = ConnectionError("funds: Failed to connect to the server.")
    ports = Ports()
    r = reads(ports, 0.0)
    for _ in range(5):  # the broker starting with the stack: no error, not away
        r.read_failed("funds", "main", down)
    assert ports.errors == [] and r.away == {}
    r.started -= START_GRACE_S  # still failing once the grace is over
    r.read_failed("funds", "main", down)
    assert [e for e, _ in ports.errors] == ["funds unavailable three times in a row"]
    assert "main" in r.away
    for _ in range(3):  # the same outage: said once
        r.read_failed("funds", "main", down)
    assert len(ports.errors) == 1

    r.read_ok("funds", "main")  # a good read, then
    for _ in range(2):  # a new outage: two failures are warnings,
        r.read_failed("funds", "main", down)
    assert len(ports.errors) == 1
    r.read_failed("funds", "main", down)  # the third is its error
    assert len(ports.errors) == 2
    r.read_failed("positions", "main", down)  # each read and account its own count
    assert len(ports.errors) == 2


def test_a_broker_down_after_the_start_is_an_error_at_the_third_read() -> None:
    ports = Ports()
    r = reads(ports, START_GRACE_S + 1)
    down = ConnectionError("positions: refused")
    r.read_failed("positions", "second", down)
    r.read_failed("positions", "second", down)
    assert ports.errors == []
    r.read_failed("positions", "second", down)
    assert ports.errors == [
        ("positions unavailable three times in a row", {"account": "second", "reason": str(down)})
    ]
    assert r.away == {}  # away is the funds read's verdict


def test_a_broker_that_answered_once_is_not_starting_any_more() -> None:
    """The grace is for a broker not yet up: one that answered and then fails three times
    is an outage at once, however young the router (a fault in its first seconds)."""
    ports = Ports()
    r = reads(ports, 0.0)
    down = ConnectionError("positions: 500")
    r.read_ok("funds", "main")
    for _ in range(3):
        r.read_failed("positions", "main", down)
    assert [e for e, _ in ports.errors] == ["positions unavailable three times in a row"]
    for _ in range(3):  # another account's broker, never answered: still starting
        r.read_failed("funds", "second", down)
    assert len(ports.errors) == 1 and r.away == {}


def test_an_order_book_read_a_few_ms_late_in_its_tick_is_due_again_at_the_next_one(
    monkeypatch: Any,
) -> None:
    """The simulator's seed 900: the poll timer fires every 2 s, and a read that started
    8 ms into its tick (calls before it) was 1.992 s old at the next tick, "not yet due",
    and waited a whole period more; an order that never reached the broker was still
    unknown at the day's end. A read due within a tenth of its period is made."""
    from types import SimpleNamespace

    from mytrading import hosttime

    now = [1000.0]
    monkeypatch.setattr(hosttime, "monotonic", lambda: now[0])
    lane = SimpleNamespace(
        updates=SimpleNamespace(pushing=True),
        broker=SimpleNamespace(unresolved=lambda: True),  # an order is unknown: every 2 s
        session=SimpleNamespace(expired=False),
        inflight=None,
        last_poll=0.0,
    )
    r = BrokerReads({"main": lane}, None, load_settings(), None, Ports())  # type: ignore[dict-item, arg-type]
    polled: list[float] = []

    def poll(_: Any) -> None:
        lane.last_poll = now[0]
        polled.append(now[0])

    monkeypatch.setattr(r, "poll", poll)
    for tick, late in enumerate((0.008, 0.0, 0.008, 0.0)):  # the timer's ticks: a read
        now[0] = 1000.0 + 2.0 * tick + late  # 8 ms into its tick, the next on time
        r.maybe_poll()
    assert len(polled) == 4, polled
    now[0] += 1.0  # half a period on: not due
    r.maybe_poll()
    assert len(polled) == 4
