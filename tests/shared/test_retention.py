"""Retention keeps each store bounded: recordings by market age (in the writer thread),
alerts and risk events by age, the newest backtest runs, the journal's kept-aside
copies by age."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from mytrading.messaging import wire
from mytrading.stores.recording import Recorder

DAY_NS = 86400 * 10**9


def _tick(ns: int) -> wire.Tick:
    return wire.Tick(exchange="NSE", symbol="INFY", ltp=1.0, bid=1.0, ask=1.0, bid_qty=0,
                     ask_qty=0, volume=0, exch_ns=ns, ts=ns)  # fmt: skip


def _bar(ns: int) -> wire.Bar:
    return wire.Bar(exchange="NSE", symbol="INFY", tf="1m", start_ns=ns, open=1.0, high=1.0,
                    low=1.0, close=1.0, volume=1)  # fmt: skip


def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_recordings_older_than_their_retention_go(tmp_path: Path) -> None:
    now = time.time_ns()
    rec = Recorder(tmp_path / "md.duckdb", flush_s=0.05)
    for age_days in (40, 20, 1):
        rec.add_tick(_tick(now - age_days * DAY_NS))
        rec.add_bar(_bar(now - age_days * DAY_NS))
    _until(lambda: rec.ticks_written == 3 and rec.bars_written == 3)
    rec.prune(now - 30 * DAY_NS, now - 30 * DAY_NS)
    _until(lambda: rec.pruned == 2)
    rec.close()
    con = duckdb.connect(str(tmp_path / "md.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM ticks").fetchone()[0] == 2  # type: ignore[index]
    assert con.execute("SELECT count(*) FROM bars").fetchone()[0] == 2  # type: ignore[index]
    con.close()


def test_alerts_older_than_their_retention_go(tmp_path: Path) -> None:
    from mytrading.monitor.store import AlertStore

    store = AlertStore(tmp_path / "alerts.sqlite")
    con = store.con
    now = time.time()
    for i, created in enumerate((now - 100 * 86400, now - 95 * 86400, now - 86400)):
        con.execute(
            "INSERT INTO alerts VALUES (?, ?, 'r', 'k', 'warning', 'condition', 't')",
            (i + 1, created),
        )
    con.execute("INSERT INTO deliveries VALUES (1, 'log', 'sent', 1, 0, 0, '')")
    con.execute("INSERT INTO deliveries VALUES (2, 'log', 'pending', 0, 0, NULL, '')")
    assert store.prune(now - 90 * 86400) == 1  # the old one sent; the pending one kept
    ids = [r[0] for r in con.execute("SELECT id FROM alerts ORDER BY id")]
    assert ids == [2, 3]
    store.close()


def test_the_journals_kept_aside_copies_go_by_age(tmp_path: Path) -> None:
    from mytrading.router.journal import prune_aside

    d = tmp_path / "router"
    d.mkdir()
    (d / "journal.bin").write_bytes(b"")
    old = d / "journal.bin.damaged-20260101T000000"
    young = d / "journal.bin.accounts-20261120T000000"
    for f in (old, young):
        f.write_bytes(b"x")
    past = time.time() - 40 * 86400
    os.utime(old, (past, past))
    assert prune_aside(d / "journal.bin", 30) == [old.name]
    assert not old.exists() and young.exists() and (d / "journal.bin").exists()


def test_backtest_runs_beyond_the_newest_go_with_their_reports(tmp_path: Path) -> None:
    from dataclasses import fields
    from datetime import date

    from mytrading.backtest import store
    from mytrading.backtest.metrics import Metrics

    db = tmp_path / "bt.duckdb"
    reports = []
    for i in range(4):
        rid = f"run{i}"
        rep = tmp_path / "reports" / rid / "report.html"
        rep.parent.mkdir(parents=True)
        rep.write_text("r")
        reports.append(rep)
        rec = store.RunRecord(rid, ["s"], {}, date(2026, 1, 1), date(2026, 1, 2), 1e6, "d",
                              "bars", 0, 10, 0.1, str(rep), [], "")  # fmt: skip
        store.save(db, rec, {"*": Metrics(*[0.0] * len(fields(Metrics)))}, {}, keep=2)
        time.sleep(0.01)
    left = list(store.runs(db)["run_id"])
    assert sorted(left) == ["run2", "run3"]
    assert [r.exists() for r in reports] == [False, False, True, True]
