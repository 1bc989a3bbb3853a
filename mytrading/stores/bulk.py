"""Rows into DuckDB in one statement, without pandas.

A daemon's writer thread (risk's events, the feed's recording) inserts batches of Python
tuples. Building a pandas frame for each made the insert bulk, but importing pandas put
about 60 MB into the daemon's resident memory at its first write, and the frame cost more
than the insert. Here each column is bound as one DuckDB list and ``unnest`` turns the
lists back into rows: one statement a batch, no pandas, no numpy, and about 40% less time
for 5,000 ticks on this machine (17 ms against 29 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# A column bound in nanoseconds since the epoch and stored as TIMESTAMPTZ (microseconds:
# floored, as pandas' datetime64[ns] is when DuckDB reads it).
NS = "NS"


def rows_select(columns: Sequence[tuple[str, str]]) -> str:
    """``SELECT`` of the bound batch: one ``(name, DuckDB type)`` per column, the type
    ``NS`` for a nanosecond time. Parameters are the columns in order (``columns_of``)."""
    parts = []
    for i, (name, kind) in enumerate(columns, start=1):
        if kind == NS:
            parts.append(f"make_timestamptz(unnest(${i}::BIGINT[]) // 1000) AS {name}")
        else:
            parts.append(f"unnest(${i}::{kind}[]) AS {name}")
    return "SELECT " + ", ".join(parts)


def columns_of(rows: Sequence[Sequence[Any]], n: int) -> list[list[Any]]:
    """The rows as ``n`` column lists (each row must have ``n`` values)."""
    bad = next((r for r in rows if len(r) != n), None)
    if bad is not None:
        raise ValueError(f"a row of {len(bad)} values for {n} columns: {bad!r}")
    if not rows:
        return [[] for _ in range(n)]
    return [list(c) for c in zip(*rows, strict=True)]
