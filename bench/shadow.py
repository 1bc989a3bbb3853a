#!/usr/bin/env python3
"""The shadow of a full day (issue 53): how long ``main.py backtest shadow`` takes for the
demo's strategies on the demo's recordings (goal: under 10 s, so the end-of-day report is
never late).

The day is traded first: the demo's stack (every strategy it enables, stocks and option
chains, paper on the simulator, the feed recording every tick) runs a whole session,
09:15 to 15:30, at ``--speed`` times the market's pace (about 3 minutes at 120). Then the
shadow of that day is timed: the router's journal and the recording read, each strategy
backtested over the day's ticks, the trades paired and the bridge made, as the command
does it. ``--reuse DIR`` times the shadow again on a day kept with ``--keep``.

    .venv/bin/python bench/shadow.py [--speed 120] [--keep]
    .venv/bin/python bench/shadow.py --reuse DIR   # a day kept with --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mytrading.commands.stack import bytecode_kept  # noqa: E402
from tests.procs import settings_of, stack_vars, temp_vars  # noqa: E402

DAY = date(2026, 11, 20)
SESSION_S = (15 * 60 + 31 - (9 * 60 + 15)) * 60  # market seconds from the open to 15:31


def demo_env(base: Path, speed: float) -> dict[str, str]:
    """The demo's stack (its strategies, stocks and chains) under ``base``, its market
    opening 30 s after now."""
    env = {
        **bytecode_kept(os.environ),
        **stack_vars(temp_vars(base, f"/tmp/mt-shadow-{os.getpid()}")),
    }
    for k in ("MT_STRATEGIES", "MT_SIM_STOCKS", "MT_STRATEGY_PARAMS"):  # the demo's own
        env.pop(k, None)
    env.update(
        MT_SIM_START=f"{DAY.isoformat()}T09:15",
        MT_SIM_SPEED=str(speed),
        MT_CLOCK_ANCHOR_NS=str(time.time_ns() + 30_000_000_000),
    )
    (base / "env.json").write_text(
        json.dumps({k: v for k, v in env.items() if k.startswith("MT_")})
    )
    return env


def trade_the_day(base: Path, speed: float) -> dict[str, str]:
    env = demo_env(base, speed)
    cli = [sys.executable, str(ROOT / "main.py")]
    r = subprocess.run([*cli, "start"], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"main.py start failed:\n{r.stdout}{r.stderr}")
    try:
        opens = int(env["MT_CLOCK_ANCHOR_NS"]) / 1e9
        wait = opens - time.time() + SESSION_S / speed
        print(f"trading {DAY} at {speed:g}x: {wait:.0f} s", flush=True)
        time.sleep(max(wait, 0))
    finally:
        subprocess.run([*cli, "stop"], env=env, capture_output=True, timeout=180)
    return env


def time_the_shadow(base: Path) -> int:
    env = json.loads((base / "env.json").read_text())
    s = settings_of(env)
    from mytrading.process.logsetup import quietly
    from mytrading.shadow.day import shadow_day
    from mytrading.stores.recording import connect

    con = connect(s.stores.record_db, read_only=True)
    ticks, instruments = con.execute(
        "SELECT count(*), count(DISTINCT symbol) FROM ticks WHERE CAST(ts AS DATE) = ?", [DAY]
    ).fetchone() or (0, 0)
    con.close()
    saved = dict(os.environ)
    os.environ.update(env)  # the strategies' files and parameters as the stack had them
    try:
        with quietly():
            t0, c0 = time.perf_counter(), time.process_time()
            got = shadow_day(s, DAY)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    b = got.stack()
    counts = {"matched": 0, "live_only": 0, "shadow_only": 0}
    for st in got.strategies.values():
        for k, n in st.counts().items():
            counts[k] += n
    print(f"the shadow of {DAY}: {len(got.strategies)} strategies "
          f"({', '.join(sorted(got.strategies))}), {ticks:,} recorded ticks of "
          f"{instruments} instruments")  # fmt: skip
    print(f"  {wall:.1f} s ({cpu:.1f} CPU-s); goal under 10 s")
    print(f"  decisions: {counts['matched']} matched, {counts['live_only']} live only, "
          f"{counts['shadow_only']} shadow only")  # fmt: skip
    r = b.rupees()
    print(f"  stack: live {r['live_net']:+,.2f} vs shadow {r['shadow_net']:+,.2f}")
    for st in sorted(got.strategies.values(), key=lambda x: x.name):
        print(f"    {st.line()}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--speed", type=float, default=120.0)
    ap.add_argument("--keep", action="store_true", help="keep the day's directory")
    ap.add_argument("--reuse", type=Path, help="a directory kept with --keep")
    a = ap.parse_args()
    if a.reuse:
        return time_the_shadow(a.reuse)
    base = Path(tempfile.mkdtemp(prefix="mt-shadow-"))
    try:
        trade_the_day(base, a.speed)
        return time_the_shadow(base)
    finally:
        if a.keep:
            print(f"kept: {base} (--reuse {base})")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
