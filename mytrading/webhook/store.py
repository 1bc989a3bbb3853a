"""Webhook strategies, their symbol mappings and the audit of every request, in SQLite.

SQLite rather than DuckDB: the signals daemon writes the audit while the operator edits
strategies from the command line, and SQLite (in WAL mode) lets both at once, where
DuckDB locks a file for one writer. The schema has a version (``PRAGMA user_version``)
and a list of migrations, applied in order at open; a file newer than this program is
refused rather than misread.

A webhook id is 128 random bits (22 URL-safe characters), shown in full once, when it
is made (``new``, ``rotate``). Only its SHA-256 is stored, with a 6-character hint for
people and logs. A request is looked up by the hash of the id it carries: one indexed
lookup whatever the id, so neither the time taken nor the answer tells how much of an id
was right. An optional passphrase is stored salted and hashed the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import shlex
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from mytrading import hosttime
from mytrading.domain.names import bad_name
from mytrading.domain.refdata import IST
from mytrading.webhook.model import StrategyFields, SymbolMap

MIGRATIONS = [
    """
    CREATE TABLE strategies (
        id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, id_hash TEXT UNIQUE NOT NULL,
        id_hint TEXT NOT NULL, enabled INTEGER NOT NULL, intraday INTEGER NOT NULL,
        mode TEXT NOT NULL, start TEXT NOT NULL, "end" TEXT NOT NULL, squareoff TEXT NOT NULL,
        pass_salt TEXT, pass_hash TEXT, created TEXT NOT NULL, updated TEXT NOT NULL
    );
    CREATE TABLE symbols (
        strategy_id INTEGER NOT NULL REFERENCES strategies(id) ON DELETE CASCADE,
        external TEXT NOT NULL, exchange TEXT NOT NULL, symbol TEXT NOT NULL,
        lots INTEGER NOT NULL, product TEXT NOT NULL, PRIMARY KEY (strategy_id, external)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY, ts TEXT NOT NULL, strategy TEXT, id_hint TEXT, client TEXT,
        status INTEGER NOT NULL, reason TEXT NOT NULL, body_sha TEXT, intents TEXT,
        outcome TEXT
    );
    CREATE INDEX audit_strategy ON audit (strategy, id);
    """,
    # 2: the day each intraday strategy was last squared off (confirmed flat), so a
    # restart past square-off time does it once, and not again the same day
    """
    CREATE TABLE squareoffs (strategy TEXT PRIMARY KEY, day TEXT NOT NULL, ts TEXT NOT NULL);
    """,
    # 3: a square-off is of one venue (venue.py): done in paper, it is not done live.
    # Rows from before have no venue ('') and match none.
    """
    CREATE TABLE squareoffs_v3 (
        venue TEXT NOT NULL, strategy TEXT NOT NULL, day TEXT NOT NULL, ts TEXT NOT NULL,
        PRIMARY KEY (venue, strategy)
    );
    INSERT INTO squareoffs_v3 SELECT '', strategy, day, ts FROM squareoffs;
    DROP TABLE squareoffs;
    ALTER TABLE squareoffs_v3 RENAME TO squareoffs;
    """,
    # 4: refused floods (unknown ids, rate limits, oversized bodies) as counts per minute
    # instead of a row each; the audit pruned by age (its ts indexed for that)
    """
    CREATE TABLE refused (
        minute TEXT NOT NULL, status INTEGER NOT NULL, strategy TEXT NOT NULL,
        client TEXT NOT NULL, reason TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (minute, status, strategy, client, reason)
    );
    CREATE INDEX audit_ts ON audit (ts);
    """,
    # 5: the fields an alert carried that we ignore (OpenAlgo's webhook ignores them too)
    """
    ALTER TABLE audit ADD COLUMN ignored TEXT NOT NULL DEFAULT '';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(ValueError):
    """Not found, a name taken, a file from a newer program: said plainly."""


@dataclass(frozen=True)
class Record:
    id: int
    fields: StrategyFields
    id_hint: str
    has_passphrase: bool
    created: str
    updated: str

    @property
    def name(self) -> str:
        return self.fields.name


