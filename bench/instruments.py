#!/usr/bin/env python3
"""Master contract sync and lookup, at the size of a real NSE+NFO+BSE+BFO file.

Generates ~100,000 rows as OpenAlgo's ``instruments`` returns them
(``mytrading/master/synthetic.py``), then times, best of ``--rounds``:

1. the first sync into an empty DuckDB file: normalize, check, store;
2. the daily sync: the same again, compared with the file in force;
3. loading the index the daemons use (DuckDB -> a dict keyed by exchange and symbol);
4. one lookup by (exchange, symbol), over a million random keys.

    .venv/bin/python bench/instruments.py [--rounds 3]

Goal (issue 15): sync and index <= 3 s; a lookup <= 5 us. The issue's feed figure (200
subscribed symbols, >= 20,000 ticks/s with recording) is not measured here yet.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mytrading.master.store import MasterIndex, MasterStore  # noqa: E402
from mytrading.master.sync import sync_rows  # noqa: E402
from mytrading.master.synthetic import master_rows  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rows = master_rows()
    first, daily, index = [], [], []
    for _ in range(args.rounds):
        path = Path(tempfile.mkdtemp(prefix="mtbench-master-")) / "m.duckdb"
        store = MasterStore(path)
        t0 = time.perf_counter()
        r1 = sync_rows(store, rows, date(2026, 11, 20), "bench")
        first.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r2 = sync_rows(store, rows, date(2026, 11, 23), "bench")
        daily.append(time.perf_counter() - t0)
        store.close()
        assert r1.accepted and r2.accepted, (r1.verdict, r2.verdict)
        t0 = time.perf_counter()
        idx = MasterIndex.load(path)
        index.append(time.perf_counter() - t0)
    assert idx is not None
    keys = list(idx.contracts)
    rnd = random.Random(1)
    probe = [keys[rnd.randrange(len(keys))] for _ in range(1_000_000)]
    get = idx.get
    t0 = time.perf_counter()
    for ex, sym in probe:
        get(ex, sym)
    per_lookup_us = (time.perf_counter() - t0) / len(probe) * 1e6
    print(f"master contract: {len(rows):,} rows generated, {r2.rows:,} contracts in force")
    print(f"  first sync (normalize, check, store)   best {min(first):.2f} s  runs {_s(first)}")
    print(
        f"  daily sync (compared with the one in force) best {min(daily):.2f} s  runs {_s(daily)}"
    )
    print(f"  index load (DuckDB -> dict)            best {min(index):.2f} s  runs {_s(index)}")
    total = min(daily) + min(index)
    print(
        f"  daily sync + index: {total:.2f} s (goal <= 3 s: {'met' if total <= 3 else 'NOT met'})"
    )
    print(
        f"  lookup by (exchange, symbol): {per_lookup_us:.3f} us "
        f"(goal <= 5 us: {'met' if per_lookup_us <= 5 else 'NOT met'})"
    )
    return 0


def _s(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


if __name__ == "__main__":
    sys.exit(main())
