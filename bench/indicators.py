#!/usr/bin/env python3
"""Indicator speed: Supertrend on 1,000,000 bars (after compilation), against the openalgo
SDK's ``ta.supertrend`` measured in the same run, and the streaming cost per bar.

    .venv/bin/python bench/indicators.py

The SDK runs in a subprocess because importing it replaces ``numba.jit`` process-wide.
Each figure is the best of 7 runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mytrading.indicators import stream, vector  # noqa: E402

N = 1_000_000
SDK_TIMING = """
import time, numpy as np
from openalgo import ta
rng = np.random.default_rng(0)
n = {n}
c = 24500 + np.cumsum(rng.normal(0, 12, n))
h = c + rng.random(n) * 20
l = c - rng.random(n) * 20
ta.supertrend(h, l, c, 10, 3.0)
times = []
for _ in range(7):
    t = time.perf_counter()
    ta.supertrend(h, l, c, 10, 3.0)
    times.append(time.perf_counter() - t)
print(min(times))
"""


def best_of(fn, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    rng = np.random.default_rng(0)
    c = 24500 + np.cumsum(rng.normal(0, 12, N))
    h, lo = c + rng.random(N) * 20, c - rng.random(N) * 20
    vector.supertrend(h[:100], lo[:100], c[:100], 10, 3.0)  # compile (or load the cache)
    ours = best_of(lambda: vector.supertrend(h, lo, c, 10, 3.0))
    sdk = float(
        subprocess.run(
            [sys.executable, "-c", SDK_TIMING.format(n=N)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout.strip()
    )
    print(f"Supertrend(10, 3) on {N:,} bars, after compilation, best of 7")
    print(f"  mytrading.indicators.vector    {ours * 1e3:8.2f} ms   (goal <= 8 ms)")
    print(f"  openalgo.ta.supertrend (SDK)   {sdk * 1e3:8.2f} ms   ratio ours/SDK {ours / sdk:.2f}")
    print(
        "  vector SMA(20) / EMA(20) / RSI(14) / ATR(14): "
        + " / ".join(
            f"{best_of(f) * 1e3:.2f} ms"
            for f in (
                lambda: vector.sma(c, 20),
                lambda: vector.ema(c, 20),
                lambda: vector.rsi(c, 14),
                lambda: vector.atr(h, lo, c, 14),
            )
        )
    )
    m = 200_000
    print(f"streaming update, per bar (pure Python), {m:,} bars:  (goal <= 2 us)")
    for name, make in (
        ("SMA(20)", lambda: stream.SMA(20)),
        ("EMA(20)", lambda: stream.EMA(20)),
        ("RSI(14)", lambda: stream.RSI(14)),
        ("ATR(14)", lambda: stream.ATR(14)),
        ("Supertrend(10,3)", lambda: stream.Supertrend(10, 3.0)),
        ("BBands(20,2)", lambda: stream.BBands(20, 2.0)),
    ):
        hh, ll, cc = h[:m].tolist(), lo[:m].tolist(), c[:m].tolist()
        s = make()
        upd = s.update
        t = time.perf_counter()
        if name.startswith(("ATR", "Super")):
            for i in range(m):
                upd(hh[i], ll[i], cc[i])
        else:
            for i in range(m):
                upd(cc[i])
        print(f"  {name:<18} {(time.perf_counter() - t) / m * 1e6:6.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
