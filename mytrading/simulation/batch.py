"""Many seeds on every core: ``python3 main.py simulate --seeds 200``.

Each worker process runs seeds one after another (``run.run_seed``) and hands back a
small result (no trace: a failing seed is replayed alone, ``--seed N``). The seeds are
independent, so the order they finish in changes nothing but the order of the lines.

String hashing is fixed for the whole run (``PYTHONHASHSEED=0``, set by the command
before anything else runs): a set of names iterates in the same order in every process,
so a seed replayed later makes the same day, and the same trace digest.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mytrading.simulation.invariants import Violation
from mytrading.simulation.run import SeedResult, run_seed, summary
from mytrading.simulation.stack import Options


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back of a seed."""

    seed: int
    day: str
    violations: list[Violation]
    orders: int
    fills: int
    faults: dict[str, int]
    checks: dict[str, int]
    seconds: float
    digest: str
    said: list[str] = field(default_factory=list)  # errors the daemons logged (a failing seed's)

    @property
    def ok(self) -> bool:
        return not self.violations


def workdir() -> Path:
    """Where seeds keep their files while they run: memory when the machine has it."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return base / f"mytrading-sim-{os.getpid()}"


_refdata: Any = None


def _one(seed: int, options: Options) -> Outcome:
    """In a worker: one seed, on the worker's reference data (loaded once)."""
    global _refdata
    if _refdata is None:
        from mytrading.domain.refdata import load_refdata
        from mytrading.settings import PROJECT_ROOT

        _refdata = load_refdata(PROJECT_ROOT / "config")
        # what lives as long as the worker (modules, reference data) is left out of the
        # cyclic collector's passes: a seed's collections took 9 % of its time, half of
        # it walking these objects again (measured with gc.callbacks, 10 seeds)
        gc.freeze()
        # (thawed at exit: DuckDB's extension counts frozen objects as leaks and says so
        # at length when the seeds ran in this process, as bench/simulate.py --jobs 1 does)
        atexit.register(gc.unfreeze)
    r = run_seed(seed, workdir(), _refdata, options)
    return outcome(r)


def outcome(r: SeedResult) -> Outcome:
    said = [f"{s.daemon}: {s.event}" for s in r.said][:20] if r.violations else []
    return Outcome(r.seed, r.day, r.violations, r.orders, r.fills, r.faults, r.checks,
                   r.seconds, r.digest, said)  # fmt: skip


def run_seeds(
    seeds: list[int], jobs: int, options: Options, on_done: Any = None
) -> tuple[list[Outcome], float]:
    """Every seed, on ``jobs`` processes (1: here); ``on_done(outcome)`` as each ends."""
    t0 = time.perf_counter()
    out: list[Outcome] = []
    if jobs <= 1:
        for s in seeds:
            o = _one(s, options)
            out.append(o)
            if on_done is not None:
                on_done(o)
    else:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_one, s, options) for s in seeds]
            for fut in as_completed(futures):
                o = fut.result()
                out.append(o)
                if on_done is not None:
                    on_done(o)
    with contextlib.suppress(OSError):
        shutil.rmtree(workdir(), ignore_errors=True)
    out.sort(key=lambda o: o.seed)
    return out, time.perf_counter() - t0


def report(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    return summary(outcomes, seconds)
