"""Ticks and bars recorded to DuckDB by the feed, listed and exported, then replayed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mytrading.domain.refdata import IST
from mytrading.settings import load_settings
from mytrading.stores.recording import connect
from tests.procs import Watcher, cli, spawn
from tests.simhelpers import FUT, KEY, free_port, start_server

pytestmark = pytest.mark.integration  # real processes or servers

DAY = "2026-11-20"


def test_record_list_export_and_replay(
    tmp_env: dict[str, str], tmp_path: Path, monkeypatch: Any
) -> None:
    env = {
        **tmp_env,
        "MT_SIM_SPEED": "120",
        "MT_SIM_START": f"{DAY}T09:15",
        "MT_SIM_UNDERLYINGS": "NIFTY",
        "MT_SIM_STRIKES": "1",
        "MT_SIM_TICK_HZ": "10",
        "MT_FEED_SUBSCRIBE": "universe",  # no engine here declares what to quote
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    w = Watcher(load_settings(), ("sys.status.",))
    feed = spawn("feed", env)
    try:
        w.wait(
            lambda: (
                w.status.get("feed") is not None
                # 3 bars of each of 9: the index, 2 futures, 3 strikes x CE/PE
                and w.status["feed"].detail.get("recorded_bars", 0) >= 3 * 9
            ),
            30,
            "recording",
        )
    finally:
        feed.send_signal(signal.SIGTERM)
        assert feed.wait(timeout=10) == 0
        w.close()
    db = Path(env["MT_RECORD_DB"])
    con = connect(db, read_only=True)
    n_ticks = con.execute("SELECT count(*) FROM ticks WHERE symbol = ?", [FUT]).fetchone()[0]
    bars = con.execute("SELECT start, close FROM bars WHERE symbol = ? ORDER BY start", [FUT]).df()
    fut_ticks = con.execute(
        "SELECT epoch_ns(ts) AS ns, ltp FROM ticks WHERE symbol = ? ORDER BY ts", [FUT]
    ).df()
    con.close()
    assert n_ticks >= len(bars) >= 3  # every bar from recorded ticks (few: a loaded machine)
    # one bar a minute, for every minute that traded (a minute with no tick has none: on
    # a machine loaded to a standstill, 0.5 s of wall time can pass without one)
    steps = bars["start"].diff().dropna()
    assert (steps > pd.Timedelta(0)).all() and (
        steps % pd.Timedelta(minutes=1) == pd.Timedelta(0)
    ).all()
    starts = {int(t.value) for t in pd.to_datetime(bars["start"])}
    traded = {ns - ns % 60_000_000_000 for ns in fut_ticks["ns"].tolist()}
    last = max(starts)
    assert starts <= traded and {m for m in traded if m <= last} <= starts

    listed = cli("data", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert FUT in listed.stdout and DAY in listed.stdout
    out = tmp_path / "bars.csv"
    r = cli(
        "data",
        "export",
        "--date",
        DAY,
        "--symbol",
        FUT,
        "--kind",
        "bars",
        "--out",
        str(out),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(out)) == len(bars)
    r = cli(
        "data",
        "export",
        "--date",
        DAY,
        "--kind",
        "ticks",
        "--out",
        str(tmp_path / "t.parquet"),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    import duckdb

    in_file = duckdb.execute(f"SELECT count(*) FROM '{tmp_path / 't.parquet'}'").fetchone()[0]
    assert in_file >= n_ticks
    assert cli("data", "export", "--date", "20-11-2026", "--out", str(out), env=env).returncode == 2

    # The simulator replays that day: its quotes are the recorded ones, in order.
    server, host = start_server(
        {**tmp_env, "MT_LOG_DIR": str(tmp_path / "sl")},
        MT_SIM_REPLAY=DAY,
        # from the first recorded tick (the recording's feed starts late on a loaded
        # machine: a replay from 09:15 then quoted nothing for its first minutes), and
        # slower than the recording: late first answers must not find the replay already
        # past the few recorded minutes (CI once saw every quote at the last recorded price)
        MT_SIM_START=datetime.fromtimestamp(int(fut_ticks["ns"].min()) / 1e9, IST).strftime(
            "%Y-%m-%dT%H:%M:%S"
        ),
        MT_SIM_SPEED="10",
        MT_RECORD_DB=env["MT_RECORD_DB"],
    )
    try:
        from openalgo import api

        sdk = api(api_key=KEY, host=host, timeout=5.0)
        seen: list[float] = []
        failed: list[str] = []
        deadline = time.monotonic() + 60  # a loaded machine answers the first ones late
        while (len(seen) < 15 or len(set(seen)) < 2) and time.monotonic() < deadline:
            q = sdk.quotes(symbol=FUT, exchange="NFO")
            if q.get("status") == "success":
                seen.append(q["data"]["ltp"])
            else:
                failed.append(str(q.get("message")))
            time.sleep(0.1)
        recorded = set(fut_ticks["ltp"])
        assert seen and all(p in recorded for p in seen), (seen[:5], list(recorded)[:5], failed[:3])
        assert len(set(seen)) > 1  # it moves through the day, not one frozen price
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def test_replay_of_a_missing_day_is_a_clear_error(tmp_env: dict[str, str], tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    connect(db).close()
    r = subprocess.run(
        [sys.executable, "-m", "mytrading.sim.server"],
        env={
            **os.environ,
            **tmp_env,
            "MT_SIM_REPLAY": "2026-01-05",
            "MT_RECORD_DB": str(db),
            "MT_SIM_REST_PORT": str(free_port()),
            "MT_SIM_WS_PORT": str(free_port()),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "holds no ticks for 2026-01-05" in r.stderr + r.stdout


def test_recorder_loses_no_tick_while_the_writer_flushes(tmp_path: Path) -> None:
    from mytrading.stores.recording import Recorder

    rec = Recorder(tmp_path / "r.duckdb", flush_s=0.0005)  # flushing while we append
    n = 100_000
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads between almost any two bytecodes
    try:
        ticks_in(rec, n)
    finally:
        sys.setswitchinterval(old)
    rec.close()  # flushes the rest
    assert rec.ticks_written == n and rec.errors == 0
    con = connect(tmp_path / "r.duckdb", read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT volume) FROM ticks").fetchone() == (n, n)
    con.close()


def ticks_in(rec: Any, n: int) -> None:
    from mytrading.messaging import wire

    for i in range(n):
        rec.add_tick(
            wire.Tick(
                exchange="NFO",
                symbol=FUT,
                ltp=float(i),
                bid=0.0,
                ask=0.0,
                bid_qty=0,
                ask_qty=0,
                volume=i,
                exch_ns=1_763_600_000_000_000_000 + i,
            )
        )
