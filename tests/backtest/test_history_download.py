"""History into the cache: downloaded from a real OpenAlgo-compatible server (the
simulator, over HTTP), resumably, with holes listed; imported from CSV and Parquet with
every row checked; then backtested."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mytrading.stores.recording import connect
from tests.procs import cli

FUT = "NFO:NIFTY23NOV26FUT"


def _query(path: Path, *sqls: str) -> list[list[tuple]]:
    """Each query's rows, read from the store at ``path`` (read-only, as a backtest does)."""
    con = connect(path, read_only=True)
    try:
        return [con.execute(sql).fetchall() for sql in sqls]
    finally:
        con.close()


def _days(env: dict[str, str]) -> list[tuple]:
    sql = "SELECT CAST(day AS VARCHAR), bars FROM days ORDER BY day"
    return _query(Path(env["MT_HISTORY_DB"]), sql)[0]


@pytest.mark.integration  # a simulator server process: out of the fast suite
def test_download_is_resumable_and_lists_holes(sim_broker) -> None:
    _, env = sim_broker  # the simulator serves two past sessions and today up to 10:00
    env = {**env, "MT_BROKER": "sim"}  # the CLI talks to the server's REST API itself
    args = (
        "data",
        "download",
        "--symbol",
        FUT,
        "--interval",
        "1m",
        "--from",
        "2026-11-17",
        "--to",
        "2026-11-19",
    )
    r = cli(*args, env=env)
    assert r.returncode == 0, r.stderr
    assert "3 day(s) fetched" in r.stdout and "0 day(s) already there" in r.stdout
    # the simulator has no bars before its two past sessions: 2026-11-17 is a hole
    assert "holes (1 trading day(s) without data): 2026-11-17" in r.stdout
    days = dict(_days(env))
    assert days["2026-11-17"] == 0 and days["2026-11-18"] == 375 and days["2026-11-19"] == 375
    again = cli(*args, env=env)
    assert "0 day(s) fetched" in again.stdout and "3 day(s) already there" in again.stdout
    assert "2026-11-17" in again.stdout  # the hole is still reported
    bt = cli(
        "backtest",
        "-s",
        "sma_crossover",
        "--from",
        "2026-11-18",
        "--to",
        "2026-11-19",
        "--data",
        "history",
        "-p",
        "contract=NIFTY23NOV26FUT",
        env=env,
    )
    assert bt.returncode == 0, bt.stderr
    assert "750 bars" in bt.stdout
    bad = cli("data", "download", "--symbol", "NFO:NOPE24NOV26FUT", env=env)
    assert bad.returncode == 2 and "unknown underlying" in bad.stderr


def test_import_checks_every_row_then_stores(tmp_env: dict[str, str], tmp_path: Path) -> None:
    times = pd.date_range("2026-11-18 09:15", periods=375, freq="1min")  # naive: IST
    df = pd.DataFrame(
        {"Time": times, "Open": 100.0, "High": 101.0, "Low": 99.5, "Close": 100.5, "Volume": 10}
    )
    good = tmp_path / "bars.csv"
    df.to_csv(good, index=False)
    r = cli("data", "import", str(good), "--symbol", FUT, env=tmp_env)
    assert r.returncode == 0, r.stderr
    assert "375 bars" in r.stdout and "2026-11-18" in r.stdout
    con = connect(Path(tmp_env["MT_HISTORY_DB"]), read_only=True)  # IST, as the feed writes
    first = con.execute("SELECT CAST(min(start) AS VARCHAR) FROM bars").fetchone()[0]
    con.close()
    assert str(first).startswith("2026-11-18 09:15:00+05:30")
    broken = df.copy()
    broken.loc[10, "High"] = 98.0  # below the open: impossible
    pq = tmp_path / "broken.parquet"
    duckdb.connect().execute(f"COPY (SELECT * FROM broken) TO '{pq}' (FORMAT parquet)")
    r2 = cli("data", "import", str(pq), "--symbol", FUT, env=tmp_env)
    assert r2.returncode == 2 and "line(s) 12" in " ".join(r2.stderr.split()), r2.stderr
    shifted = df.assign(Time=times + pd.Timedelta(seconds=30))
    odd = tmp_path / "odd.csv"
    shifted.to_csv(odd, index=False)
    r3 = cli("data", "import", str(odd), "--symbol", FUT, env=tmp_env)
    assert r3.returncode == 2 and "aligned to 09:15" in r3.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("Time,Open,High,Low,Close,Volume\n")
    r4 = cli("data", "import", str(empty), "--symbol", FUT, env=tmp_env)
    assert r4.returncode == 2 and "no bars" in r4.stderr, r4.stderr  # not DuckDB's traceback
    assert [d for d, _ in _days(tmp_env)] == ["2026-11-18"]  # nothing from the bad files


