"""Run seeds: one seed's day from start to the invariants at its end, and a batch of
them with a summary (``python3 main.py simulate``).

A seed's result is what the command prints and a test asserts on: the violations (each
naming its invariant, seed and step), what the day held (orders, fills, faults by kind,
invariants checked) and the trace's digest (the same seed twice, the same digest)."""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import shutil
import time
import traceback
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from mytrading.builder.templates import render
from mytrading.domain.refdata import RefData, load_refdata
from mytrading.settings import PROJECT_ROOT
from mytrading.simulation.faults import FaultSchedule, FeedFaults, full_disk_write
from mytrading.simulation.invariants import Invariants, Violation
from mytrading.simulation.operator import Operator
from mytrading.simulation.stack import START_ORDER, Options, Said, SimStack

if TYPE_CHECKING:
    from mytrading.shadow.day import ShadowDay

LAST_BEAT_S = 0.05  # before the day's end (wall seconds): every daemon's status sent
SETTLE_S = 8.0  # wall seconds from the last fault to the day's end: an unknown order found absent
LAST_STEP = dtime(15, 24)  # the market's last move: the day goes quiet after it
DAY_END = dtime(15, 29, 50)  # the checks of the day's end (the clock rolls at 15:30)


@dataclass
class SeedResult:
    seed: int
    day: str
    violations: list[Violation]
    orders: int
    fills: int
    faults: dict[str, int]
    checks: dict[str, int]
    seconds: float
    digest: str
    steps: int
    said: list[Said] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    shadow: ShadowDay | None = None  # the day's shadow (``Options.record``)

    @property
    def ok(self) -> bool:
        return not self.violations


def shared_strategies(workdir: Path) -> Path:
    """The example strategies and a builder template in one directory, made once for a
    batch: the engine imports a strategy's file once per process."""
    out = workdir / "strategies"
    if not out.exists():
        shutil.copytree(PROJECT_ROOT / "strategies", out)
        (out / "t_strangle.toml").write_text(render("t_strangle", "strangle"))
    return out


