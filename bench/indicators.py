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
    line, d = np.empty(N), np.empty(N)
    loop = best_of(lambda: vector._supertrend_into(h, lo, c, 10, 3.0, line, d))
    print(
        f"    of which the loop alone         {loop * 1e3:8.2f} ms"
        " (outputs reused; the rest is allocating and faulting in 16 MB of output)"
    )
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
        ("MACD(12,26,9)", lambda: stream.MACD(12, 26, 9)),
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
    dispatch(c)
    return 0


def dispatch(prices: np.ndarray, strategies: int = 10, ticks: int = 100_000) -> None:
    """Engine dispatch: the runner that the engine daemon drives, with ``strategies``
    strategies each subscribed to the future's ticks (an EMA update per tick) and to its
    1-minute bars (an RSI update per bar); one tick per market second. No sockets: the
    bus's own cost is measured by bench/latency.py and bench/feed_throughput.py."""
    from datetime import datetime

    from mytrading.domain.refdata import IST, load_refdata
    from mytrading.engine.runner import StrategyRunner
    from mytrading.engine.strategy import BaseStrategy
    from mytrading.messaging import wire

    fut = "NIFTY23NOV26FUT"

    class Busy(BaseStrategy):
        def on_start(self) -> None:
            self.ema = stream.EMA(20)
            self.add_indicator("RSI", period=14)
            self.subscribe_ticks("NFO", fut)
            self.subscribe_bars("NFO", fut, "1m")

        def on_tick(self, tick: wire.Tick) -> None:
            self.ema.update(tick.ltp)

    t0 = int(datetime(2026, 11, 20, 9, 15, tzinfo=IST).timestamp()) * 1_000_000_000
    now = [t0]
    runner = StrategyRunner(
        load_refdata(ROOT / "config"),
        lambda: now[0],
        lambda: datetime.fromtimestamp(now[0] / 1e9, IST),
        lambda intent: None,
        lambda ex, sym: None,
        run_id="bench",
    )
    for i in range(strategies):
        runner.add(type(f"Busy{i}", (Busy,), {"name": f"busy{i}"}), {})
    runner.start()
    tape = [
        wire.Tick(
            exchange="NFO",
            symbol=fut,
            ltp=float(p),
            bid=float(p),
            ask=float(p),
            bid_qty=0,
            ask_qty=0,
            volume=i,
            exch_ns=t0 + i * 1_000_000_000,
        )
        for i, p in enumerate(prices[:ticks])
    ]
    on_tick, poll = runner.on_tick, runner.poll
    t = time.perf_counter()
    for i, tick in enumerate(tape):
        now[0] = tick.exch_ns
        on_tick(tick)
        if i % 20 == 0:
            poll()  # the engine polls every 50 ms of wall time; here every 20 ticks
    el = time.perf_counter() - t
    bars = sum(len(s.bars("NFO", fut)) for s in runner.strategies.values())
    print(f"engine dispatch, {strategies} strategies on one future's ticks and 1m bars:")
    print(
        f"  {ticks / el:,.0f} ticks/s = {ticks * strategies / el:,.0f} hook calls/s "
        f"({el / ticks * 1e6:.1f} us per tick for all {strategies}; {bars:,} bars delivered)"
    )


if __name__ == "__main__":
    sys.exit(main())
