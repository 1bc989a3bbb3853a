"""A check the reconciler could not run (the router busy at a start) is a warning and is
tried again; the third in a row for an account is an error, said once per outage; at the
start, before the account's broker has answered, not until the start's grace is over."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mytrading.domain.outages import START_GRACE_S, Outages
from mytrading.domain.positions import Ledger
from mytrading.messaging import wire
from mytrading.messaging.catchup import FillSequence
from mytrading.reconciler.daemon import FAILED_CHECKS_ERROR, ReconcilerDaemon


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, what: str, **_: Any) -> None:
        self.warnings.append(what)


def _reconciler(errors: list[str], uptime: float, answered: set[str]) -> Any:
    """What ``_failed`` reads of a reconciler ``uptime`` seconds after its start."""
    failures = Outages(in_a_row=FAILED_CHECKS_ERROR)
    failures.answered |= answered
    return SimpleNamespace(
        failures=failures, uptime=lambda: uptime,
        log=_Log(), count_error=lambda what, **_: errors.append(what),
    )  # fmt: skip


def test_a_check_that_could_not_run_is_an_error_only_the_third_time_in_a_row() -> None:
    errors: list[str] = []
    rec = _reconciler(errors, uptime=60.0, answered=set())
    for _ in range(2):
        ReconcilerDaemon._failed(rec, "main", "position book query failed")  # type: ignore[arg-type]
    assert errors == [] and rec.log.warnings == ["position book query failed"] * 2
    ReconcilerDaemon._failed(rec, "main", "position book query failed")  # type: ignore[arg-type]
    assert errors == ["position book query failed 3 checks in a row"]
    ReconcilerDaemon._failed(rec, "main", "position book query failed")  # type: ignore[arg-type]
    ReconcilerDaemon._failed(rec, "second", "position book query failed")  # type: ignore[arg-type]
    assert len(errors) == 1  # once per outage, and per account


def test_a_broker_starting_with_the_stack_is_waited_for_then_said() -> None:
    """The embedded simulator started with the stack on a loaded machine: its first
    answers came 8 s after the reconciler's first check (a full-suite failure). Before
    the account's broker has answered, failed checks in the first START_GRACE_S are
    warnings; past it, the third in a row is the error; one that answered before is said
    on the third at once."""
    errors: list[str] = []
    young = _reconciler(errors, uptime=START_GRACE_S - 1, answered=set())
    for _ in range(5):
        ReconcilerDaemon._failed(young, "main", "position book query failed")  # type: ignore[arg-type]
    assert errors == [] and len(young.log.warnings) == 5
    young.uptime = lambda: START_GRACE_S + 1  # still not answering: a broker down at start
    ReconcilerDaemon._failed(young, "main", "position book query failed")  # type: ignore[arg-type]
    assert errors == ["position book query failed 6 checks in a row"]
    errors.clear()
    answered = _reconciler(errors, uptime=1.0, answered={"main"})
    for _ in range(3):
        ReconcilerDaemon._failed(answered, "main", "position book query failed")  # type: ignore[arg-type]
    assert errors == ["position book query failed 3 checks in a row"]


def _fill(n: int, qty: int = 75) -> wire.Fill:
    return wire.Fill(
        fill_no=n, fill_id=f"T{n}", order_id=f"s.{n}", broker_order_id=f"B{n}",
        strategy="s", exchange="NFO", symbol="NIFTY24DEC26FUT", product="NRML",
        action="BUY", quantity=qty, price=24_000.0, exch_ns=n,
    )  # fmt: skip


def test_a_hole_the_router_did_not_fill_is_asked_again_and_booked_late() -> None:
    """A fill numbered past a hole, while the router does not answer: the later fill is
    booked and the hole stays a hole, asked again at the router's next heartbeat (it was
    jumped over for good: the reconciler's position stayed short of that fill)."""
    kept = {n: _fill(n) for n in (1, 2, 3)}
    answering = [False]

    def fetch(after: int) -> list[wire.Fill] | None:
        return [f for n, f in kept.items() if n > after] if answering[0] else None

    rec = ReconcilerDaemon.__new__(ReconcilerDaemon)
    errors: list[str] = []
    rec.log = _Log()  # type: ignore[assignment]
    rec.count_error = lambda what, **_: errors.append(what)  # type: ignore[method-assign]
    rec.ledger = Ledger()
    rec.filled_by_order = {}
    rec.settled = []
    rec.synced = True
    rec.fill_seq = FillSequence(fetch)
    rec.fill_seq.start_at(0)
    rec._apply(kept[1])
    rec._apply(kept[3])  # 2 is missing, and the router does not answer
    key = ("main", "NFO", "NIFTY24DEC26FUT", "NRML")
    assert rec.ledger.net()[key] == 150 and rec.fill_seq.holes == {2}
    assert errors  # said: a position is short of a fill
    answering[0] = True
    beat = wire.Status(name="router", pid=1, state="running", started_ns=0, uptime_s=1.0,
                       msgs_in=0, msgs_out=0, errors=0, gaps=0, lat_p50_us=0.0,
                       lat_p99_us=0.0, detail={"last_fill_no": 3})  # fmt: skip
    rec.on_peer_status(beat)
    assert rec.ledger.net()[key] == 225 and not rec.fill_seq.holes
    assert rec.filled_by_order[("main", "B2")] == 75
    assert rec._catch_up(3)  # nothing missing now: the check may run
