"""A daemon's log file is bounded: rotated by size, a fixed number kept, rotated files past
their age deleted at the next rotation or start (``logsetup.AgedRotatingFileHandler``)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from mytrading.process.logsetup import AgedRotatingFileHandler


def _log(h: logging.Handler, n: int) -> None:
    for i in range(n):
        h.emit(logging.LogRecord("t", logging.INFO, __file__, 1, "x" * 200 + str(i), None, None))


def test_size_and_count_are_bounded(tmp_path: Path) -> None:
    h = AgedRotatingFileHandler(tmp_path / "router.log", 4096, 3, 14)
    _log(h, 500)  # ~100 KB written through a 4 KB file
    h.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["router.log", "router.log.1", "router.log.2", "router.log.3"]
    assert all((tmp_path / f).stat().st_size <= 4096 + 300 for f in files)
    assert "x" * 200 + "499" in (tmp_path / "router.log").read_text()  # the newest kept


def test_rotated_files_past_their_age_are_deleted(tmp_path: Path) -> None:
    h = AgedRotatingFileHandler(tmp_path / "feed.log", 4096, 5, 1)
    _log(h, 100)
    h.close()
    old = time.time() - 2 * 86400
    for p in tmp_path.glob("feed.log.*"):
        os.utime(p, (old, old))
    (tmp_path / "other.log.1").write_text("not ours")
    os.utime(tmp_path / "other.log.1", (old, old))
    h = AgedRotatingFileHandler(tmp_path / "feed.log", 4096, 5, 1)  # a start prunes
    assert not list(tmp_path.glob("feed.log.*"))
    assert (tmp_path / "feed.log").exists() and (tmp_path / "other.log.1").exists()
    _log(h, 100)  # new rotations are young: kept
    h.close()
    assert list(tmp_path.glob("feed.log.*"))
