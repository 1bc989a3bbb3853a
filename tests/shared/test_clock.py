from __future__ import annotations

from datetime import datetime

import pytest

from mytrading import hosttime
from mytrading.domain.clock import MarketClock, sim_start, trading_sessions
from mytrading.domain.refdata import IST, RefData


def at(clk: MarketClock, wall_s: float, monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(hosttime, "time_ns", lambda: clk.anchor_wall_ns + int(wall_s * 1e9))
    return clk.now()


def test_sim_clock_runs_through_sessions_only(
    refdata: RefData, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2026, 11, 20, 15, 0, tzinfo=IST)  # a Friday, 30 minutes before the close
    sessions = trading_sessions(refdata.calendar, start.date(), 5)
    clk = MarketClock(10**18, int(start.timestamp() * 1e9), 60.0, sessions)
    assert at(clk, 0, monkeypatch) == start
    assert at(clk, 29, monkeypatch) == datetime(2026, 11, 20, 15, 29, tzinfo=IST)
    # 30 market minutes later the session is over: Monday 09:15 (weekend skipped).
    assert at(clk, 30, monkeypatch) == datetime(2026, 11, 23, 9, 15, tzinfo=IST)
    # A full session (375 minutes) later: Tuesday the 24th is a holiday, so Wednesday.
    assert at(clk, 30 + 375, monkeypatch) == datetime(2026, 11, 25, 9, 15, tzinfo=IST)
    assert all(refdata.calendar.is_open("NFO", at(clk, s, monkeypatch)) for s in range(0, 1800, 7))
    # the market time of a wall moment other than now (a peer's "since"): the same rule
    wall = 10**18 + 30 * 10**9  # 30 wall seconds after the anchor: 30 market minutes
    assert clk.market_at(wall) == int(datetime(2026, 11, 23, 9, 15, tzinfo=IST).timestamp() * 1e9)


def test_sim_start_defaults_to_last_trading_day_open(refdata: RefData) -> None:
    from datetime import date

    assert sim_start("", refdata.calendar, date(2026, 11, 22)) == datetime(
        2026, 11, 20, 9, 15, tzinfo=IST
    )
    assert sim_start("2026-11-23", refdata.calendar).hour == 9
    assert sim_start("2026-11-23T10:30", refdata.calendar).tzinfo is not None
