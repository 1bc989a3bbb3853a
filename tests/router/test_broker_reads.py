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
