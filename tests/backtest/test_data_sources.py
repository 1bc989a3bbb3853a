"""A store's bars and ticks read by IST day: the days a source has and the bars and ticks
of a window, at the edges of an IST day (its first and last instant, which are 18:30 UTC
the day before and 18:29:59.999 UTC), the same as DuckDB's own cast of each row's time
into Asia/Kolkata gives."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from mytrading.backtest.data import DuckBars, DuckTicks
from mytrading.domain.refdata import IST
from mytrading.stores.recording import BAR_COLS, connect

NS = 1_000_000_000


def _edges() -> list[datetime]:
    """Instants around the IST midnights of 2026-11-17 .. 2026-11-20, and a session's."""
    out = []
    for d in (date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 20)):
        midnight = datetime.combine(d, datetime.min.time(), IST)
        out += [midnight, midnight - timedelta(microseconds=1), midnight + timedelta(hours=9.25)]
    return sorted(out)


def _store(path: Path) -> None:
    times = pd.to_datetime(_edges(), utc=True)
    bars = pd.DataFrame(
        {
            "tf": "1m",
            "exchange": "NFO",
            "symbol": "X",
            "start": times,
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": range(len(times)),
            "volume": 1,
        },
        columns=BAR_COLS,
    )
    ticks = pd.DataFrame({"ts": times, "exchange": "NFO", "symbol": "X", "ltp": range(len(times))})
    con = connect(path)
    try:
        con.register("b", bars)
        con.execute("INSERT INTO bars SELECT * FROM b")
        con.register("t", ticks)
        con.execute("INSERT INTO ticks (ts, exchange, symbol, ltp) SELECT * FROM t")
    finally:
        con.close()


def test_days_bars_and_ticks_of_a_window_are_those_of_its_ist_days(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    _store(path)
    src = DuckBars(path, "1m")
    days = [date(2026, 11, d) for d in range(16, 22)]
    ref = connect(path, read_only=True)  # the reference: DuckDB's cast of each row to IST

    def _cast(sql: str, *args: object) -> list[tuple]:
        return ref.execute(sql, list(args)).fetchall()

    for first in days:
        for last in days[days.index(first) :]:
            want_days = _cast(
                "SELECT DISTINCT CAST(start AS DATE) FROM bars "
                "WHERE CAST(start AS DATE) BETWEEN ? AND ? ORDER BY 1",
                first,
                last,
            )
            assert src.days("NFO", "X", first, last) == [r[0] for r in want_days]
            want_bars = _cast(
                "SELECT epoch_ns(start), close FROM bars "
                "WHERE CAST(start AS DATE) BETWEEN ? AND ? ORDER BY start",
                first,
                last,
            )
            got = [
                (int(t), float(c))
                for b in src.batches("NFO", "X", first, last)
                for t, c in zip(b.start_ns, b.close, strict=True)
            ]
            assert got == want_bars
            want_ticks = _cast(
                "SELECT epoch_ns(ts), ltp FROM ticks "
                "WHERE CAST(ts AS DATE) BETWEEN ? AND ? ORDER BY ts",
                first,
                last,
            )
            ticks = [(t.exch_ns, t.ltp) for t in DuckTicks(path).ticks(first, last)]
            assert ticks == want_ticks
    ref.close()
    # the data holds three IST days, the instant before each midnight on the day before
    assert src.days("NFO", "X", days[0], days[-1]) == [
        date(2026, 11, 16),
        date(2026, 11, 17),
        date(2026, 11, 18),
        date(2026, 11, 19),
        date(2026, 11, 20),
    ]
