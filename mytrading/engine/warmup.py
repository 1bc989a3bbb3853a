"""A strategy's bars before its first live one: warm-up from OpenAlgo's ``history``, and a
first live bar that began before the engine (partial) swapped for the broker's whole copy.

Each ``(strategy, exchange, symbol, timeframe)`` that asks for a warm-up is a ``WarmUp``
job: its history is fetched off the loop (``PacedFetcher``: OpenAlgo answers history about
three calls a second) or inline (backtests, tests), tried for about 30 s; meanwhile the
live bars for it wait in the job (``held``). Then the history bars before the first live
one are handed marked ``warming_up``, then the live bars that waited, the first swapped
for history's copy. A live bar at or before the last one the warm-up handed is not handed
again (``joined``: a feed behind our clock brings, as its first live minutes, minutes
history already had).

A part the runner (``engine/runner.py``) composes; it hands bars to a strategy through
the runner's hook call (``WarmUpPorts``)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

from mytrading import hosttime
from mytrading.domain.bars import TIMEFRAMES, BarBuilder, lookback_start
from mytrading.domain.refdata import RefData
from mytrading.engine.context import StrategyContext
from mytrading.engine.continuous import continuous
from mytrading.engine.warmlog import Handed
from mytrading.messaging import wire
from mytrading.openalgo.history import HistoryError, HistoryFn
from mytrading.openalgo.paced import Fetcher

log = structlog.get_logger("engine")

WARMUP_ATTEMPTS = 15  # history tried for ~30 s (the server may still be starting)
WARMUP_RETRY_S = 2.0
WARMUP_HOLD_MAX = 10_000  # live bars held per pending warm-up
# How long a first live bar, partial, waits for the broker's whole copy before it is handed
# as it is. History comes about three calls a second: after a start with 2,041 instruments
# subscribed, the last first bar waited 12 minutes for its turn and every later bar of
# that instrument with it (bench/scale.py, 2026-11-28). A few seconds lets the first
# dozen swap and never holds a strategy's bars behind the broker's pacing.
FIRST_BAR_WAIT_S = 5.0

JobKey = tuple[str, str, str, str]  # (strategy, exchange, symbol, timeframe)


@dataclass
class WarmUp:
    """A pending warm-up: live bars wait in ``held`` until history has been delivered.

    ``count`` 0 is no warm-up but the first live bar, partial, waiting for the broker's
    complete copy (asked once: if it does not come, the partial bar goes on)."""

    strategy: str
    exchange: str
    symbol: str
    tf: str
    count: int
    attempts: int = 0
    next_try: float = 0.0  # hosttime.monotonic()
    held: list[wire.Bar] = field(default_factory=list)
    future: Future[list[wire.Bar]] | None = None  # the fetcher's call under way
    made: float = field(default_factory=hosttime.monotonic)


class WarmUpPorts(Protocol):
    """What the warm-ups ask of the runner that composes them."""

    def call(self, name: str, kind: str, fn: Callable[..., Any], *args: Any) -> None:
        """A strategy's hook, under the runner's deadline and error counting."""
        ...

    def context(self, name: str) -> StrategyContext: ...

    def params(self, name: str) -> Any:
        """The strategy's parameters (``roll_days``: a future warms up continuous)."""
        ...

    def builder(self, tf: str) -> BarBuilder: ...

    def failed(self, name: str) -> None:
        """A warm-up given up: counted against the strategy."""
        ...


