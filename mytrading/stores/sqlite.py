"""An SQLite file used from more than one thread (a server's handlers, a sender thread,
the loop): one connection per thread, in WAL mode with autocommit, so readers never wait
for a writer and writers of other processes take their turn (a 10 s busy timeout)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class SqliteFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    @property
    def con(self) -> sqlite3.Connection:
        """This thread's connection (made on its first use)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    def close(self) -> None:
        """This thread's connection closed (the others' are theirs to close)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
