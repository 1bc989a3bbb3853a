#!/usr/bin/env python3
"""Why compiling stops at x1.5 (issue 54): a message's field read from compiled code.

The hot paths pass ``msgspec.Struct`` messages (``wire.Bar``, ``Order``, ``OrderUpdate``,
``Fill``). mypyc knows nothing of msgspec: a compiled function reads a Struct's field
through CPython's generic attribute lookup, where the interpreter (3.11) reads it with a
specialised slot instruction, and a field of a mypyc native class is a C struct member.
This writes a small module (a five-field bar as a Struct and as a plain class; make
300,000, then sum four fields of each), runs it interpreted, compiles it with mypyc in a
temporary directory (a few seconds) and runs it compiled, each three times, and prints the
medians in ns a bar.

    .venv/bin/python bench/struct_access.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

PROBE = textwrap.dedent(
    '''
    from __future__ import annotations

    import time

    import msgspec


    class StructBar(msgspec.Struct):
        open: float
        high: float
        low: float
        close: float
        volume: int


    class PlainBar:
        def __init__(self, open: float, high: float, low: float, close: float, volume: int) -> None:
            self.open = open
            self.high = high
            self.low = low
            self.close = close
            self.volume = volume


    def make_struct(n: int) -> list[StructBar]:
        return [StructBar(1.0, 2.0, 0.5, 1.5 + i, i) for i in range(n)]


    def make_plain(n: int) -> list[PlainBar]:
        return [PlainBar(1.0, 2.0, 0.5, 1.5 + i, i) for i in range(n)]


    def read_struct(bars: list[StructBar]) -> float:
        s = 0.0
        for b in bars:
            s += b.open + b.high + b.low + b.close
        return s


    def read_plain(bars: list[PlainBar]) -> float:
        s = 0.0
        for b in bars:
            s += b.open + b.high + b.low + b.close
        return s


    def run(n: int) -> list[float]:
        """ns a bar: make Struct, read Struct, make plain, read plain."""
        t0 = time.perf_counter_ns()
        xs = make_struct(n)
        t1 = time.perf_counter_ns()
        read_struct(xs)
        t2 = time.perf_counter_ns()
        ys = make_plain(n)
        t3 = time.perf_counter_ns()
        read_plain(ys)
        t4 = time.perf_counter_ns()
        return [(t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n, (t4 - t3) / n]
    '''
)

LABELS = ("make a Struct", "read 4 of its fields", "make a plain class", "read 4 of its fields")


def measure(where: Path, rounds: int = 3, n: int = 300_000) -> list[float]:
    """Each figure's median over ``rounds`` runs, each in a fresh process."""
    code = f"import structprobe, json; print(json.dumps(structprobe.run({n})))"
    runs = []
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=where, capture_output=True, text=True, check=True
        )
        runs.append([float(x) for x in out.stdout.strip()[1:-1].split(",")])
    return [statistics.median(col) for col in zip(*runs, strict=True)]


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        where = Path(d)
        (where / "structprobe.py").write_text(PROBE)
        interpreted = measure(where)
        built = subprocess.run(
            [sys.executable, "-m", "mypyc", "structprobe.py"],
            cwd=where, capture_output=True, text=True,
        )  # fmt: skip
        if built.returncode != 0:
            print(built.stdout[-2000:], built.stderr[-2000:])
            return 1
        compiled = measure(where)
    print("ns a bar (median of 3 runs, 300,000 bars)   interpreted   compiled (mypyc)")
    for label, i, c in zip(LABELS, interpreted, compiled, strict=True):
        print(f"  {label:<40} {i:9.0f}   {c:9.0f}")
    print(
        "a msgspec Struct's field read from compiled code costs "
        f"x{compiled[1] / interpreted[1]:.1f} its interpreted cost and "
        f"x{compiled[1] / compiled[3]:.1f} a native class's"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