class WarmUps:
    def __init__(
        self,
        refdata: RefData,
        history: HistoryFn | None,
        fetcher: Fetcher | None,
        now_ns: Callable[[], int],
        now: Callable[[], datetime],
        mode: str,
        ports: WarmUpPorts,
    ) -> None:
        self.refdata = refdata
        self.history = history
        self.fetcher = fetcher  # None: history is asked for in the loop (backtests, tests)
        self._now_ns = now_ns
        self._now = now
        self.mode = mode
        self.ports = ports
        self.jobs: dict[JobKey, WarmUp] = {}
        self.partial: set[tuple[str, str, str]] = set()  # first live bar not yet closed
        # (strategy, exchange, symbol, tf) -> start of the last bar its warm-up handed: a
        # live bar at or before it is not handed again (a late feed's first live minutes
        # are ones history already had)
        self.joined: dict[JobKey, int] = {}
        # warm-ups that found fewer bars than asked: (strategy, tf, bars, asked, when):
        # the strategy started short of its history (a backtest on a recording that
        # begins that day: the day's shadow says so)
        self.short: list[tuple[str, str, int, int, int]] = []
        # per strategy, the longest market time its warm-ups asked (count x timeframe,
        # ns): how far back a bar can still steer its indicators (the day's shadow)
        self.memory_ns: dict[str, int] = {}
        self.partial_kept = 0  # first live bars handed partial: the broker's copy was late
        self.handed: list[Handed] = []  # warm-ups handed, for the engine's record (live)

    def want(self, strategy: str, exchange: str, symbol: str, tf: str, count: int) -> bool:
        """A strategy's subscription asks ``count`` bars of warm-up; True if a job was
        made (False: none asked, or no history source: it starts cold)."""
        if count <= 0:
            return False
        span = count * TIMEFRAMES.get(tf, 86_400) * 1_000_000_000
        self.memory_ns[strategy] = max(self.memory_ns.get(strategy, 0), span)
        if self.history is None:
            log.warning("no history source: strategy starts cold", strategy=strategy)
            return False
        self.jobs[(strategy, exchange, symbol, tf)] = WarmUp(strategy, exchange, symbol, tf, count)
        return True

    def first_live(self, bar: wire.Bar, names: list[str]) -> wire.Bar:
        """A bar closed for subscribers ``names``: the first of its kind since the engine
        started began before it, so it is partial: it waits for the broker's copy (off
        the loop), or is swapped for it now (a pending warm-up's replay swaps it itself)."""
        key = (bar.exchange, bar.symbol, bar.tf)
        if key not in self.partial:
            return bar
        self.partial.discard(key)
        if self.fetcher is not None and self.history is not None:
            for n in names:
                self.jobs.setdefault((n, *key), WarmUp(n, *key, 0))
        elif not all((n, *key) in self.jobs for n in names):
            bar = self.complete(bar)
        return bar

    def hold(self, name: str, bar: wire.Bar) -> bool:
        """True when ``name``'s warm-up for the bar's instrument is pending: the bar waits
        in the job (handed after the history before it)."""
        job = self.jobs.get((name, bar.exchange, bar.symbol, bar.tf))
        if job is None:
            return False
        if not job.held and self.mode != "backtest":  # on record as it begins (warmlog)
            now = self._now_ns()
            self.handed.append(Handed(name, bar.exchange, bar.symbol, bar.tf, now, 0,
                                      job.count, 0, bar.start_ns, 0, "", begun=True))  # fmt: skip
        if len(job.held) < WARMUP_HOLD_MAX:
            job.held.append(bar)
        return True

    def handed_already(self, name: str, bar: wire.Bar) -> bool:
        """True for a live bar the strategy's warm-up already handed from history (a
        feed behind our clock brings minutes history had when the warm-up ran); the
        first live bar after them ends the check."""
        key = (name, bar.exchange, bar.symbol, bar.tf)
        last = self.joined.get(key)
        if last is None:
            return False
        if bar.start_ns <= last:
            log.info("live bar already handed by the warm-up", strategy=name,
                     symbol=bar.symbol, tf=bar.tf, start_ns=bar.start_ns)  # fmt: skip
            return True
        del self.joined[key]
        return False

    def complete(self, bar: wire.Bar) -> wire.Bar:
        """The first live bar started before the engine: take the broker's if it has it."""
        if self.history is None:
            return bar
        day = self._now().date()
        try:
            rows = self.history(bar.exchange, bar.symbol, bar.tf, day, day)
        except HistoryError as exc:
            log.warning("partial first bar kept", symbol=bar.symbol, reason=str(exc))
            return bar
        for b in rows:
            if b.start_ns == bar.start_ns:
                return b
        log.info("partial first bar kept: not in history yet", symbol=bar.symbol, tf=bar.tf)
        return bar

    def run(self) -> None:
        """Every job whose history has come (or can be asked now): replayed."""
        wall = hosttime.monotonic()
        as_is: list[str] = []
        for key, job in list(self.jobs.items()):
            if job.future is not None:
                if job.count == 0 and (
                    job.future.cancelled()  # another subscriber's wait gave up this call
                    or (not job.future.done() and wall - job.made >= FIRST_BAR_WAIT_S)
                ):
                    self._first_bar_as_is(key, job)
                    as_is.append(job.symbol)
                    continue
                if not job.future.done():
                    continue
                fut, job.future = job.future, None
                try:
                    bars = fut.result()
                except Exception as exc:
                    if not self._failed(job, exc, wall):
                        continue
                    bars = []
            elif wall < job.next_try:
                continue
            else:
                job.attempts += 1
                call_key, call = self._history_call(job)
                if self.fetcher is not None:
                    job.future = self.fetcher.submit(call_key, call)
                    continue
                try:
                    bars = call()
                except HistoryError as exc:
                    if not self._failed(job, exc, wall):
                        continue
                    bars = []
            del self.jobs[key]
            self._replay(job, bars)
        if as_is:  # one line for a desk's thousands, not one each
            log.info("partial first bars kept: the broker's copies did not come in time",
                     bars=len(as_is), symbols=as_is[:5], waited_s=FIRST_BAR_WAIT_S)  # fmt: skip

    def _first_bar_as_is(self, key: JobKey, job: WarmUp) -> None:
        """The broker's copy of a first live bar has not come within ``FIRST_BAR_WAIT_S``:
        the call is taken off the fetcher's queue if it has not begun (another job asking
        the same is told so, and goes on as a failed call does) and the bar that waited,
        partial, is handed with whatever came after it."""
        if job.future is not None:
            job.future.cancel()
            job.future = None
        self.partial_kept += 1
        del self.jobs[key]
        self._replay(job, [], said=True)

    def warming(self, name: str) -> list[str]:
        """The instruments a strategy is still warming up on (its status line)."""
        return sorted(
            f"{j.exchange}:{j.symbol} {j.tf}"
            for j in self.jobs.values()
            if j.strategy == name and j.count
        )

    def _failed(self, job: WarmUp, exc: Exception, wall: float) -> bool:
        """A history call failed: True when the job gives up (and goes on without)."""
        if not isinstance(exc, (HistoryError, CancelledError)):  # cancelled: asked again
            log.error("warm-up: history call raised", strategy=job.strategy, exc_info=exc)
        if job.count == 0:
            log.warning("partial first bar kept", symbol=job.symbol, reason=str(exc))
            return True
        if job.attempts < WARMUP_ATTEMPTS:
            job.next_try = wall + WARMUP_RETRY_S
            log.warning(
                "warm-up: history unavailable, retrying",
                strategy=job.strategy,
                attempt=job.attempts,
                reason=str(exc),
            )
            return False
        self.ports.failed(job.strategy)
        log.error(
            "warm-up failed: strategy starts cold",
            strategy=job.strategy,
            symbol=job.symbol,
            attempts=job.attempts,
            reason=str(exc),
        )
        return True

    def _history_call(self, job: WarmUp) -> tuple[Hashable, Callable[[], list[wire.Bar]]]:
        """The history call a job needs, with its arguments fixed now (in the loop): a
        key naming it, so that two jobs asking the same share one call."""
        history = self.history
        assert history is not None
        today = self._now().date()
        ex, sym, tf = job.exchange, job.symbol, job.tf
        start = lookback_start(today, tf, job.count) if job.count else today
        p = self.ports.params(job.strategy)
        if job.count and p.roll_days and self.refdata.instrument(ex, sym).kind == "FUT":
            days, adjust = p.roll_days, p.roll_adjust
            return ("continuous", ex, sym, tf, start, today, days, adjust), lambda: continuous(
                history, self.refdata, ex, sym, tf, start, today, days, adjust
            )
        return (ex, sym, tf, start, today), lambda: history(ex, sym, tf, start, today)

    def _replay(self, job: WarmUp, history: list[wire.Bar], said: bool = False) -> None:
        """History bars before the first live one (marked ``warming_up``), then the live
        bars that waited; the first live bar, partial, is swapped for history's copy."""
        ctx = self.ports.context(job.strategy)
        builder = self.ports.builder(job.tf)
        now = self._now_ns()
        cut = job.held[0].start_ns if job.held else builder.span(job.exchange, now)[0]
        past = (
            [
                b
                for b in history
                if b.start_ns < cut and builder.span(b.exchange, b.start_ns)[1] <= now
            ][-job.count :]
            if job.count
            else []
        )
        ctx.warming_up = True
        try:
            for b in past:
                self.ports.call(job.strategy, "warmup", ctx.on_bar, b)
        finally:
            ctx.warming_up = False
        if len(past) < job.count:
            self.short.append((job.strategy, job.tf, len(past), job.count, now))
        if not said:  # a first bar handed as it was is said once for all (``run``)
            log.info(
                "warmed up" if job.count else "first bar completed from history",
                strategy=job.strategy,
                symbol=job.symbol,
                tf=job.tf,
                bars=len(past),
                asked=job.count,
                held=len(job.held),
            )
        by_start = {b.start_ns: b for b in history}
        if self.mode != "backtest":  # live's record of what waited (``engine/warmlog.py``)
            h = job.held
            first = ("swapped" if h[0].start_ns in by_start else "partial") if h else ""
            self.handed.append(Handed(job.strategy, job.exchange, job.symbol, job.tf, now,
                                      len(past), job.count, len(h),
                                      h[0].start_ns if h else 0, h[-1].start_ns if h else 0,
                                      first))  # fmt: skip
        for i, b in enumerate(job.held):
            live = by_start.get(b.start_ns, b) if i == 0 else b
            ctx.bar_ns = live.start_ns  # a held bar's decision is still that bar's
            try:
                self.ports.call(job.strategy, "bar", ctx.on_bar, live)
            finally:
                ctx.bar_ns = 0
        handed = [b.start_ns for b in (*past, *job.held)]
        if handed and self.mode != "backtest":  # a backtest's bars come once, in order
            self.joined[(job.strategy, job.exchange, job.symbol, job.tf)] = max(handed)