@contextlib.contextmanager
def captured(stack: SimStack, level: int) -> Iterator[None]:
    """The daemons' log lines at ``level`` and above kept on the stack (what an operator
    would read), the rest dropped at the call; the caller's configuration restored."""
    before = structlog.get_config()

    def keep(_: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        host = stack.current
        what = str(event.pop("event", ""))
        if event.pop("exc_info", None):
            event["traceback"] = traceback.format_exc()[-1500:]
        stack.said.append(Said(stack.world.now_ns, host.name if host else "-", what,
                               {k: str(v)[:2000] for k, v in event.items()}))  # fmt: skip
        raise structlog.DropEvent

    structlog.configure(
        processors=[keep],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**before)


def run_seed(
    seed: int,
    workdir: Path,
    refdata: RefData | None = None,
    options: Options | None = None,
    keep: bool = False,
) -> SeedResult:
    """One seed's day. ``keep``: leave its directory (state, journal) for a look."""
    options = options or Options()
    refdata = refdata or load_refdata(PROJECT_ROOT / "config")
    t0 = time.perf_counter()
    shared = shared_strategies(workdir)
    stack = SimStack(seed, workdir, refdata, shared, options)
    level = logging.WARNING if options.trace_full else logging.ERROR
    try:
        with stack.world, captured(stack, level):
            result = _run(stack)
    finally:
        if not keep:
            shutil.rmtree(stack.dir, ignore_errors=True)
    result.seconds = time.perf_counter() - t0
    return result


def _run(stack: SimStack) -> SeedResult:
    import random

    options = stack.options
    day_s = _wall_s(stack, DAY_END)
    stack.invariants = Invariants(stack)
    stack.feed_faults = FeedFaults(stack, random.Random(stack.rng.random()))
    stack.disk_full = False
    stack.journal_write = full_disk_write(stack)
    n_faults = stack.rng.randrange(10, 17) if options.faults else 0
    # faults end at 15:05, and early enough for what they leave to settle in the wall
    # seconds the daemons' own timers take (at 240x, 15:05 is 6 s of wall from the close)
    faults_end = min(_wall_s(stack, dtime(15, 5)), day_s - SETTLE_S)
    stack.faults = FaultSchedule(stack, random.Random(stack.rng.random()), n_faults,
                                 faults_end)  # fmt: skip
    stack.clock_offset_s = next(
        (float(f.detail) for f in stack.faults.faults if f.kind == "clock_offset"), 0.0
    )
    top_up = _wall_s(stack, dtime(14, 51)), _wall_s(stack, dtime(14, 59))  # entries end 15:00
    stack.operator = Operator(stack, random.Random(stack.rng.random()), day_s, top_up,
                              _wall_s(stack, dtime(9, 40)))  # fmt: skip
    stack.operator.webhook()
    world = stack.world
    for i, name in enumerate(START_ORDER):
        world.after(0.05 * i, functools.partial(stack.start_daemon, name))
    if options.faults:
        stack.faults.arm()
    if options.operator:
        stack.operator.arm()
    for at_s, act in options.script:
        world.after(at_s, functools.partial(act, stack))
    last_step = _wall_s(stack, LAST_STEP)

    def step(due_s: float) -> None:
        stack.market_step()
        nxt = due_s + options.step_s
        if nxt < last_step:
            world.after(options.step_s, lambda: step(nxt))

    world.after(options.step_s / 2, lambda: step(options.step_s / 2))
    end_ns = world.start_ns + int(day_s * 1e9)
    world.run_until(end_ns - int(LAST_BEAT_S * 1e9))
    # what the morning check reads is each daemon's status as it is at the end, not its
    # last beat's (seed 48: two unknown orders resolved a second before the end, said)
    for name, core in stack.cores.items():
        if stack.alive(name):
            stack.hosts[name].run(core.heartbeat)
    world.run_until(end_ns)
    stack.invariants.day_end()
    inv = stack.invariants
    shadow = day_shadow(stack) if options.record else None
    return SeedResult(
        seed=stack.seed,
        day=stack.day.isoformat(),
        violations=list(inv.violations),
        orders=inv.orders,
        fills=inv.fills,
        faults=dict(stack.faults.injected),
        checks=dict(inv.checks),
        seconds=0.0,
        digest=world.trace.hexdigest(),
        steps=world.steps,
        said=list(stack.said),
        trace=list(world.trace.lines),
        shadow=shadow,
    )


def day_shadow(stack: SimStack) -> ShadowDay:
    """The day's shadow (``main.py backtest shadow``) of the seed's day, as after a real
    close: the feed stopped (its recording written and let go), risk's events stored in
    its DuckDB file, then the shadow read from the stack's own files."""
    from mytrading.shadow.day import shadow_day
    from mytrading.simulation.stack import mt_environ

    for name in ("feed", "risk", "engine", "router"):
        stack.stop_daemon(name)
    stack.events.store(stack.settings.stores.risk_db)
    stack.main.faults = type(stack.main.faults)()  # the broker's bad day is over
    with mt_environ(stack.env):
        return shadow_day(stack.settings, stack.day,
                          transport=stack.transport(stack.main.rest_url))  # fmt: skip


def _wall_s(stack: SimStack, at: dtime) -> float:
    """Wall seconds from the open to ``at`` of the seed's day, at the seed's speed, the
    skipped midday left out."""

    def s(t: dtime) -> float:
        day = stack.day
        return (datetime.combine(day, t) - datetime.combine(day, dtime(9, 15))).total_seconds()

    market = s(at)
    skip = stack.settings.sim.skipped()
    if skip is not None and at > skip[0]:
        market -= s(min(at, skip[1])) - s(skip[0])
    return market / stack.speed


def summary(results: Sequence[Any], seconds: float) -> dict[str, Any]:
    """A batch of seeds (``SeedResult`` or the worker's ``Outcome``) in figures."""
    faults: collections.Counter[str] = collections.Counter()
    checks: collections.Counter[str] = collections.Counter()
    for r in results:
        faults.update(r.faults)
        checks.update(r.checks)
    return {
        "seeds": len(results),
        "failed": [r.seed for r in results if not r.ok],
        "days": len(results),
        "orders": sum(r.orders for r in results),
        "fills": sum(r.fills for r in results),
        "faults": dict(sorted(faults.items())),
        "faults_total": sum(faults.values()),
        "checks": dict(sorted(checks.items())),
        "checks_total": sum(checks.values()),
        "seconds": round(seconds, 2),
        # the thinnest day of the batch: every seed is meant to carry at least 20 orders
        # and 10 faults (tests/simulation keeps it so)
        "fewest_orders": min((r.orders for r in results), default=0),
        "fewest_faults": min((sum(r.faults.values()) for r in results), default=0),
        "seed_seconds": round(sum(r.seconds for r in results), 2),  # each seed, summed
    }