def hash_id(webhook_id: str) -> str:
    return hashlib.sha256(webhook_id.encode()).hexdigest()


def _now() -> str:
    return hosttime.now(IST).isoformat(timespec="seconds")


class WebhookStore:
    def __init__(self, path: Path, check_names: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.con = sqlite3.connect(str(path), timeout=5.0, isolation_level=None)
        self.con.row_factory = sqlite3.Row
        self.con.execute("PRAGMA journal_mode = WAL")
        # WAL with NORMAL: a commit survives this process dying, not the machine losing
        # power (the last commits may go). For an audit and settings that is the right
        # trade: a full fsync per request would cost milliseconds on the request's path.
        self.con.execute("PRAGMA synchronous = NORMAL")
        self.con.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        bad = self.bad_names()
        if bad and check_names:
            raise StoreError(
                f"{path}: webhook strategy {bad_name(bad[0])} (rename it: "
                f"main.py webhook edit {shlex.quote(bad[0])} --name NEW)"
            )

    def bad_names(self) -> list[str]:
        """Names stored before the naming rule that break it."""
        rows = self.con.execute("SELECT name FROM strategies ORDER BY name").fetchall()
        return [n for (n,) in rows if bad_name(n)]

    def close(self) -> None:
        self.con.close()

    def _migrate(self) -> None:
        version = self.con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this program's "
                f"({SCHEMA_VERSION}); update mytrading"
            )
        for n in range(version, SCHEMA_VERSION):  # each migration is one transaction
            self.con.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[n]}\nPRAGMA user_version = {n + 1};\nCOMMIT;"
            )

    def _tx(self) -> Any:
        con = self.con

        class _Tx:
            def __enter__(self) -> None:
                con.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind: Any, *_: Any) -> None:
                con.execute("ROLLBACK" if kind else "COMMIT")

        return _Tx()

    # --------------------------------------------------------------- strategies

    def create(self, fields: StrategyFields, passphrase: str = "") -> tuple[Record, str]:
        """A new strategy and its webhook id, returned this once in full."""
        webhook_id = secrets.token_urlsafe(16)
        salt, digest = _secret(passphrase)
        now = _now()
        try:
            with self._tx():
                self.con.execute(
                    "INSERT INTO strategies (name, id_hash, id_hint, enabled, intraday, mode, "
                    'start, "end", squareoff, pass_salt, pass_hash, created, updated) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        fields.name,
                        hash_id(webhook_id),
                        webhook_id[:6],
                        int(fields.enabled),
                        int(fields.intraday),
                        fields.mode,
                        fields.start.isoformat("minutes"),
                        fields.end.isoformat("minutes"),
                        fields.squareoff.isoformat("minutes"),
                        salt,
                        digest,
                        now,
                        now,
                    ),
                )
        except sqlite3.IntegrityError:
            raise StoreError(f"a webhook strategy named {fields.name!r} exists already") from None
        return self.get(fields.name), webhook_id

    def get(self, name: str) -> Record:
        row = self.con.execute("SELECT * FROM strategies WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"no webhook strategy {name!r} (see: main.py webhook list)")
        return _record(row)

    def by_webhook_id(self, webhook_id: str) -> Record | None:
        row = self.con.execute(
            "SELECT * FROM strategies WHERE id_hash = ?", (hash_id(webhook_id),)
        ).fetchone()
        return _record(row) if row is not None else None

    def all(self) -> list[Record]:
        rows = self.con.execute("SELECT * FROM strategies ORDER BY name").fetchall()
        return [_record(r) for r in rows]

    def update(self, name: str, **changes: Any) -> Record:
        """Change fields (validated together, as a whole strategy). A strategy stored
        under a name that breaks today's rule can be renamed here."""
        row = self.con.execute("SELECT * FROM strategies WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"no webhook strategy {name!r} (see: main.py webhook list)")
        old = _record(row, trusted=True)
        try:
            fields = StrategyFields(**{**old.fields.model_dump(), **changes})
        except ValueError as exc:
            raise StoreError(_first_error(exc)) from None
        with self._tx():
            self.con.execute(
                "UPDATE strategies SET name = ?, enabled = ?, intraday = ?, mode = ?, start = ?, "
                '"end" = ?, squareoff = ?, updated = ? WHERE id = ?',
                (
                    fields.name,
                    int(fields.enabled),
                    int(fields.intraday),
                    fields.mode,
                    fields.start.isoformat("minutes"),
                    fields.end.isoformat("minutes"),
                    fields.squareoff.isoformat("minutes"),
                    _now(),
                    old.id,
                ),
            )
        return self.get(fields.name)

    def delete(self, name: str) -> None:
        rec = self.get(name)
        with self._tx():
            self.con.execute("DELETE FROM strategies WHERE id = ?", (rec.id,))

    def rotate(self, name: str) -> str:
        """A new webhook id; the old one stops working at once."""
        rec = self.get(name)
        webhook_id = secrets.token_urlsafe(16)
        with self._tx():
            self.con.execute(
                "UPDATE strategies SET id_hash = ?, id_hint = ?, updated = ? WHERE id = ?",
                (hash_id(webhook_id), webhook_id[:6], _now(), rec.id),
            )
        return webhook_id

    def set_passphrase(self, name: str, passphrase: str) -> None:
        """ "" removes it."""
        rec = self.get(name)
        salt, digest = _secret(passphrase)
        with self._tx():
            self.con.execute(
                "UPDATE strategies SET pass_salt = ?, pass_hash = ?, updated = ? WHERE id = ?",
                (salt, digest, _now(), rec.id),
            )

    def passphrase_ok(self, rec: Record, given: str | None) -> bool:
        row = self.con.execute(
            "SELECT pass_salt, pass_hash FROM strategies WHERE id = ?", (rec.id,)
        ).fetchone()
        if row is None or row["pass_hash"] is None:
            return True
        digest = _digest(row["pass_salt"], given or "")
        return hmac.compare_digest(digest, row["pass_hash"])

    # ------------------------------------------------------------------ symbols

    def add_symbol(self, name: str, m: SymbolMap) -> None:
        rec = self.get(name)
        with self._tx():
            self.con.execute(
                "INSERT OR REPLACE INTO symbols VALUES (?, ?, ?, ?, ?, ?)",
                (rec.id, m.external, m.exchange, m.symbol, m.lots, m.product),
            )

    def remove_symbol(self, name: str, external: str) -> None:
        rec = self.get(name)
        with self._tx():
            cur = self.con.execute(
                "DELETE FROM symbols WHERE strategy_id = ? AND external = ?",
                (rec.id, external.strip().upper()),
            )
        if cur.rowcount == 0:
            raise StoreError(f"{name} maps no symbol {external!r}")

    def symbols(self, name: str) -> dict[str, SymbolMap]:
        return self.symbols_of(self.get(name))

    def symbols_of(self, rec: Record) -> dict[str, SymbolMap]:
        """The mappings of a record already read (the server's path: one query, not two)."""
        rows = self.con.execute(
            "SELECT * FROM symbols WHERE strategy_id = ? ORDER BY external", (rec.id,)
        ).fetchall()
        return {
            r["external"]: SymbolMap(
                external=r["external"],
                exchange=r["exchange"],
                symbol=r["symbol"],
                lots=r["lots"],
                product=r["product"],
            )
            for r in rows
        }

    # -------------------------------------------------------------------- audit

    def log_request(
        self,
        strategy: str | None,
        id_hint: str,
        client: str,
        status: int,
        reason: str,
        body: bytes = b"",
        intents: list[str] | None = None,
        outcome: str = "",
        ignored: tuple[str, ...] = (),
    ) -> int:
        with self._tx():
            cur = self.con.execute(
                "INSERT INTO audit (ts, strategy, id_hint, client, status, reason, body_sha, "
                "intents, outcome, ignored) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(),
                    strategy,
                    id_hint,
                    client,
                    status,
                    reason,
                    hashlib.sha256(body).hexdigest()[:16] if body else "",
                    json.dumps(intents or []),
                    outcome,
                    ",".join(ignored),
                ),
            )
        return int(cur.lastrowid or 0)

    def count_refused(self, counts: dict[tuple[str, int, str, str, str], int]) -> None:
        """Add ``(minute, status, strategy, client, reason) -> n`` to the per-minute counts."""
        if not counts:
            return
        with self._tx():
            self.con.executemany(
                "INSERT INTO refused VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
                "SET n = n + excluded.n",
                [(*k, n) for k, n in counts.items()],
            )

    def refused_counts(self, n: int = 30) -> list[sqlite3.Row]:
        return self.con.execute(
            "SELECT * FROM refused ORDER BY minute DESC, n DESC LIMIT ?", (n,)
        ).fetchall()

    def prune(self, days: int, now: datetime | None = None) -> int:
        """Drop audit rows and refusal counts older than ``days``; how many went."""
        cutoff = ((now or hosttime.now(IST)) - timedelta(days=days)).isoformat(timespec="seconds")
        with self._tx():
            a = self.con.execute("DELETE FROM audit WHERE ts < ?", (cutoff,)).rowcount
            r = self.con.execute("DELETE FROM refused WHERE minute < ?", (cutoff,)).rowcount
        return a + r

    def set_outcome(self, audit_id: int, outcome: str, intents: list[str] | None = None) -> None:
        with self._tx():
            if intents is None:
                self.con.execute("UPDATE audit SET outcome = ? WHERE id = ?", (outcome, audit_id))
            else:
                self.con.execute(
                    "UPDATE audit SET outcome = ?, intents = ? WHERE id = ?",
                    (outcome, json.dumps(intents), audit_id),
                )

    def set_status(self, audit_id: int, status: int, reason: str) -> None:
        with self._tx():
            self.con.execute(
                "UPDATE audit SET status = ?, reason = ? WHERE id = ?", (status, reason, audit_id)
            )

    # -------------------------------------------------------------- square-off

    def squared_off_on(self, name: str, venue: str) -> date | None:
        """The day ``name`` was last squared off on ``venue`` (venue.Venue.id)."""
        row = self.con.execute(
            "SELECT day FROM squareoffs WHERE venue = ? AND strategy = ?", (venue, name)
        ).fetchone()
        return date.fromisoformat(row["day"]) if row else None

    def mark_squared_off(self, name: str, day: date, venue: str) -> None:
        with self._tx():
            self.con.execute(
                "INSERT OR REPLACE INTO squareoffs VALUES (?, ?, ?, ?)",
                (venue, name, day.isoformat(), _now()),
            )

    def audit(self, strategy: str | None = None, n: int = 50) -> list[dict[str, Any]]:
        if strategy:
            rows = self.con.execute(
                "SELECT * FROM audit WHERE strategy = ? ORDER BY id DESC LIMIT ?", (strategy, n)
            ).fetchall()
        else:
            rows = self.con.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (n,)).fetchall()
        return [{**dict(r), "intents": json.loads(r["intents"] or "[]")} for r in rows]


def _secret(passphrase: str) -> tuple[str | None, str | None]:
    if not passphrase:
        return None, None
    salt = secrets.token_hex(8)
    return salt, _digest(salt, passphrase)


def _digest(salt: str, passphrase: str) -> str:
    return hashlib.sha256((salt + passphrase).encode()).hexdigest()


def _record(row: sqlite3.Row, trusted: bool = False) -> Record:
    """A stored strategy; ``trusted``: as stored, unchecked (to rename a legacy name)."""
    make = StrategyFields.model_construct if trusted else StrategyFields
    fields = make(
        name=row["name"],
        enabled=bool(row["enabled"]),
        intraday=bool(row["intraday"]),
        mode=row["mode"],
        start=time.fromisoformat(row["start"]),
        end=time.fromisoformat(row["end"]),
        squareoff=time.fromisoformat(row["squareoff"]),
    )
    return Record(
        row["id"],
        fields,
        row["id_hint"],
        row["pass_hash"] is not None,
        row["created"],
        row["updated"],
    )


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        e = errors()[0]
        loc = ".".join(str(x) for x in e.get("loc", ())) or "strategy"
        return f"{loc}: {e['msg']}".replace("Value error, ", "")
    return str(exc)
