"""The feed's recording is let go when idle, so a reader in another process (the day's
shadow after the close, a notebook) can open it on a running stack; what arrives while a
reader holds it waits in memory and is written once the reader lets go, none lost; past
the bound the oldest rows are dropped and counted, never the process's memory."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import duckdb

from mytrading.messaging import wire
from mytrading.settings import PROJECT_ROOT
from mytrading.stores.recording import KEEP_DAY_COPIES, Recorder, day_copies, day_copy

T0 = 1_795_150_000_000_000_000  # 2026-11-20 10:36 IST


def tick(i: int, day: int = 0) -> wire.Tick:
    """The ``i``-th tick, ``day`` days after 2026-11-20 (its volume says which it is)."""
    px = 24_500.0 + i
    return wire.Tick("NFO", "NIFTY26NOVFUT", px, px - 0.1, px + 0.1, 65, 65, 1000 * day + i,
                     exch_ns=T0 + i * 10**9 + day * 86_400 * 10**9)  # fmt: skip


def wait(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """``cond`` comes true in well under a second here; the bound is what a loaded
    machine might need, and a fault never makes it true."""
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextmanager
def reader(path: Path) -> Iterator[int]:
    """Another process holding the file read-only (as the shadow does): yields the ticks
    it counted, holds the file until the block ends."""
    p = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; "
         f"con = duckdb.connect({str(path)!r}, read_only=True); "
         "print(con.execute('SELECT count(*) FROM ticks').fetchone()[0], flush=True); "
         "sys.stdin.read()"],
        cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert p.stdout is not None
        line = p.stdout.readline().strip()
        assert line.isdigit(), f"the reader could not open the recording: {line!r}"
        yield int(line)
    finally:
        assert p.stdin is not None
        p.stdin.close()
        p.wait(timeout=30)


def counted(path: Path) -> list[int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT volume FROM ticks ORDER BY ts").fetchall()]
    finally:
        con.close()


def test_an_idle_recording_is_let_go_for_a_reader_and_what_came_meanwhile_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "md.duckdb"
    rec = Recorder(path, flush_s=0.05, idle_release_s=0.3)
    try:
        for i in range(10):
            rec.add_tick(tick(i))
        wait(lambda: rec.ticks_written == 10, "the first ticks written")
        wait(lambda: rec.con is None, "the file let go while idle")
        assert rec.releases == 1
        with reader(path) as seen:  # held by another process, read-only
            assert seen == 10
            for i in range(10, 30):
                rec.add_tick(tick(i))
            wait(lambda: rec.held_s > 0.2, "the writer finding the file held")
            assert rec.ticks_written == 10 and rec.con is None  # waiting, not lost
        wait(lambda: rec.ticks_written == 30, "what waited written once the reader let go")
        assert rec.held_s == 0.0 and rec.dropped == 0 and rec.errors == 0
    finally:
        rec.close()
    assert counted(path) == list(range(30))  # every tick once, in order


def test_a_reader_holding_it_too_long_costs_the_oldest_rows_counted_not_memory(
    tmp_path: Path,
) -> None:
    path = tmp_path / "md.duckdb"
    rec = Recorder(path, flush_s=0.05, idle_release_s=0.2, max_queued=5)
    try:
        rec.add_tick(tick(0))
        wait(lambda: rec.con is None and rec.ticks_written == 1, "written, then let go")
        with reader(path):
            for i in range(1, 13):
                rec.add_tick(tick(i))
            wait(lambda: rec.dropped == 7, "the oldest over the bound dropped")
        wait(lambda: rec.ticks_written == 6, "the newest five written after the reader")
    finally:
        rec.close()
    assert counted(path) == [0, 8, 9, 10, 11, 12]


def test_retention_takes_the_file_again_to_prune(tmp_path: Path) -> None:
    path = tmp_path / "md.duckdb"
    rec = Recorder(path, flush_s=0.05, idle_release_s=0.2)
    try:
        for i in range(5):
            rec.add_tick(tick(i))
        wait(lambda: rec.con is None and rec.ticks_written == 5, "written, then let go")
        rec.prune(T0 + 3 * 10**9, 0)  # ticks before the fourth
        wait(lambda: rec.pruned == 3, "the pruning done")
    finally:
        rec.close()
    assert counted(path) == [3, 4]


def test_a_new_days_first_ticks_copy_the_day_before_for_readers(tmp_path: Path) -> None:
    """On the simulator the market's clock jumps from the close to the next open, so the
    recording is never idle while the stack runs: the day is read from its copy."""
    path = tmp_path / "md.duckdb"
    rec = Recorder(path, flush_s=0.05, idle_release_s=None)
    try:
        for i in range(5):
            rec.add_tick(tick(i))
        rec.add_bar(wire.Bar("NFO", "NIFTY26NOVFUT", "1m", T0, 1.0, 2.0, 0.5, 1.5, 10))
        wait(lambda: rec.ticks_written == 5 and rec.bars_written == 1, "the day written")
        assert day_copies(path) == {}  # the day is not over
        rec.add_tick(tick(0, day=1))  # the next day's first tick
        wait(lambda: rec.day_copies == 1, "the day before copied")
        copy = day_copy(path, date(2026, 11, 20))
        assert day_copies(path) == {date(2026, 11, 20): copy}
        assert rec.con is not None  # the recording itself still held by its writer
        assert counted(copy) == [0, 1, 2, 3, 4]  # that day's ticks only, read meanwhile
        con = duckdb.connect(str(copy), read_only=True)
        assert con.execute("SELECT count(*) FROM bars").fetchone() == (1,)
        con.close()
    finally:
        rec.close()
    # a restart the next morning (the feed stopped overnight): the day before copied too
    rec = Recorder(path, flush_s=0.05, idle_release_s=None)
    try:
        for d in range(2, 3 + KEEP_DAY_COPIES):
            rec.add_tick(tick(0, day=d))
            wait(lambda d=d: rec.day_copies == d - 1, f"day {d - 1} copied")
    finally:
        rec.close()
    kept = day_copies(path)
    newest = date(2026, 11, 20) + timedelta(days=1 + KEEP_DAY_COPIES)
    assert sorted(kept) == [newest - timedelta(days=k) for k in range(KEEP_DAY_COPIES)][::-1]
    assert counted(kept[newest]) == [1000 * (1 + KEEP_DAY_COPIES)]
    assert counted(path) == [0, 1, 2, 3, 4, *(1000 * d for d in range(1, 3 + KEEP_DAY_COPIES))]


def test_a_day_copy_that_cannot_be_written_is_counted_and_the_recording_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "md.duckdb"
    blocked = day_copy(path, date(2026, 11, 20))
    (blocked.parent / (blocked.name + ".part")).mkdir()  # where the copy is written aside
    rec = Recorder(path, flush_s=0.05, idle_release_s=None)
    try:
        rec.add_tick(tick(0))
        wait(lambda: rec.ticks_written == 1, "the first day written")
        rec.add_tick(tick(1, day=1))
        wait(lambda: rec.errors == 1, "the failed copy counted")
        rec.add_tick(tick(2, day=1))
        wait(lambda: rec.ticks_written == 3, "the recording going on")
        assert rec.day_copies == 0 and day_copies(path) == {}
    finally:
        rec.close()
    assert counted(path) == [0, 1001, 1002]
