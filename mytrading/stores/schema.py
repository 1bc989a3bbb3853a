"""Every store carries a schema version and is brought forward when it is opened.

A DuckDB or SQLite store records its version in a table ``mt_schema (store, version)``
(the webhooks' SQLite file in ``PRAGMA user_version``, the backtest runs' in their own
``meta``, as they did first). ``ensure`` runs at each writer's open: a store with no
version recorded is of the layout before versions were kept, which is version 1; each
step from the recorded version up to ``VERSIONS[store]`` runs once, in order, and the new
version is recorded. A store written by a newer release is refused (``SchemaError``),
never read half-understood. The journal carries its version in its ``day`` record
(``router/journal.py``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

Con = Any  # a DuckDB or an sqlite3 connection: both take execute(sql, params)

# The version this release writes, per store.
VERSIONS: dict[str, int] = {
    "recordings": 1,  # the feed's recordings, and downloaded history (the same tables)
    # 2: risk_events.id (a row's id in risk's outbox: no row twice); 3: risk_events.detail
    # (what a command layer's strategy change set: the day's shadow replays it)
    "risk events": 3,
    "instruments": 1,
    "alerts": 1,
    "control": 1,  # the command record (control/record.py)
}

# What brings a store from the version before to this one (``steps[store][v]`` makes v).
STEPS: dict[str, dict[int, Callable[[Con], None]]] = {
    "risk events": {
        2: lambda con: con.execute("ALTER TABLE risk_events ADD COLUMN IF NOT EXISTS id BIGINT"),
        3: lambda con: con.execute(
            "ALTER TABLE risk_events ADD COLUMN IF NOT EXISTS detail VARCHAR"
        ),
    },
}


class SchemaError(RuntimeError):
    """A store written by a newer release than this one."""


def ensure(con: Con, store: str) -> int:
    """Bring ``con``'s ``store`` (its tables already created as version 1 creates them, or
    as an earlier release left them) to this release's version; the version it had."""
    con.execute("CREATE TABLE IF NOT EXISTS mt_schema (store VARCHAR PRIMARY KEY, version INTEGER)")
    # every row read: DuckDB 2 keeps a result read short of its end pending, and the
    # connection then refuses a ``register`` (a frame to insert) until another execute
    rows = con.execute("SELECT version FROM mt_schema WHERE store = ?", [store]).fetchall()
    have = int(rows[0][0]) if rows else 0  # 0: the layout before versions (version 1's)
    want = VERSIONS[store]
    if have > want:
        raise SchemaError(
            f"the {store} store was written by a newer release (schema {have}; this one "
            f"reads up to {want}): upgrade mytrading, or restore a backup of this release"
        )
    for v in range(max(have, 1) + 1, want + 1):
        step = STEPS.get(store, {}).get(v)
        if step is not None:
            step(con)
    if have != want:
        con.execute("DELETE FROM mt_schema WHERE store = ?", [store])
        con.execute("INSERT INTO mt_schema VALUES (?, ?)", [store, want])
    return have


def version_of(path: Path) -> dict[str, int]:
    """The schema versions a store file records (read-only), for a backup's manifest."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        return {}
    out: dict[str, int] = {}
    try:
        if head.startswith(b"SQLite format 3\0"):
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                out["user_version"] = int(con.execute("PRAGMA user_version").fetchone()[0])
                rows = con.execute(
                    "SELECT name FROM sqlite_master WHERE name = 'mt_schema'"
                ).fetchall()
                if rows:
                    out.update(dict(con.execute("SELECT store, version FROM mt_schema")))
            finally:
                con.close()
        elif head[8:12] == b"DUCK":
            dcon = duckdb.connect(str(path), read_only=True)
            try:
                tables = {r[0] for r in dcon.execute("SHOW TABLES").fetchall()}
                if "mt_schema" in tables:
                    out.update(
                        dict(dcon.execute("SELECT store, version FROM mt_schema").fetchall())
                    )
                if "meta" in tables:
                    got = dcon.execute(
                        "SELECT value FROM meta WHERE key = 'schema_version'"
                    ).fetchone()
                    if got:
                        out["backtests"] = int(got[0])
            finally:
                dcon.close()
    except (sqlite3.Error, duckdb.Error, ValueError):
        return {}
    return out


def versions(root: Path, stores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each backed-up store file's versions, as the manifest records them."""
    out: dict[str, Any] = {}
    for name, meta in stores.items():
        for f in meta["files"]:
            got = version_of(root / name / f)
            if got:
                out[f"{name}/{f}"] = got
    return json.loads(json.dumps(out))
