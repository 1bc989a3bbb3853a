"""The HTTP control API's bearer tokens: ``main.py control token new NAME`` prints a token
once and keeps only its SHA-256 (a token is 32 random bytes: a fast hash is enough, and
a stolen file gives no token); ``revoke`` takes effect at the next request (the server
reads the file on each one). In the command record's file (``MT_CONTROL_DB``)."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from mytrading.control.record import CommandRecord
from mytrading.domain.names import bad_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    revoked REAL              -- NULL while in force
);
"""


class TokenError(ValueError):
    """A token name that cannot be made or revoked; the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created: float
    revoked: float | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, path: Path) -> None:
        self._file = CommandRecord(path)  # one file, its privacy and schema
        self._file.con.executescript(SCHEMA)

    @property
    def con(self) -> sqlite3.Connection:
        return self._file.con

    def close(self) -> None:
        self._file.close()

    def new(self, name: str) -> str:
        """A new token for ``name`` (a revoked name may be given a new one)."""
        why = bad_name(name)
        if why:
            raise TokenError(why)
        token = "mt_" + secrets.token_urlsafe(32)
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT revoked FROM tokens WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] is None:
                raise TokenError(f"a token named {name!r} is in force: revoke it first")
            con.execute("DELETE FROM tokens WHERE name = ?", (name,))
            con.execute(
                "INSERT INTO tokens (name, hash, created) VALUES (?, ?, ?)",
                (name, _digest(token), time.time()),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return token

    def revoke(self, name: str) -> None:
        cur = self.con.execute(
            "UPDATE tokens SET revoked = ? WHERE name = ? AND revoked IS NULL", (time.time(), name)
        )
        if cur.rowcount == 0:
            raise TokenError(f"no token named {name!r} in force")

    def check(self, token: str) -> str | None:
        """The name of the token in force that ``token`` is, else None."""
        if not token:
            return None
        # fetchall, not fetchone: a statement left unfinished keeps its read snapshot, and a
        # kept connection would not see a token made or revoked since
        rows = self.con.execute(
            "SELECT name FROM tokens WHERE hash = ? AND revoked IS NULL", (_digest(token),)
        ).fetchall()
        return str(rows[0][0]) if rows else None

    def list(self) -> list[TokenInfo]:
        rows = self.con.execute("SELECT name, created, revoked FROM tokens ORDER BY name")
        return [TokenInfo(r[0], r[1], r[2]) for r in rows.fetchall()]
