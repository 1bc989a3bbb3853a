"""An engine's restart as the cause of a one-sided decision (``shadow/outages.py``, the
engine's as every daemon's): risk's event of it read back, and the decisions it covers."""

from __future__ import annotations

from datetime import datetime

from mytrading.domain.refdata import IST
from mytrading.shadow.outages import WHAT, Outage, outage_cause, outages


def at(hh: int, mm: int, ss: int = 0) -> int:
    return int(datetime(2026, 11, 24, hh, mm, ss, tzinfo=IST).timestamp() * 1e9)


def row(market: str, kind: str, rule: str, value: float) -> tuple[object, ...]:
    # read_events' row: market time, strategy, kind, rule, threshold, value, action, ...
    return (market, "*", kind, rule, 0.0, value, "restarted", "", "", "")


def test_risks_restart_events_read_back_as_the_engines_silences() -> None:
    rows = [
        row("2026-11-24 12:01:07", "restart", "engine", 45.5),
        row("2026-11-24 11:00:00", "restart", "router", 10.0),  # not the engine's
        row("2026-11-24 10:30:00", "rejected", "engine", 1.0),  # not a restart
        row("2026-11-24 10:00:02", "restart", "engine", 2.0),
    ]
    assert [(o.from_ns, o.to_ns) for o in outages(rows) if o.who == "engine"] == [
        (at(10, 0), at(10, 0, 2)),
        (at(12, 0, 21) + 500_000_000, at(12, 1, 7)),
    ]


def test_a_decision_is_put_to_a_restart_since_the_sides_last_held_alike() -> None:
    restarts = [Outage("engine", at(10, 0), at(10, 0, 2), WHAT["engine"]),
                Outage("engine", at(12, 0, 21), at(12, 1, 7), WHAT["engine"])]  # fmt: skip
    # live decided nothing while the engine was down: the shadow's decision at 12:00:30
    why = outage_cause(restarts, at(11, 0), at(12, 0, 30))
    assert why == (
        "the engine restarted live (silent from 12:00:21, back at 12:01:07): no decision "
        "while it was down, its strategies started afresh after"
    )
    # after it came back, until the sides hold alike again
    assert "back at 12:01:07" in outage_cause(restarts, at(11, 0), at(12, 30))
    # the sides held alike after it: not its doing
    assert outage_cause(restarts, at(12, 5), at(12, 30)) == ""
    # before the engine went silent: not its doing
    assert outage_cause(restarts, at(11, 0), at(12, 0, 20)) == ""
    # the latest of two in the window is named
    assert "back at 12:01:07" in outage_cause(restarts, 0, at(13, 0))
    assert "back at 10:00:02" in outage_cause(restarts, 0, at(11, 0))
