"""Risk reads from the router's beat whether it takes the lead account's orders
(``risk/daemon.py::router_refusing``): the day's shadow puts the decisions live never
placed to those stretches. A beat of another shape is refused by name, so the daemon
logs and counts it and reads the rest of the beat."""

from __future__ import annotations

from typing import Any

import pytest

from mytrading.risk.daemon import router_refusing


def test_an_expired_session_and_a_refused_journal_are_read_with_their_start() -> None:
    expired = {"sessions_expired": {"main": {"state": "expired", "since": 1700.5}}}
    assert router_refusing(expired) == ("the broker session expired", "session_expired", 1700.5)
    full = {"journal_fault": "journal write refused: No space left", "journal_fault_since": 9.25}
    assert router_refusing(full) == (
        "its journal refused writes (journal write refused: No space left)", "journal_fault",
        9.25)  # fmt: skip
    # another account's session is not the lead's; a beat without a cause: taking
    assert router_refusing({"sessions_expired": {"second": {"since": 1.0}}}) == ("", "", 0.0)
    assert router_refusing({}) == ("", "", 0.0)
    # a start not said: refusing from the beat that said it
    assert router_refusing({"sessions_expired": {"main": {}}})[2] == 0.0


@pytest.mark.parametrize(
    "detail",
    [
        {"sessions_expired": ["main"]},  # a list, not accounts
        {"sessions_expired": {"main": {"since": "yesterday"}}},
        {"journal_fault": "x", "journal_fault_since": [1]},
    ],
)
def test_a_beat_of_another_shape_is_refused_by_name(detail: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError, AttributeError)):
        router_refusing(detail)
