"""The shadow warms up as live did.

Live's engine, on an OpenAlgo broker, warms its strategies up from the broker's
``history`` when they start; the shadow warms up from the data before the day. On the
recording's first day there are none there, so the shadow started cold and decided later
than live (``cold_start``). Here what came before the recording's first bar of each
instrument comes from the history cache (``MT_HISTORY_DB``, what ``main.py data download``
fills), chained behind the recording (``EarlierFrom``); when a warm-up still ran short and
the stack trades through OpenAlgo, the cache is filled from the same ``history`` endpoint
live asked (resumable: a past day fetched once is not asked again) and the day is run
again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from mytrading.backtest.data import DuckBars, EarlierFrom, trading_days
from mytrading.domain.bars import TIMEFRAMES, BarBuilder
from mytrading.domain.refdata import IST, RefData
from mytrading.settings import Settings
from mytrading.stores.recording import COPY_BARS_DAYS, connect

SESSION_MINUTES = 375  # 09:15-15:30
Key = tuple[str, str]


def with_history(s: Settings, source: Any) -> Any:
    """``source`` with the history cache's bars for the days before it, when there is a
    cache."""
    if not s.stores.history_db.is_file() or not has_bars(s.stores.history_db):
        return source
    return EarlierFrom(source, DuckBars(s.stores.history_db, source.tf, name="history"))


def has_bars(path: Path) -> bool:
    """A cache with a bar in it (one a failed download made holds none)."""
    try:
        con = connect(path, read_only=True)
    except duckdb.Error:
        return False  # held by a writer, or no database: not read
    try:
        return con.execute("SELECT count(*) FROM (SELECT 1 FROM bars LIMIT 1)").fetchone() == (1,)
    except duckdb.Error:
        return False
    finally:
        con.close()


def wanted_days(
    short: Iterable[tuple[str, str, int, int, int]], watched: dict[str, set[Key]]
) -> dict[Key, int]:
    """Per instrument a short strategy's bars are of, how many trading days before the day
    its whole warm-up needs (a session is 375 minutes; at most the ``COPY_BARS_DAYS`` a
    day's copy of the recording keeps)."""
    out: dict[Key, int] = {}
    for strategy, tf, _got, asked, _at in short:
        minutes = asked * TIMEFRAMES.get(tf, SESSION_MINUTES * 60) / 60
        days = min(COPY_BARS_DAYS, math.ceil(minutes / SESSION_MINUTES) + 1)
        for key in watched.get(strategy, ()):
            out[key] = max(out.get(key, 0), days)
    return out


@dataclass
class Fetched:
    bars: int = 0
    days: int = 0
    errors: list[str] = field(default_factory=list)


def fetch_history(
    s: Settings,
    refdata: RefData,
    day: date,
    wants: dict[Key, int],
    fetch: Any = None,
    transport: Any = None,
) -> Fetched:
    """The 1-minute bars of the trading days before ``day`` that ``wants`` names, and of
    the day itself (its minutes before the recording began are where a stack started
    mid-session warmed up), from OpenAlgo's ``history`` into the history cache
    (``fetch``: the history function, the configured server's by default, over
    ``transport``: an ``httpx`` transport, the network's by default)."""
    from mytrading.backtest.download import HistoryInputError, download
    from mytrading.openalgo.history import http_history

    if fetch is None:
        fetch = http_history(
            s.rest_url(),
            s.api_key(),
            s.openalgo.timeout_s,
            lambda tf: BarBuilder(refdata.calendar, tf),
            transport=transport,
        )
    out = Fetched()
    today = datetime.now(IST).date()
    for (ex, sym), n in sorted(wants.items()):
        days = trading_days(refdata, ex, day - timedelta(days=3 * n + 10), day - timedelta(days=1))
        first = days[-n] if len(days) >= n else (days[0] if days else day)
        # the day itself too: a stack started mid-session warmed up on its earlier minutes
        try:
            got = download(s.stores.history_db, refdata, fetch, ex, sym, "1m", first, day,
                           today)  # fmt: skip
        except (HistoryInputError, duckdb.Error) as exc:  # the cache held by a download
            out.errors.append(f"{ex}:{sym}: the history cache {s.stores.history_db}: {exc}")
            break  # the same for every instrument
        out.bars += got.bars
        out.days += len(got.fetched)
        if got.error:
            out.errors.append(f"{ex}:{sym}: {got.error}")
            if not got.fetched:
                break  # the first call failed: the server is not there for the rest either
    return out
