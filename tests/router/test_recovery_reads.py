"""The router's start reads each account's position book up to ``BOOK_READS`` times
before it calls the journal's positions there unconfirmed: one failed read (a timeout, a
5xx, a login page) must not leave a held position blind for the day (the simulator's
seed 2), and a broker that never answers must not hold the start forever."""

from __future__ import annotations

from typing import Any

import structlog

from mytrading.messaging import wire
from mytrading.router.lanes import Lane
from mytrading.router.recovery import BOOK_READS, Recovery
from mytrading.router.throttle import Throttle


class FlakyBroker:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.reads = 0

    def positionbook(self) -> list[wire.BrokerPosition]:
        self.reads += 1
        if self.reads <= self.failures:
            raise ConnectionError("read timed out")
        return [
            wire.BrokerPosition(
                exchange="NSE", symbol="SBIN", product="MIS", quantity=10, avg_price=600.0
            )
        ]


class Ports:
    log = structlog.get_logger("test")


def recovery() -> Recovery:
    return Recovery(table=None, books=None, lanes={}, poll=lambda lane: None, ports=Ports())  # type: ignore[arg-type]


def lane(broker: Any) -> Lane:
    return Lane("main", broker, Throttle({}, 0.0))


def test_a_failed_read_is_read_again_and_its_positions_confirmed() -> None:
    broker = FlakyBroker(failures=BOOK_READS - 1)
    book = recovery()._position_book("main", lane(broker))
    assert broker.reads == BOOK_READS
    assert book is not None and [(p.symbol, p.quantity) for p in book] == [("SBIN", 10)]


def test_a_book_never_read_confirms_nothing_after_its_reads() -> None:
    broker = FlakyBroker(failures=BOOK_READS + 5)
    assert recovery()._position_book("main", lane(broker)) is None
    assert broker.reads == BOOK_READS  # not one more: the start goes on
