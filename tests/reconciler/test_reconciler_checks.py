"""A check the reconciler could not run (the router busy at a start) is a warning and is
tried again; the third in a row for an account is an error, said once per outage."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mytrading.reconciler.daemon import ReconcilerDaemon


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, what: str, **_: Any) -> None:
        self.warnings.append(what)


def test_a_check_that_could_not_run_is_an_error_only_the_third_time_in_a_row() -> None:
    errors: list[str] = []
    rec = SimpleNamespace(
        failures={}, log=_Log(), count_error=lambda what, **_: errors.append(what)
    )
    for _ in range(2):
        ReconcilerDaemon._failed(rec, "main", "position book query failed")  # type: ignore[arg-type]
    assert errors == [] and rec.log.warnings == ["position book query failed"] * 2
    ReconcilerDaemon._failed(rec, "main", "position book query failed")  # type: ignore[arg-type]
    assert errors == ["position book query failed 3 checks in a row"]
    ReconcilerDaemon._failed(rec, "main", "position book query failed")  # type: ignore[arg-type]
    ReconcilerDaemon._failed(rec, "second", "position book query failed")  # type: ignore[arg-type]
    assert len(errors) == 1  # once per outage, and per account
