"""A daemon that keeps failing at start ends FATAL instead of looping.

supervisord gives up on a program (state FATAL, in ``logs/crashes.log``, and the monitor's
``daemon_down`` alert) only when it exits before ``startsecs`` several times in a row. A
daemon that fails in its set-up (its imports alone take about a second) always lives
longer than that, so supervisord took it for a running process that crashed and
restarted it forever: risk, unable to open its store, restarted 18 times in a minute.

So each daemon counts its own failed starts in ``<state>/startfail/<name>.json``
(``record_failure``; a start that completes its set-up removes the file). At its next
start, before anything heavy is imported, ``gate`` looks at the count: after
``MAX_FAILED_STARTS`` failures in a row within ``WINDOW_S`` it exits at once, which
supervisord counts as a failed start, and after ``startretries`` of those the program is
FATAL. ``main.py start``, ``run`` and ``restart`` clear the counts: the operator asking for
a start is the signal to try again.

Only the standard library here: ``gate`` runs before the daemon's own imports.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

MAX_FAILED_STARTS = 3
WINDOW_S = 600.0
EXIT_GIVEN_UP = 1


def _dir() -> Path:
    state = os.environ.get("MT_STATE_DIR")
    if state:
        return Path(state) / "startfail"
    return Path(__file__).resolve().parents[2] / "logs" / "state" / "startfail"


def _path(name: str, directory: Path | None = None) -> Path:
    return (directory or _dir()) / f"{name}.json"


def failures(name: str, directory: Path | None = None) -> dict[str, object]:
    """The recorded failed starts of ``name`` ({} when none)."""
    try:
        data = json.loads(_path(name, directory).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def gate(name: str) -> None:
    """Exit at once (a failed start, for supervisord) if ``name`` failed at start
    ``MAX_FAILED_STARTS`` times in a row within ``WINDOW_S``."""
    got = failures(name)
    count, last = got.get("count", 0), got.get("last", 0.0)
    if (
        isinstance(count, int)
        and isinstance(last, int | float)
        and count >= MAX_FAILED_STARTS
        and time.time() - last < WINDOW_S
    ):
        print(
            f"{name}: failed at start {count} times in a row (last: {got.get('error', '?')}); "
            f"not starting again. Fix the cause, then `python3 main.py restart {name}`.",
            file=sys.stderr,
        )
        sys.exit(EXIT_GIVEN_UP)


def record_failure(name: str, error: str, directory: Path | None = None) -> int:
    """Count one failed start; returns the count."""
    path = _path(name, directory)
    got = failures(name, directory)
    last = got.get("last", 0.0)
    recent = isinstance(last, int | float) and time.time() - last < WINDOW_S
    count = (got.get("count", 0) if recent else 0) or 0
    count = (count if isinstance(count, int) else 0) + 1
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"count": count, "last": time.time(), "error": error[:300]}))
        tmp.replace(path)
    except OSError:
        pass  # a full or read-only disk: supervisord's own retries still bound it
    return count


def clear(name: str, directory: Path | None = None) -> None:
    """A start that completed (or an operator's start): the count begins again."""
    with contextlib.suppress(OSError):  # none recorded, or a disk we cannot write
        _path(name, directory).unlink()


def clear_all(state_dir: Path) -> None:
    directory = state_dir / "startfail"
    for path in directory.glob("*.json") if directory.is_dir() else ():
        clear(path.stem, directory)
