"""``main.py backup`` and ``main.py restore``: a consistent copy of the stack's state, taken
while it runs, put back on a stopped stack.

What is copied: every store but the logs (``disk.stores``): the state directory (the
router's journal, risk's trading states, the simulator's books, the engine's files), the
DuckDB files (recordings, risk events, history, backtests, instruments) and the SQLite
files (alerts, webhooks). Keys (``keys/``, ``.env``) only with ``--with-keys``: a backup
is often carried elsewhere, and keys are better made again than copied around.

How each is copied consistently while its writer runs:

* **SQLite**: its own online backup API (a transactionally consistent copy).
* **DuckDB**: one process holds each file (its writer), so it cannot be read in place; the
  file and its write-ahead log are copied, and the copy is opened (which replays the log)
  and every table counted. A copy taken across a checkpoint fails that check and is
  taken again (up to ``TRIES``); one that never passes fails the backup, naming it.
* **The journal** (append-only, a checksum per frame): copied as it is; a frame being
  written at that instant is a torn tail, which its reader cuts, as after a crash.
* **Other files** are written whole and renamed into place by their owners: copied.

A backup is a directory ``mytrading-backup-<time>`` with ``manifest.json`` (when, from
where, each store and its files, the schema versions) and one directory per store.
``restore`` puts each store back at the *current* configuration's place (a backup moves
between hosts), refuses while any process of the stack runs, and keeps what it replaces
beside it (``<name>.before-restore-<time>``).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from mytrading.process import disk
from mytrading.router.journal import read
from mytrading.settings import PROJECT_ROOT, Settings

TRIES = 5
FORMAT = 1  # the layout of a backup directory
_SQLITE_MAGIC = b"SQLite format 3\0"
_SKIP_SUFFIXES = (".wal", "-wal", "-shm", "-journal", ".tmp", ".compact")


class BackupError(RuntimeError):
    """A store could not be copied consistently, or a restore cannot proceed."""


def stores(s: Settings) -> dict[str, Path]:
    """The stores a backup holds: every store but the logs."""
    return {n: p for n, p in disk.stores(s).items() if n != "logs"}


def _kind(path: Path) -> str:
    try:
        head = _head(path)
    except OSError:
        return "file"
    if head.startswith(_SQLITE_MAGIC):
        return "sqlite"
    if head[8:12] == b"DUCK":
        return "duckdb"
    return "file"


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(16)


def _copy_sqlite(src: Path, dst: Path) -> None:
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=10) as a:
        b = sqlite3.connect(dst)
        try:
            a.backup(b)
        finally:
            b.close()


def _copy_duckdb(src: Path, dst: Path) -> dict[str, int]:
    """Copy a DuckDB file its writer holds; the copy opened and each table counted."""
    why = ""
    for _ in range(TRIES):
        for x in ("", ".wal"):
            Path(str(dst) + x).unlink(missing_ok=True)
            if Path(str(src) + x).exists():
                shutil.copyfile(str(src) + x, str(dst) + x)
        try:
            con = duckdb.connect(str(dst))
            try:
                tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
                counts = {
                    t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]
                    for t in tables
                }
                con.execute("CHECKPOINT")  # the log folded in: one file
            finally:
                con.close()
            Path(str(dst) + ".wal").unlink(missing_ok=True)
            return counts
        except duckdb.Error as exc:
            why = str(exc)
            time.sleep(0.5)
    raise BackupError(f"{src}: no consistent copy in {TRIES} tries ({why})")


def _copy_tree(src: Path, dst: Path, said: Callable[[str], None]) -> list[str]:
    """Copy a store (a file or a directory), each file by its kind; the files copied."""
    files: list[str] = []
    items = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    for f in items:
        if f.name.endswith(_SKIP_SUFFIXES):
            continue  # a write-ahead companion: folded into its file's copy
        rel = f.name if src.is_file() else str(f.relative_to(src))
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        kind = _kind(f)
        if kind == "sqlite":
            _copy_sqlite(f, out)
        elif kind == "duckdb":
            counts = _copy_duckdb(f, out)
            said(f"  {rel}: {sum(counts.values())} rows in {len(counts)} tables")
        else:
            shutil.copy2(f, out)
        os.chmod(out, 0o600)
        files.append(rel)
    return files


def backup(
    s: Settings, dest: Path, with_keys: bool = False, said: Callable[[str], None] = print
) -> Path:
    """Write a backup under ``dest``; returns its directory."""
    from mytrading.stores.schema import versions

    stamp = time.strftime("%Y%m%dT%H%M%S")
    root = dest / f"mytrading-backup-{stamp}"
    root.mkdir(parents=True, mode=0o700)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created": stamp,
        "home": str(PROJECT_ROOT),
        "with_keys": with_keys,
        "stores": {},
    }
    for name, path in stores(s).items():
        if not path.exists():
            continue
        said(f"{name}: {path}")
        files = _copy_tree(path, root / "stores" / name, said)
        manifest["stores"][name] = {"path": str(path), "dir": path.is_dir(), "files": files}
    if with_keys:
        keys = root / "keys"
        if s.bus.keys_dir.exists():
            shutil.copytree(s.bus.keys_dir, keys / "keys")
        if (PROJECT_ROOT / ".env").exists():
            keys.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / ".env", keys / ".env")
        for p in keys.rglob("*"):
            os.chmod(p, 0o700 if p.is_dir() else 0o600)
    manifest["schema"] = versions(root / "stores", manifest["stores"])
    for f in manifest["stores"].get("state", {}).get("files", []):
        if f.endswith("journal.bin"):
            manifest["schema"][f"state/{f}"] = {
                "journal": read(root / "stores" / "state" / f).version
            }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def restore(s: Settings, src: Path, said: Callable[[str], None] = print) -> list[str]:
    """Put a backup back at this configuration's places (the stack must be stopped by
    the caller); what it replaced is kept beside each. Returns the stores restored."""
    try:
        manifest = json.loads((src / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src} is not a backup (manifest.json: {exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src}: backup format {manifest.get('format')} is not {FORMAT}")
    here = stores(s)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    done: list[str] = []
    for name, meta in manifest["stores"].items():
        if name not in here:
            said(f"{name}: not a store of this version; left out")
            continue
        target = here[name]
        copy = src / "stores" / name
        if target.exists() or any(Path(str(target) + x).exists() for x in _SKIP_SUFFIXES):
            aside = target.with_name(f"{target.name}.before-restore-{stamp}")
            target.rename(aside) if target.exists() else None
            for x in _SKIP_SUFFIXES:  # a write-ahead log of the file replaced goes with it
                side = Path(str(target) + x)
                if side.exists():
                    side.rename(Path(str(aside) + x))
            said(f"{name}: kept what was there as {aside}")
        if meta["dir"]:
            shutil.copytree(copy, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(copy / meta["files"][0], target)
        said(f"{name}: restored to {target}")
        done.append(name)
    return done
