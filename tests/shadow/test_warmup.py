"""The shadow warms up as live did (``shadow/warmup.py``): the days before the recording
from the history cache, filled from OpenAlgo's ``history`` (the simulator's server over
HTTP, as live's engine asks it) when a warm-up ran short."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from mytrading.backtest.data import DuckBars, EarlierFrom, GeneratedBars
from mytrading.backtest.loop import Backtest, Spec
from mytrading.domain.refdata import IST, RefData, load_refdata
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.messaging import wire
from mytrading.risk.config import risk_files
from mytrading.settings import PROJECT_ROOT, load_settings
from mytrading.shadow.day import first_tick, joined_at
from mytrading.shadow.warmup import fetch_history, wanted_days, with_history
from mytrading.stores.recording import Recorder, connect

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


def test_a_recording_reaches_back_into_the_history_cache_up_to_its_first_minute(
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
            # the recording's first minute (the feed joined in it): history's whole copy
            ("2026-11-20T09:15", 999.0),
            ("2026-11-20T09:16", 888.0),  # after it: the recording's, never this
        ],
    )
    src = EarlierFrom(recording, history)
    d = date(2026, 11, 17), date(2026, 11, 20)
    assert src.days(*FUT, *d) == [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
    assert closes(src, *d) == [100.0, 200.0, 999.0, 301.0]
    assert closes(src, date(2026, 11, 19), date(2026, 11, 19)) == [200.0]
    # an instrument the recording lacks: history's days, all of them
    assert src.days("NFO", "OTHER", *d) == []
    # a recording that began later: the cache's minutes of that day before it count
    mid = bars_file(tmp_path / "mid.duckdb", [("2026-11-20T09:17", 302.0)])
    assert closes(EarlierFrom(mid, history), *d) == [100.0, 200.0, 999.0, 888.0, 302.0]
    # history without the recording's first minute: the recording's own
    later = bars_file(
        tmp_path / "later.duckdb", [("2026-11-20T09:20", 5.0), ("2026-11-20T09:21", 6.0)]
    )
    assert closes(EarlierFrom(later, history), *d) == [100.0, 200.0, 999.0, 888.0, 5.0, 6.0]
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
    # 09:15-09:59 from the cache, 10:00 from it too where it has it (the recording's
    # first minute) or else the recording's, then the recording's 10:01
    assert len(got_closes) == 750 + 45 + 2 and got_closes[-1] == 2.0
    from_cache = got.bars == 750 + 46  # the cache has 10:00: its copy, a market price
    assert (got_closes[-2] > 1_000) if from_cache else (got_closes[-2] == 1.0)
    starts = [int(t) for b in src.batches(*FUT, date(2026, 11, 16), day) for t in b.start_ns]
    assert starts == sorted(set(starts))  # in time, each minute once


class Seen(BaseStrategy[StrategyParams]):
    """Keeps every bar it is handed: (warming up, start, close)."""

    name = "seen"
    Params = StrategyParams

    def on_start(self) -> None:
        self.ex, self.sym = self.near_future("NIFTY")
        self.got: list[tuple[bool, int, float]] = []
        self.subscribe_bars(self.ex, self.sym, "1m", warmup=4)

    def on_bar(self, bar: wire.Bar) -> None:
        self.got.append((self.warming_up, bar.start_ns, bar.close))


def test_a_stack_that_joined_mid_session_is_shadowed_from_its_start(refdata: RefData) -> None:
    """Ticks from 10:00:30 on (the stack started then). Started there, the strategy warms
    up on the four minutes before 10:00 and its first bar, 10:00, partial in the ticks,
    is the source's whole copy (as live's engine swapped it for the broker's); started at
    the open it would have warmed up on the day before's last minutes and taken the
    partial 10:00 bar as it came."""
    day = date(2026, 11, 20)
    source = GeneratedBars(refdata, 1, origin=day - timedelta(days=30))

    def ticks() -> Iterator[wire.Tick]:
        t0 = int(datetime(2026, 11, 20, 10, 0, 30, tzinfo=IST).timestamp()) * 10**9
        for i in range(20):  # to 10:05:15, a tick every 15 s, at a price of our own
            px = 30_000.0 + i
            yield wire.Tick(*FUT, px, px - 0.1, px + 0.1, 500, 500,
                            i + 1, exch_ns=t0 + i * 15 * 10**9)  # fmt: skip

    def seen(start_ns: int | None) -> list[tuple[bool, int, float]]:
        bt = Backtest(Spec([(Seen, {})], day, day, capital=5e7, fills="ticks"), refdata,
                      risk_files(PROJECT_ROOT / "config", {}), source, ticks=ticks(),
                      start_ns=start_ns)  # fmt: skip
        bt.run()
        strat = bt.runner.strategies["seen"]
        assert isinstance(strat, Seen)
        return strat.got

    def minute(hh: int, mm: int, d: int = 20) -> int:
        return int(datetime(2026, 11, d, hh, mm, tzinfo=IST).timestamp()) * 10**9

    whole = {int(s): float(c) for b in source.batches(*FUT, day, day)
             for s, c in zip(b.start_ns, b.close, strict=True)}  # fmt: skip
    joined = seen(minute(10, 0) + 30 * 10**9)
    assert [(w, s) for w, s, _ in joined[:5]] == [
        (True, minute(9, 56)), (True, minute(9, 57)), (True, minute(9, 58)),
        (True, minute(9, 59)), (False, minute(10, 0))]  # fmt: skip
    assert joined[4][2] == whole[minute(10, 0)] != 30_001.0  # the source's whole copy
    assert joined[5][1:] == (minute(10, 1), 30_005.0)  # then the ticks' own bars
    at_open = seen(None)
    assert [s for w, s, _ in at_open if w] == [minute(15, 26, 19), minute(15, 27, 19),
                                               minute(15, 28, 19), minute(15, 29, 19)]  # fmt: skip
    assert at_open[4][1:] == (minute(10, 0), 30_001.0)  # partial, as the ticks made it


def test_the_recordings_first_tick_after_the_open_is_a_mid_session_start(
    refdata: RefData, tmp_path: Path
) -> None:
    day = date(2026, 11, 20)
    for first, joined in (((9, 15, 0, 500_000), None), ((10, 0, 30, 0), True)):
        path = tmp_path / f"{first[0]}.duckdb"
        rec = Recorder(path, idle_release_s=None)
        t = int(datetime(2026, 11, 20, *first, tzinfo=IST).timestamp() * 1e9)
        rec.add_tick(wire.Tick(*FUT, 24_500.0, 24_499.9, 24_500.1, 75, 75, 1, exch_ns=t))
        rec.flush()
        rec.close()
        got = joined_at(first_tick(path, day), day, refdata)
        assert got == (t if joined else None)


def test_a_server_that_is_not_there_is_asked_once_and_its_empty_cache_not_read(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, refdata: RefData, tmp_path: Path
) -> None:
    """The shadow run on a stopped stack: the first history call fails, the rest are not
    made, and the cache the failed download created (no bar in it) is not chained."""
    from mytrading.openalgo.history import HistoryError

    for k, v in tmp_env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    calls: list[str] = []

    def down(ex: str, sym: str, tf: str, a: date, b: date) -> list[wire.Bar]:
        calls.append(sym)
        raise HistoryError(f"history {sym}: connection refused")

    wants = {FUT: 2, ("NSE_INDEX", "NIFTY"): 2}
    got = fetch_history(s, refdata, date(2026, 11, 20), wants, fetch=down)
    assert len(calls) == 1 and got.bars == 0 and len(got.errors) == 1
    assert "connection refused" in got.errors[0]
    assert s.stores.history_db.is_file()  # made by the download, empty
    recording = bars_file(tmp_path / "rec.duckdb", [("2026-11-20T10:00", 1.0)])
    assert with_history(s, recording) is recording


def test_a_history_cache_another_process_holds_is_said_not_raised(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, refdata: RefData
) -> None:
    """A `data download` writing the cache while the shadow runs: the shadow's fetch says
    so and goes on cold (its day still made), asking no instrument after the first."""
    import subprocess
    import sys

    for k, v in tmp_env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    s.stores.history_db.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(60)", str(s.stores.history_db)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        calls: list[str] = []

        def fetch(ex: str, sym: str, tf: str, a: date, b: date) -> list[wire.Bar]:
            calls.append(sym)
            return []

        got = fetch_history(s, refdata, date(2026, 11, 20), {FUT: 2, ("NSE_INDEX", "NIFTY"): 2},
                            fetch=fetch)  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert calls == [] and got.bars == 0 and len(got.errors) == 1
    assert "the history cache" in got.errors[0]


def test_an_engine_started_after_the_feeds_first_tick_starts_the_shadow_then(
    refdata: RefData,
) -> None:
    """Risk keeps each daemon's first start (kind ``start``); the engine's, when later
    than the recording's first tick, is when live's strategies began (the feed had
    ticks two seconds before the engine came up, as against the real OpenAlgo)."""
    from mytrading.shadow.day import starts

    day = date(2026, 11, 20)
    at = lambda *hms: int(datetime(2026, 11, 20, *hms, tzinfo=IST).timestamp() * 1e9)  # noqa: E731
    rows = [
        ("2026-11-20 14:38:38", "*", "start", "engine", 0.0, 0.4, "started", "", [], ""),
        ("2026-11-20 14:38:30", "*", "start", "feed", 0.0, 0.2, "started", "", [], ""),
        ("2026-11-20 14:47:46", "*", "restart", "engine", 0.0, 1.0, "restarted", "", [], ""),
    ]
    got = starts(rows)
    assert got == {"engine": at(14, 38, 38), "feed": at(14, 38, 30)}
    first = at(14, 38, 36)
    assert joined_at(first, day, refdata, got["engine"]) == at(14, 38, 38)
    assert joined_at(first, day, refdata) == first  # a risk that kept no start
    # an engine up before the open and a market's first tick at the open: no late start
    assert joined_at(at(9, 15, 0), day, refdata, at(9, 5, 0)) is None
    assert joined_at(0, day, refdata, at(10, 0, 0)) is None  # nothing recorded
