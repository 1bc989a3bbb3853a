"""What the stack keeps on disk, store by store, and how much room is left: for ``main.py
status`` (and ``bench/soak.py``, which checks that each store stays bounded).

Each store is a file (with its write-ahead siblings: ``-wal``, ``.wal``, ``-shm``) or a
directory; its size is what it takes now. Retention keeps each bounded: the logs by
``MT_LOG_MAX_MB``/``MT_LOG_BACKUPS``/``MT_LOG_KEEP_DAYS``, the webhook audit by
``MT_WEBHOOK_AUDIT_DAYS``, the journal by its daily compaction (docs/operating.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from mytrading.process.health import disk_free
from mytrading.settings import Settings

_SIBLINGS = ("", ".wal", "-wal", "-shm", "-journal")


def stores(s: Settings) -> dict[str, Path]:
    """Each store by name: where it is."""
    return {
        "logs": s.log_dir,
        "state": s.state_dir,  # journals, trading states, the simulator's books
        "recordings": s.stores.record_db,
        "risk events": s.stores.risk_db,
        "history": s.stores.history_db,
        "backtests": s.stores.backtest_db,
        "backtest reports": s.stores.report_dir,
        "instruments": s.stores.instruments_db,
        "alerts": s.stores.alerts_db,
        "webhooks": s.stores.webhook_db,
        "control": s.stores.control_db,
    }


def size_of(path: Path, skip: tuple[Path, ...] = ()) -> int:
    """Bytes a store takes: a file with its siblings, or a directory's files (without
    ``skip``: stores that live inside it and are counted on their own)."""
    if path.is_dir():
        total = 0
        for root, dirs, files in os.walk(path):
            here = Path(root)
            dirs[:] = [d for d in dirs if here / d not in skip]
            for f in files:
                p = here / f
                if p in skip or any(p.name == q.name + x for q in skip for x in _SIBLINGS):
                    continue
                try:
                    total += p.lstat().st_size
                except OSError:
                    continue
        return total
    total = 0
    for x in _SIBLINGS:
        try:
            total += Path(str(path) + x).stat().st_size
        except OSError:
            continue
    return total


def usage(s: Settings) -> dict[str, int]:
    """Bytes each store takes (a directory's figure leaves out the stores inside it)."""
    all_ = stores(s)
    out: dict[str, int] = {}
    for name, path in all_.items():
        inside = tuple(p for n, p in all_.items() if n != name and path in p.parents and p != path)
        out[name] = size_of(path, inside)
    return out


def report(s: Settings) -> list[str]:
    """Lines for ``status``: each store's size, then each file system's free space."""
    use = usage(s)
    line = "disk: " + "  ".join(f"{n} {_mb(b)}" for n, b in use.items() if b)
    free = [
        f"{f['path']} {f['free_mb']:.0f} MB free ({f['free_pct']:.0f} %)"
        for f in disk_free([s.state_dir, s.log_dir, s.stores.record_db.parent])
    ]
    return [line, "free: " + "; ".join(free)]


def _mb(b: int) -> str:
    return f"{b / 2**20:.1f} MB" if b >= 2**20 else f"{b / 1024:.0f} KB"
