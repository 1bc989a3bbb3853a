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


class Counting(Ports):
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []

    def count_error(self, event: str, **fields: Any) -> None:
        self.errors.append((event, fields))


def test_a_position_an_unknown_order_may_have_closed_is_confirmed() -> None:
    """The simulator's seed 468: the router died with a SELL of 65 at the broker (taken,
    never heard); the journal holds 65 long, the broker's book is flat. The unknown sell
    explains the difference: confirmed, so a restarted risk books the position's fills
    (and the sell's when it is found). Without such an order, or beyond what it could
    move, the position stays unconfirmed."""
    from types import SimpleNamespace

    from mytrading.orders.state import OrderState

    key = ("main", "NFO", "NIFTY28JUL26FUT", "MIS")

    class FlatBroker:
        def positionbook(self) -> list[wire.BrokerPosition]:
            return []

    def confirm(unknown_sell: int) -> set[tuple[str, str, str, str]]:
        orders = {}
        if unknown_sell:
            o = SimpleNamespace(op="place", account="main", exchange="NFO",
                                symbol="NIFTY28JUL26FUT", product="MIS", action="SELL",
                                quantity=unknown_sell)  # fmt: skip
            orders["tv_nifty.x"] = SimpleNamespace(order=o, state=OrderState.UNKNOWN, filled=0)
        r = Recovery(
            table=SimpleNamespace(orders=orders),  # type: ignore[arg-type]
            books=SimpleNamespace(net_by_account=lambda: {key: 65}),  # type: ignore[arg-type]
            lanes={"main": lane(FlatBroker())},
            poll=lambda lane: None,
            ports=Counting(),  # type: ignore[arg-type]
        )
        return r._confirm_positions()

    assert confirm(65) == set()  # the unknown sell explains the flat book
    assert confirm(0) == {key}  # nothing explains it
    assert confirm(30) == {key}  # a sell of 30 cannot have closed 65


def test_only_the_accounts_unread_at_start_are_read_again_and_said_once() -> None:
    """The simulator's seed 991 follow-up: an account whose book was unread at start is
    read again (``confirm_again``) until it answers, and its positions confirmed then;
    an account read at start is not asked again (a fill the broker shows a moment before
    ours would unconfirm a position mid-day), and the still-unread account's positions
    are alerted once, at start, not at every round."""
    from types import SimpleNamespace

    class Main:
        reads = 0

        def positionbook(self) -> list[wire.BrokerPosition]:
            self.reads += 1
            if self.reads > 1:  # flat now: asked again, the position would be unconfirmed
                return []
            return [wire.BrokerPosition(exchange="NSE", symbol="SBIN", product="MIS",
                                        quantity=10, avg_price=600.0)]  # fmt: skip

    main, second = Main(), FlakyBroker(failures=BOOK_READS + 1)  # a failed round, then read
    ports = Counting()
    held = {("main", "NSE", "SBIN", "MIS"): 10, ("second", "NSE", "SBIN", "MIS"): 10}
    r = Recovery(
        table=SimpleNamespace(orders={}),  # type: ignore[arg-type]
        books=SimpleNamespace(net_by_account=lambda: held),  # type: ignore[arg-type]
        lanes={"main": lane(main), "second": Lane("second", second, Throttle({}, 0.0))},
        poll=lambda lane: None,
        ports=ports,  # type: ignore[arg-type]
    )
    r.unconfirmed = r._confirm_positions()
    assert r.unread == {"second"} and r.unconfirmed == {("second", "NSE", "SBIN", "MIS")}
    assert len(ports.errors) == 1  # the start's alert
    r.confirm_again()  # still unread: no alert again
    assert r.unread == {"second"} and len(ports.errors) == 1
    r.confirm_again()  # read: confirmed
    assert r.unread == set() and r.unconfirmed == set(), r.unconfirmed
    assert main.reads == 1 and len(ports.errors) == 1  # main not asked again


def test_an_account_still_expired_does_not_hold_another_accounts_read() -> None:
    """Two accounts unread at start: the first's session comes back, the second's stays
    expired. The first is read again and confirmed; the second waits for its own session
    (it held every account's re-read while any was expired)."""
    from types import SimpleNamespace

    first, second = FlakyBroker(failures=BOOK_READS), FlakyBroker(failures=BOOK_READS)
    held = {("main", "NSE", "SBIN", "MIS"): 10, ("second", "NSE", "SBIN", "MIS"): 10}
    lanes = {"main": lane(first), "second": Lane("second", second, Throttle({}, 0.0))}
    r = Recovery(
        table=SimpleNamespace(orders={}),  # type: ignore[arg-type]
        books=SimpleNamespace(net_by_account=lambda: held),  # type: ignore[arg-type]
        lanes=lanes,
        poll=lambda lane: None,
        ports=Counting(),  # type: ignore[arg-type]
    )
    r.unconfirmed = r._confirm_positions()
    assert r.unread == {"main", "second"}
    lanes["second"].session.expire("Invalid openalgo apikey")
    r.confirm_again()
    assert r.unread == {"second"} and r.unconfirmed == {("second", "NSE", "SBIN", "MIS")}
    assert second.reads == BOOK_READS  # not asked while its session is expired
