"""``main.py backtest shadow`` refuses what it cannot compare with a clear error (exit 2)
and writes nothing; a whole session's shadow is checked on real processes in
``tests/backtest/test_backtest_parity.py``."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import pytest

from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.settings import PROJECT_ROOT
from mytrading.shadow import SHADOW_LATER
from mytrading.stores.recording import Recorder, day_copy
from tests.procs import cli


def record_a_tick(path: Path, when: datetime) -> None:
    rec = Recorder(path, flush_s=60)
    ns = int(when.timestamp() * 1e9)
    rec.add_tick(wire.Tick("NFO", "NIFTY23NOV26FUT", 24_500.0, 24_499.9, 24_500.1, 65, 65, 1,
                           exch_ns=ns))  # fmt: skip
    rec.flush()
    rec.close()


@pytest.mark.parametrize(
    ("args", "recorded", "expect"),
    [
        ([], False, "no recording at"),
        (["--day", "2026-13-01"], False, "--day '2026-13-01' is not a date"),
        ([], True, "no router journal of 2026-11-20"),  # the latest recorded day
        (["--day", "2026-11-19"], True, "holds no ticks of 2026-11-19"),  # not recorded
    ],
)
def test_what_cannot_be_compared_is_refused_clearly(
    tmp_env: dict[str, str], args: list[str], recorded: bool, expect: str
) -> None:
    if recorded:
        record_a_tick(Path(tmp_env["MT_RECORD_DB"]), datetime(2026, 11, 20, 10, 0, tzinfo=IST))
    r = cli("backtest", "shadow", *args, env=tmp_env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert expect in " ".join(r.stderr.split()), r.stderr
    assert not Path(tmp_env["MT_BACKTEST_DB"]).exists()


def test_a_held_recording_is_read_from_the_days_copy_the_feed_made(
    tmp_env: dict[str, str],
) -> None:
    """The feed copies a day to a file of its own when the next day's ticks begin: the
    shadow reads that day from it while the running feed holds the recording (it gets as
    far as the next input, the router's journal of the day, which this test has none of)."""
    path = Path(tmp_env["MT_RECORD_DB"])
    rec = Recorder(path, flush_s=0.01)
    for when in (
        datetime(2026, 11, 20, 10, 0, tzinfo=IST),
        datetime(2026, 11, 23, 9, 15, tzinfo=IST),
    ):
        ns = int(when.timestamp() * 1e9)
        rec.add_tick(wire.Tick("NFO", "NIFTY23NOV26FUT", 24_500.0, 24_499.9, 24_500.1, 65, 65, 1,
                               exch_ns=ns))  # fmt: skip
        while rec.ticks_written < (1 if when.day == 20 else 2):
            time.sleep(0.01)
    rec.close()  # (the copy is made as the second day's first tick is written)
    assert day_copy(path, date(2026, 11, 20)).is_file()
    holder = hold(path)
    try:
        for args in (["--day", "2026-11-20"], []):  # that day, and the newest copy's
            r = cli("backtest", "shadow", *args, env=tmp_env)
            assert r.returncode == 2, (r.stdout, r.stderr)
            assert "no router journal of 2026-11-20" in " ".join(r.stderr.split()), r.stderr
        r = cli("backtest", "shadow", "--day", "2026-11-23", env=tmp_env)  # not copied yet
        assert r.returncode == SHADOW_LATER, (r.stdout, r.stderr)
        said = " ".join(r.stderr.split())
        assert "is held by another process" in said and "no copy of 2026-11-23 yet" in said
    finally:
        release(holder)


def hold(path: Path) -> subprocess.Popen[str]:
    """A running feed: its recorder holds the file for writing."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from mytrading.stores.recording import connect; "
         f"con = connect(Path({str(path)!r})); print('held', flush=True); sys.stdin.read()"],
        cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=10)


def test_a_recording_the_feed_still_holds_is_refused_not_waited_for(
    tmp_env: dict[str, str],
) -> None:
    path = Path(tmp_env["MT_RECORD_DB"])
    record_a_tick(path, datetime(2026, 11, 20, 10, 0, tzinfo=IST))
    holder = hold(path)
    try:
        r = cli("backtest", "shadow", "--day", "2026-11-20", env=tmp_env)
        assert r.returncode == SHADOW_LATER, (r.stdout, r.stderr)  # "ask again later"
        said = " ".join(r.stderr.split())
        assert "is held by another process" in said and "no copy of 2026-11-20 yet" in said
    finally:
        release(holder)
