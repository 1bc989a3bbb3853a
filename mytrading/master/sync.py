"""``instruments sync``: the broker's master contract through OpenAlgo into DuckDB.

One ``GET /api/v1/instruments?exchange=..`` per exchange (the SDK's ``instruments()``
loops the same way), normalized (``contract.py``), compared with the file in force
(``check.py``) and put in force only if it passes. A sync that fails, returns nothing or
disagrees wildly is refused with an ALERT naming why, and the file in force stays.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from mytrading.master.check import Verdict, compare
from mytrading.master.contract import MasterError, normalize
from mytrading.master.store import MasterStore

EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "NSE_INDEX", "BSE_INDEX")


@dataclass
class SyncResult:
    accepted: bool
    rows: int
    seconds: float
    verdict: Verdict
    skipped: dict[str, int] = field(default_factory=dict)
    in_paise: bool = False
    per_exchange: dict[str, int] = field(default_factory=dict)


def fetch(host: str, api_key: str, exchange: str, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """One exchange's rows, or MasterError with the reason (never the key)."""
    query = urllib.parse.urlencode({"apikey": api_key, "exchange": exchange, "format": "json"})
    url = f"{host.rstrip('/')}/api/v1/instruments?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise MasterError(f"instruments {exchange}: HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise MasterError(f"instruments {exchange}: {type(exc).__name__}: {exc}") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        message = body.get("message") if isinstance(body, dict) else "not a JSON object"
        raise MasterError(f"instruments {exchange}: {message}")
    data = body.get("data")
    if not isinstance(data, list):
        raise MasterError(f"instruments {exchange}: data is not a list")
    return data


def sync_rows(
    store: MasterStore,
    rows: list[dict[str, Any]] | pd.DataFrame,
    day: date,
    source: str,
    force: bool = False,
) -> SyncResult:
    """Check ``rows`` against the file in force and put them in force if they pass (or
    ``force``). A refusal is recorded, and the file in force stays."""
    t0 = time.perf_counter()
    try:
        parsed = normalize(rows)
    except MasterError as exc:
        verdict = Verdict(False, [str(exc)])
        store.refuse(day, source, len(rows), verdict)
        return SyncResult(False, len(rows), time.perf_counter() - t0, verdict)
    verdict = compare(parsed.frame, store.current())
    if parsed.in_paise:
        verdict.notes.append("tick sizes were in paise: divided by 100")
    if parsed.skipped:
        verdict.notes.append(f"rows skipped by instrument type: {parsed.skipped}")
    if parsed.refused:
        verdict.notes.append(
            f"rows refused: {parsed.refused} (first: {'; '.join(parsed.examples)})"
        )
    if force and not verdict.ok:
        verdict.notes.append(f"accepted by --force despite: {'; '.join(verdict.reasons)}")
        verdict.ok, verdict.reasons = True, []
    frame = parsed.frame
    if verdict.ok:
        store.replace(frame, day, source, verdict)
    else:
        store.refuse(day, source, len(frame), verdict)
    per = frame.groupby("exchange").size().to_dict() if len(frame) else {}
    return SyncResult(
        verdict.ok,
        len(frame),
        time.perf_counter() - t0,
        verdict,
        parsed.skipped,
        parsed.in_paise,
        {str(k): int(v) for k, v in per.items()},
    )


def sync(
    path: Path,
    host: str,
    api_key: str,
    day: date,
    exchanges: tuple[str, ...] = EXCHANGES,
    force: bool = False,
    timeout_s: float = 60.0,
) -> SyncResult:
    """Download every exchange's file and sync it; a failed download refuses the sync."""
    store = MasterStore(path)
    try:
        rows: list[dict[str, Any]] = []
        for ex in exchanges:
            try:
                got = fetch(host, api_key, ex, timeout_s)
            except MasterError as exc:
                verdict = Verdict(False, [str(exc)])
                store.refuse(day, host, len(rows), verdict)
                return SyncResult(False, len(rows), 0.0, verdict)
            rows.extend(got)
        return sync_rows(store, rows, day, host, force)
    finally:
        store.close()


def daily(settings: Any, today: date) -> str:
    """The sync ``start`` and ``run`` do before the daemons load their reference data:
    once per trading day, against a real OpenAlgo (the simulator's contracts are
    config/'s). Never stops a start: a refused or failed sync leaves the file in force (or
    instruments.toml alone) and says so. Returns the line to show."""
    if not settings.stores.instruments_sync_at_start:
        return "master contract: sync at start is off (MT_INSTRUMENTS_SYNC_AT_START)"
    if settings.broker != "openalgo" or settings.sim_server:
        return "master contract: the simulator's contracts come from config/ (no sync)"
    if settings.stores.instruments_db.exists():
        store = MasterStore(settings.stores.instruments_db, read_only=True)
        try:
            last = store.last_accepted_day()
        finally:
            store.close()
        if last == today:
            return f"master contract: synced today already ({settings.stores.instruments_db})"
    try:
        r = sync(settings.stores.instruments_db, settings.rest_url(), settings.api_key(), today)
    except Exception as exc:  # never stops a start: the file in force stays
        return (
            "ALERT: master contract sync failed, the file in force (or instruments.toml) "
            f"stays: {type(exc).__name__}: {exc}"
        )
    if r.accepted:
        return f"master contract: {r.rows} contracts synced in {r.seconds:.1f} s"
    return (
        "ALERT: master contract sync refused, the file in force (or instruments.toml) "
        f"stays: {'; '.join(r.verdict.reasons)}"
    )
