"""What each warm-up handed, and when: the engine's record of the live bars it held.

A strategy's live bars wait while its warm-up's history is fetched (``engine/warmup.py``),
then go to it at once, the first swapped for the broker's whole copy or handed partial.
Decisions on held bars are made in one burst, each without the fills of the ones before
it: after a start with many instruments (history comes three calls a second) or a broker
slow to answer, live may decide otherwise than a backtest that had every bar on time.
The engine writes one line per warm-up handed to ``state/engine/warmups-<day>.jsonl``,
and one as a hold begins (``begun``: an engine killed while its bars wait leaves that);
the day's shadow (``shadow/day.py``) reads them to name that cause.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import structlog

log = structlog.get_logger("engine")

KEEP_DAYS = 90  # the shadow's summaries over weeks read them (``backtest shadow --from``)
KEPT_MAX = 10_000  # records kept waiting while the disk refuses them


@dataclass(frozen=True)
class Handed:
    """One warm-up handed to its strategy."""

    strategy: str
    exchange: str
    symbol: str
    tf: str
    at_ns: int  # market ns it was handed
    history: int  # history bars handed before the live ones (marked warming up)
    asked: int  # history bars asked (0: a first live bar waiting for the broker's copy)
    held: int  # live bars that waited for it
    first_ns: int  # start of the first live bar held (0: none)
    last_ns: int  # start of the last
    first: str  # the first held bar: "swapped" for the broker's copy, "partial", "" (none)
    # a hold as it began (at ``at_ns``, its first bar ``first_ns``; held 0, last 0),
    # written then: one an engine's end cut short is still on record, with no line handed
    begun: bool = False

    def holds(self, bar_ns: int) -> bool:
        """``bar_ns`` (a bar's start) is one of the live bars held (a hold begun: up to
        ``last_ns``, which the reader sets to where it ended)."""
        return (self.held > 0 or self.begun) and self.first_ns <= bar_ns <= self.last_ns


def path_of(engine_dir: Path, day: str) -> Path:
    return engine_dir / f"warmups-{day}.jsonl"


def append(engine_dir: Path, day: str, records: Iterable[Handed]) -> None:
    """Add ``records`` to the day's file (OSError to the caller, which keeps them to try
    again). The first write of a day removes the files older than ``KEEP_DAYS``."""
    path = path_of(engine_dir, day)
    fresh = not path.exists()
    with path.open("a") as fh:
        fh.write("".join(json.dumps(asdict(r)) + "\n" for r in records))
    if fresh:
        oldest = (date.fromisoformat(day) - timedelta(days=KEEP_DAYS)).isoformat()
        for old in engine_dir.glob("warmups-*.jsonl"):
            if old.stem.removeprefix("warmups-") < oldest:
                old.unlink(missing_ok=True)


def keep(engine_dir: Path, day: str, handed: list[Handed]) -> str:
    """Write ``handed`` to the day's file and empty it; "" when written, else the error,
    the records kept to be tried again (the newest ``KEPT_MAX``: a disk that stays full
    does not grow the engine)."""
    if not handed:
        return ""
    try:
        append(engine_dir, day, handed)
    except OSError as exc:
        del handed[:-KEPT_MAX]
        return str(exc)
    handed.clear()
    return ""


def read(engine_dir: Path, day: date) -> list[Handed]:
    """The day's records (none: no file, an engine before the record). A line that does
    not read (a write cut short by a crash) is skipped and said."""
    try:
        lines = path_of(engine_dir, day.isoformat()).read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for no, line in enumerate(lines, 1):
        try:
            out.append(Handed(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            log.warning("warm-up record unreadable: skipped", line=no, error=str(exc))
    return out
