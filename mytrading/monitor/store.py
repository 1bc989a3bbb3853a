"""The alerts' own SQLite file (``MT_ALERTS_DB``, WAL): every alert, its delivery to each
channel, and the conditions on now, so a restarted monitor neither loses an alert nor
says one again.

An alert and its deliveries are written in one transaction before anything is sent; a
delivery is marked sent as soon as its channel answered. A monitor killed between the
channel's answer and that write sends that one message again when it comes back (the
message carries the alert's number, ``#id``, for a receiver that wants to drop repeats):
the only way a message goes twice, and never a way one is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mytrading.stores.schema import ensure
from mytrading.stores.sqlite import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, rule TEXT NOT NULL, key TEXT NOT NULL,
    severity TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id INTEGER NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL, sent_at REAL,
    error TEXT NOT NULL DEFAULT '', PRIMARY KEY (alert_id, channel)
);
CREATE INDEX IF NOT EXISTS pending ON deliveries (state, next_try);
CREATE TABLE IF NOT EXISTS active (
    rule TEXT NOT NULL, key TEXT NOT NULL, since REAL NOT NULL, last_said REAL NOT NULL,
    said INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (rule, key)
);
CREATE TABLE IF NOT EXISTS last_message (
    rule TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (rule, key)
);
"""


@dataclass
class Active:
    since: float
    last_said: float
    said: bool
    text: str


@dataclass(frozen=True)
class Due:
    alert_id: int
    channel: str
    attempts: int
    severity: str
    text: str


class AlertStore(SqliteFile):
    """One connection per thread that uses it (the monitor's loop, the sender, a CLI)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path)
        con = self.con
        con.executescript(SCHEMA)
        ensure(con, "alerts")

    # ----------------------------------------------------------------- alerts

    def add(
        self,
        created: float,
        rule: str,
        key: str,
        severity: str,
        kind: str,
        text: str,
        channels: list[str],
    ) -> int:
        """The alert and a pending delivery per channel, in one transaction."""
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            cur = con.execute(
                "INSERT INTO alerts (created, rule, key, severity, kind, text) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (created, rule, key, severity, kind, text),
            )
            aid = int(cur.lastrowid or 0)
            con.executemany(
                "INSERT INTO deliveries (alert_id, channel, state, next_try) "
                "VALUES (?, ?, 'pending', ?)",
                [(aid, ch, created) for ch in channels],
            )
            con.execute(
                "INSERT INTO last_message (rule, key, at) VALUES (?, ?, ?) "
                "ON CONFLICT (rule, key) DO UPDATE SET at = excluded.at",
                (rule, key, created),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return aid

    def due(self, now: float, limit: int = 50) -> list[Due]:
        rows = self.con.execute(
            "SELECT d.alert_id, d.channel, d.attempts, a.severity, a.text FROM deliveries d "
            "JOIN alerts a ON a.id = d.alert_id WHERE d.state = 'pending' AND d.next_try <= ? "
            "ORDER BY d.alert_id LIMIT ?",
            (now, limit),
        ).fetchall()
        return [Due(*r) for r in rows]

    def sent(self, alert_id: int, channel: str, now: float) -> None:
        self.con.execute(
            "UPDATE deliveries SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
            "error = '' WHERE alert_id = ? AND channel = ?",
            (now, alert_id, channel),
        )

    def failed(self, alert_id: int, channel: str, error: str, next_try: float) -> None:
        self.con.execute(
            "UPDATE deliveries SET attempts = attempts + 1, error = ?, next_try = ? "
            "WHERE alert_id = ? AND channel = ?",
            (error[:300], next_try, alert_id, channel),
        )

    def given_up(self, alert_id: int, channel: str, error: str) -> None:
        """A delivery that is not to be tried again (``alerts test``)."""
        self.con.execute(
            "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, error = ? "
            "WHERE alert_id = ? AND channel = ?",
            (error[:300], alert_id, channel),
        )

    def last_id(self) -> int:
        return int(self.con.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0])

    def pending(self) -> int:
        return int(
            self.con.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[
                0
            ]
        )

    def prune(self, before: float) -> int:
        """Retention: alerts created before ``before`` (wall seconds) and their deliveries,
        except deliveries still pending; how many alerts went."""
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(
                "DELETE FROM deliveries WHERE state != 'pending' AND alert_id IN "
                "(SELECT id FROM alerts WHERE created < ?)",
                (before,),
            )
            n = con.execute(
                "DELETE FROM alerts WHERE created < ? AND id NOT IN "
                "(SELECT alert_id FROM deliveries)",
                (before,),
            ).rowcount
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        return n

    def log(self, limit: int = 50) -> list[dict]:
        """The latest alerts, newest first, with each channel's delivery."""
        alerts = self.con.execute(
            "SELECT id, created, rule, key, severity, kind, text FROM alerts "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        out = []
        for aid, created, rule, key, sev, kind, text in alerts:
            dl = self.con.execute(
                "SELECT channel, state, attempts, sent_at, error FROM deliveries "
                "WHERE alert_id = ? ORDER BY channel",
                (aid,),
            ).fetchall()
            out.append(
                {
                    "id": aid,
                    "created": created,
                    "rule": rule,
                    "key": key,
                    "severity": sev,
                    "kind": kind,
                    "text": text,
                    "deliveries": [
                        {"channel": c, "state": s, "attempts": n, "sent_at": t, "error": e}
                        for c, s, n, t, e in dl
                    ],
                }
            )
        return out

    def counts(self) -> dict[tuple[str, str], int]:
        """Alerts so far by (rule, kind)."""
        rows = self.con.execute("SELECT rule, kind, count(*) FROM alerts GROUP BY rule, kind")
        return {(r, k): int(n) for r, k, n in rows}

    # ------------------------------------------------------- alerting state

    def last_message(self, rule: str, key: str) -> float:
        row = self.con.execute(
            "SELECT at FROM last_message WHERE rule = ? AND key = ?", (rule, key)
        ).fetchone()
        return float(row[0]) if row else 0.0

    def load_active(self) -> dict[tuple[str, str], Active]:
        rows = self.con.execute("SELECT rule, key, since, last_said, said, text FROM active")
        return {(r, k): Active(s, ls, bool(sd), t) for r, k, s, ls, sd, t in rows}

    def save_active(self, active: dict[tuple[str, str], Active]) -> None:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("DELETE FROM active")
            con.executemany(
                "INSERT INTO active (rule, key, since, last_said, said, text) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(r, k, a.since, a.last_said, int(a.said), a.text) for (r, k), a in active.items()],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