@pytest.mark.parametrize(
    ("column", "value"),
    [("Volume", 1e30), ("Volume", -5), ("Volume", 2.5), ("Volume", "lots"), ("Close", "inf")],
)
def test_import_refuses_values_that_do_not_fit_their_column(
    tmp_env: dict[str, str], tmp_path: Path, column: str, value: object
) -> None:
    """A volume of 1e30 was stored as -9.2e18; now the row is named and nothing imported."""
    times = pd.date_range("2026-11-18 09:15", periods=20, freq="1min")
    df = pd.DataFrame(
        {"Time": times, "Open": 100.0, "High": 101.0, "Low": 99.5, "Close": 100.5, "Volume": 10}
    ).astype({column: object})
    df.loc[3, column] = value
    f = tmp_path / "bars.csv"
    df.to_csv(f, index=False)
    r = cli("data", "import", str(f), "--symbol", FUT, env=tmp_env)
    assert r.returncode == 2 and "line(s) 5" in " ".join(r.stderr.split()), r.stderr
    assert not Path(tmp_env["MT_HISTORY_DB"]).exists() or _days(tmp_env) == []


@pytest.mark.integration  # a simulator server process: out of the fast suite
def test_downloaded_option_bars_backtest_a_builder_straddle(sim_broker, tmp_path: Path) -> None:
    """Option bars downloaded from OpenAlgo's ``history`` (the simulator's: any listed
    option, watched or not, priced from its index's path) backtest like generated ones:
    a builder straddle chooses its ATM legs from the downloaded index at each entry and
    trades at the downloaded options' prices."""
    _, env = sim_broker
    env = {**env, "MT_BROKER": "sim", "MT_STRATEGIES_DIR": str(tmp_path / "s")}
    (tmp_path / "s").mkdir()
    days = ("2026-11-18", "2026-11-19")

    def download(symbol: str) -> None:
        r = cli("data", "download", "--symbol", symbol, "--from", days[0], "--to", days[1], env=env)
        assert r.returncode == 0 and "2 day(s) fetched" in r.stdout, r.stdout + r.stderr

    download("NSE_INDEX:NIFTY")
    con = connect(Path(env["MT_HISTORY_DB"]), read_only=True)
    opens = con.execute(
        "SELECT close FROM bars WHERE symbol = 'NIFTY' AND strftime(start, '%H:%M') IN "
        "('09:29', '09:30', '09:31')"
    ).fetchall()
    con.close()
    strikes = sorted({round(c / 50) * 50 for (c,) in opens})  # the ATM of each entry
    for k in strikes:
        for right in ("CE", "PE"):
            download(f"NFO:NIFTY23NOV26{k}{right}")
    r = cli("strategy", "new", "dl_straddle", "--template", "straddle", env=env)
    assert r.returncode == 0, r.stderr
    bt = cli(
        "backtest", "-s", "dl_straddle", "--from", days[0], "--to", days[1],
        "--data", "history", env=env,
    )  # fmt: skip
    assert bt.returncode == 0, bt.stdout + bt.stderr
    report = re.search(r"report: (\S+)", bt.stdout)
    assert report, bt.stdout  # its parameters are the builder file's
    assert "legs=SELL 1 CE ATM weekly, stop 25 %" in Path(report.group(1)).read_text()
    found = re.search(r"\d{8}-\d{6}-[0-9a-f]{4}", bt.stdout)
    assert found, bt.stdout
    run_id = found.group(0)
    out = tmp_path / "out"
    assert cli("backtest", "export", run_id, "--out", str(out), env=env).returncode == 0
    fills = pd.read_csv(out / f"{run_id}-fills.csv")
    sold = fills[fills.action == "SELL"]
    assert {s[-2:] for s in sold.symbol} == {"CE", "PE"}
    assert {str(t)[:10] for t in fills.time} == set(days)  # it traded on both days
    con = connect(Path(env["MT_HISTORY_DB"]), read_only=True)
    for row in sold.itertuples():  # each fill at its bar's open: a downloaded price
        got = con.execute(
            "SELECT open FROM bars WHERE symbol = ? AND start = ?",
            [row.symbol, pd.Timestamp(row.time).to_pydatetime()],
        ).fetchone()
        assert got is not None and got[0] == pytest.approx(row.price), row
    con.close()


