"""The command record: every command given to the running stack, who gave it (the OS
user for the command line, a Telegram user id, an API token's name), through what and from
where, when, its arguments and its outcome. SQLite (``MT_CONTROL_DB``) in WAL mode, so the
command line and a server writing at once each wait their turn; ``main.py control log``
reads it."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mytrading.domain.refdata import IST
from mytrading.stores.schema import ensure
from mytrading.stores.sqlite import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,            -- epoch seconds
    who TEXT NOT NULL,           -- cli:<user>, telegram:<user id>, api:<token name>
    via TEXT NOT NULL,           -- cli | telegram | api
    origin TEXT NOT NULL,        -- where from: a host, a chat, an address
    command TEXT NOT NULL,
    args TEXT NOT NULL,          -- JSON
    outcome TEXT NOT NULL,       -- done | unchanged | refused | unconfirmed
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_at ON commands (at);
"""


@dataclass(frozen=True)
class Entry:
    """One command as recorded."""

    id: int
    at: float
    who: str
    via: str
    origin: str
    command: str
    args: dict[str, Any]
    outcome: str
    message: str

    def line(self) -> str:
        when = datetime.fromtimestamp(self.at, IST).strftime("%Y-%m-%d %H:%M:%S")
        args = " ".join(f"{k}={v}" for k, v in self.args.items())
        return (
            f"{when}  {self.who:<22} {self.via:<8} {self.command:<12} {args:<28} "
            f"{self.outcome:<11} {self.message}"
        )


class CommandRecord(SqliteFile):
    """One connection per thread that uses it (a server answers on more than one)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # private from the first byte, whoever creates it (a shell's umask is 022); SQLite
        # gives its -wal and -shm files the database's mode. Only when it is new: closing a
        # descriptor of a file drops every POSIX lock this process holds on it, those of an
        # open SQLite connection too ("disk I/O error", tried)
        if not path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        super().__init__(path)
        con = self.con
        con.executescript(SCHEMA)
        ensure(con, "control")

    def add(
        self,
        who: str,
        via: str,
        origin: str,
        command: str,
        args: dict[str, Any],
        outcome: str,
        message: str,
        at: float | None = None,
    ) -> int:
        cur = self.con.execute(
            "INSERT INTO commands (at, who, via, origin, command, args, outcome, message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time() if at is None else at,
                who,
                via,
                origin,
                command,
                json.dumps(args, sort_keys=True, default=str),
                outcome,
                message,
            ),
        )
        return int(cur.lastrowid or 0)

    def recent(self, n: int = 50) -> list[Entry]:
        """The newest ``n``, newest first."""
        rows = self.con.execute(
            "SELECT id, at, who, via, origin, command, args, outcome, message FROM commands "
            "ORDER BY id DESC LIMIT ?",
            (n,),
        ).fetchall()
        return [
            Entry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8]) for r in rows
        ]

    def prune(self, before: float) -> int:
        return self.con.execute("DELETE FROM commands WHERE at < ?", (before,)).rowcount
