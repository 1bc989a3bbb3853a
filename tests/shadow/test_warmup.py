"""The shadow warms up as live did (``shadow/warmup.py``): the days before the recording
from the history cache, filled from OpenAlgo's ``history`` (the simulator's server over
HTTP, as live's engine asks it) when a warm-up ran short."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from mytrading.backtest.data import DuckBars, EarlierFrom
from mytrading.domain.refdata import IST, load_refdata
from mytrading.settings import load_settings
from mytrading.shadow.warmup import fetch_history, wanted_days, with_history
from mytrading.stores.recording import connect

FUT = ("NFO", "NIFTY23NOV26FUT")


def bars_file(path: Path, rows: list[tuple[str, float]]) -> DuckBars:
    """A file with the recordings' ``bars`` schema holding one 1m bar per (IST time, close)."""
    con = connect(path)
    try:
        for when, close in rows:
            start = pd.Timestamp(datetime.fromisoformat(when).replace(tzinfo=IST))
            con.execute(
                "INSERT INTO bars VALUES ('1m', ?, ?, ?, ?, ?, ?, ?, 75)",
                [*FUT, start, close, close, close, close],
            )
    finally:
        con.close()
    return DuckBars(path, "1m")


def closes(src: object, start: date, end: date) -> list[float]:
    return [float(c) for b in src.batches(*FUT, start, end) for c in b.close]  # type: ignore[attr-defined]


def test_a_recording_reaches_back_into_the_history_cache_only_before_its_first_day(
    tmp_path: Path,
) -> None:
    recording = bars_file(
        tmp_path / "rec.duckdb", [("2026-11-20T09:15", 300.0), ("2026-11-20T09:16", 301.0)]
    )
    history = bars_file(
        tmp_path / "hist.duckdb",
        [
            ("2026-11-18T15:29", 100.0),
            ("2026-11-19T15:29", 200.0),
            ("2026-11-20T09:15", 999.0),  # the recording has this minute: not read from here
        ],
    )
    src = EarlierFrom(recording, history)
    d = date(2026, 11, 17), date(2026, 11, 20)
    assert src.days(*FUT, *d) == [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
    assert closes(src, *d) == [100.0, 200.0, 300.0, 301.0]
    assert closes(src, date(2026, 11, 19), date(2026, 11, 19)) == [200.0]
    # an instrument the recording lacks: history's days, all of them
    assert src.days("NFO", "OTHER", *d) == []
    # a recording that began mid-session: the cache's minutes of that day before it count
    mid = bars_file(tmp_path / "mid.duckdb", [("2026-11-20T09:16", 301.0)])
    assert closes(EarlierFrom(mid, history), *d) == [100.0, 200.0, 999.0, 301.0]
    assert src.tf == "1m"


def test_a_short_warm_up_asks_the_days_its_bars_span() -> None:
    watched = {"sma": {FUT}, "st": {FUT, ("NSE_INDEX", "NIFTY")}}
    # 400 one-minute bars: more than a session (375): 3 days; 50 3-minute bars: 2 days
    wants = wanted_days([("sma", "1m", 0, 400, 0), ("st", "3m", 10, 50, 0)], watched)
    assert wants == {FUT: 3, ("NSE_INDEX", "NIFTY"): 2}
    # a daily warm-up of 200 days is capped at the days a day's copy keeps
    assert wanted_days([("sma", "D", 0, 200, 0)], watched) == {FUT: 10}


@pytest.mark.integration  # a simulator server process
def test_a_short_warm_up_is_filled_from_openalgos_history_and_chained(
    sim_broker: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The simulator's server serves two past sessions (2026-11-18 and -19) and its day
    (2026-11-20) from 09:15 up to its start at 10:00: a warm-up of 400 bars asks the three
    trading days before the day and the day itself, gets the two sessions (375 bars each;
    the 17th is a hole) and the day's first minutes; a recording that began at 10:00
    then reaches back into them, up to its own first bar (a stack started mid-session
    warmed up on the minutes before its start)."""
    _, env = sim_broker
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert not s.stores.history_db.exists()
    refdata = load_refdata(s.config_dir)
    day = date(2026, 11, 20)
    got = fetch_history(s, refdata, day, {FUT: 3})
    assert (got.days, got.errors) == (4, [])
    assert 750 + 45 <= got.bars <= 750 + 46  # 09:15-09:59, and 10:00's if it began
    again = fetch_history(s, refdata, day, {FUT: 3})  # resumable: nothing asked twice
    assert (again.bars, again.days) == (0, 0)
    recording = bars_file(
        tmp_path / "rec.duckdb", [("2026-11-20T10:00", 1.0), ("2026-11-20T10:01", 2.0)]
    )
    src = with_history(s, recording)
    assert isinstance(src, EarlierFrom)
    assert src.days(*FUT, date(2026, 11, 16), day) == [date(2026, 11, 18), date(2026, 11, 19), day]
    got_closes = closes(src, date(2026, 11, 16), day)
    assert len(got_closes) == 750 + 45 + 2 and got_closes[-2:] == [1.0, 2.0]
    starts = [int(t) for b in src.batches(*FUT, date(2026, 11, 16), day) for t in b.start_ns]
    assert starts == sorted(set(starts))  # in time, each minute once