def test_an_import_of_years_of_minutes_into_a_full_store_keeps_every_bar(tmp_path: Path) -> None:
    """Three years of one instrument's minutes (300,000 bars) imported into a store that
    holds as many already: one transaction of them ran out of the store's 64 MB and kept
    none; now they are stored a part of whole days at a time (``STORE_ROWS``), every day's
    row with its bars."""
    from mytrading.backtest.download import STORE_ROWS, import_bars

    days = 800
    opens = pd.date_range("2024-01-01 09:15", periods=days, freq="D", tz="Asia/Kolkata")
    opens = opens.as_unit("ns")
    minutes = pd.to_timedelta(range(375), unit="min").as_unit("ns")
    start = (opens.asi8[:, None] + minutes.asi8[None, :]).ravel()
    df = pd.DataFrame(
        {
            "start": pd.to_datetime(start, utc=True).tz_convert("Asia/Kolkata"),
            "open": 100.0,
            "high": 101.0,
            "low": 99.5,
            "close": 100.5,
            "volume": 10,
        }
    )
    assert len(df) == 300_000 > STORE_ROWS
    path = tmp_path / "history.duckdb"
    for symbol in ("NIFTY23NOV26FUT", "BANKNIFTY23NOV26FUT"):
        rows, got = import_bars(path, df, "NFO", symbol, "1m")
        assert rows == 300_000 and len(got) == days
    per, kept = _query(
        path,
        "SELECT symbol, count(*) FROM bars GROUP BY 1 ORDER BY 1",
        "SELECT count(*), sum(bars) FROM days",
    )
    assert per == [("BANKNIFTY23NOV26FUT", 300_000), ("NIFTY23NOV26FUT", 300_000)]
    assert kept == [(2 * days, 600_000)]


def test_a_store_that_fails_part_way_keeps_whole_days(tmp_path: Path, monkeypatch) -> None:
    """The store refuses the second part of an import (a disk full, DuckDB's memory): the
    first part's days are kept with their rows, nothing of the second (neither bars nor a
    day's row saying it was fetched), and the error reaches the caller."""
    from mytrading.backtest import download
    from mytrading.messaging import wire

    monkeypatch.setattr(download, "STORE_ROWS", 375)  # a part a day
    path = tmp_path / "history.duckdb"
    real = download._open(path)
    inserts = []

    class Refusing:  # the connection, refusing its second bars insert
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> object:
            if sql.startswith("INSERT OR REPLACE INTO bars"):
                inserts.append(sql)
                if len(inserts) == 2:
                    raise duckdb.IOException("No space left on device")
            return real.execute(sql, *args)

    days = [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)]

    def bar(d: date, i: int) -> wire.Bar:
        at = int(pd.Timestamp(f"{d} 09:15", tz="Asia/Kolkata").value) + i * 60 * 10**9
        return wire.Bar(exchange="NFO", symbol="NIFTY23NOV26FUT", tf="1m", start_ns=at,
                        open=100.0, high=101.0, low=99.5, close=100.5, volume=10)  # fmt: skip

    by_day = {d: [bar(d, i) for i in range(375)] for d in days}
    with pytest.raises(duckdb.IOException, match="No space"):
        download._store(Refusing(), "1m", "NFO", "NIFTY23NOV26FUT", by_day, "import")  # type: ignore[arg-type]
    real.close()
    bars, kept = _query(
        path,
        "SELECT CAST(start AS DATE), count(*) FROM bars GROUP BY 1",
        "SELECT day, bars FROM days",
    )
    assert bars == [(days[0], 375)] and kept == [(days[0], 375)]
