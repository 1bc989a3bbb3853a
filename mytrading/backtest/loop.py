"""One backtest: the live engine's ``StrategyRunner``, risk's rules and the simulated broker
in one process, on a clock that jumps from bar to bar.

Each step of market time ``t`` (one bar of every instrument that has one at ``t``):

1. the clock is at the bar's open: the broker fills what the bar reaches (``fills.py``),
   and the fills and order updates go to risk, the results and the strategies, in that
   order (risk must know a fill before it checks what a strategy does about it);
2. the clock moves to the bar's close: marks, then the closed bar (and any longer bar it
   completes) to the strategies, which decide;
3. timers fire; risk's post-trade checks run (limits, trailing stops, Supertrend exits,
   square-off) and may close positions; the equity curves get a point.

Intents and orders are queued and handled after the hook that made them returns, as
the bus would deliver them: a strategy never sees an update of an order before its own
``buy`` has returned. With ``ticks`` the data are recorded ticks and the broker is the
live simulated broker itself (fills on the next ticks, as in the paper stack).
"""

from __future__ import annotations

import collections
import gc
import heapq
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import structlog

from mytrading.backtest.data import DataError, holes, trading_days
from mytrading.backtest.fills import BarBroker
from mytrading.backtest.resample import Resampler
from mytrading.backtest.results import Results
from mytrading.backtest.risk import BacktestRisk
from mytrading.backtest.venue import BacktestVenue
from mytrading.domain.bars import DAILY, TIMEFRAMES
from mytrading.domain.clock import MarketClock
from mytrading.domain.errors import ConfigError
from mytrading.domain.refdata import IST, RefData, RefDataError
from mytrading.domain.settlement import (
    Leg,
    final_price_places,
    no_final_price,
    settle_legs,
    settlement_fill,
    settlement_id,
)
from mytrading.engine.context import StrategyContext
from mytrading.engine.runner import StrategyRunner
from mytrading.engine.strategy import BaseStrategy
from mytrading.messaging import wire
from mytrading.messaging.catchup import Snapshot
from mytrading.risk.config import RiskConfig
from mytrading.sim.matching import SimBroker

log = structlog.get_logger("backtest")
NS = 1_000_000_000
GREEKS_EVERY_NS = 15 * 60 * 1_000_000_000  # the report's Greeks: one sample a quarter hour
MINUTE_NS = 60 * NS
EPOCH = datetime.fromtimestamp(0, IST)
WARMUP_ORIGIN_DAYS = 400  # calendar days of generated history before the first day: the
# warm-up of a daily strategy reaches far back (200 D bars is some 290 calendar days)


class Clock(MarketClock):
    """Market time set by the backtest loop."""

    def __init__(self, t: int = 0) -> None:
        super().__init__(0, t, 0.0)
        self.t = t
        self._at = -1
        self._dt = EPOCH

    def now_ns(self) -> int:
        return self.t

    def now(self) -> datetime:
        if self.t != self._at:  # asked several times per bar: made once
            # the epoch plus a timedelta: India keeps one offset, and this is 3x cheaper
            self._at, self._dt = self.t, EPOCH + timedelta(microseconds=self.t // 1000)
        return self._dt


@dataclass
class Spec:
    """What to run. ``params``: per strategy, over the class defaults and strategies.toml."""

    strategies: list[tuple[type[BaseStrategy], dict[str, Any]]]
    start: date
    end: date
    capital: float = 1_000_000.0
    slippage_ticks: int = 0
    allow_holes: bool = False
    fills: str = "bars"  # bars | ticks
    tick_model: str = "realistic"  # ticks: the simulated broker's fill model, as in paper
    partial_fills: bool = True  # ticks: a limit takes at most the touch size


@dataclass(frozen=True)
class StrategyChange:
    """A strategy made again with new parameters, started (``params``), or stopped
    (``params`` None) at a moment of the run, as the command layer's change was taken up
    by the live engine (``engine/daemon.py``: ``_take_up_switch``): the day's shadow
    replays them (``shadow/day.py``)."""

    cls: type[BaseStrategy]
    params: dict[str, Any] | None


@dataclass
class Stream:
    """One instrument's bars, a batch at a time, as Python lists (cheap to index)."""

    exchange: str
    symbol: str
    batches: Iterator[Any]
    cols: tuple[list, ...] = ()
    i: int = 0
    n: int = 0
    key: tuple[str, str] = ("", "")
    closes: Any = None  # the batch's closes as an array (indicators run ahead over them)
    batch: int = 0  # batches loaded so far
    ahead_batch: int = -1  # the batch its subscribers' indicators were last fed ahead

    def __post_init__(self) -> None:
        self.key = (self.exchange, self.symbol)

    def next_start(self) -> int | None:
        while self.i >= self.n:
            try:
                b = next(self.batches)
            except StopIteration:
                return None
            self.cols = (
                b.start_ns.tolist(),
                b.open.tolist(),
                b.high.tolist(),
                b.low.tolist(),
                b.close.tolist(),
                b.volume.tolist(),
            )
            self.closes = b.close
            self.batch += 1
            self.i, self.n = 0, len(b)
        return self.cols[0][self.i]

    def take(self, tf: str) -> wire.Bar:
        s, o, h, lo, c, v = self.cols
        i = self.i
        self.i = i + 1
        return wire.Bar(
            exchange=self.exchange,
            symbol=self.symbol,
            tf=tf,
            start_ns=s[i],
            open=o[i],
            high=h[i],
            low=lo[i],
            close=c[i],
            volume=v[i],
        )


@dataclass
class Progress:
    bars: int = 0
    total: int = 0
    started: float = field(default_factory=time.perf_counter)


class Backtest:
    def __init__(
        self,
        spec: Spec,
        refdata: RefData,
        config: RiskConfig,
        source: Any,
        base_tf: str = "1m",
        progress: Callable[[Progress], None] | None = None,
        ticks: Any = None,
        commands: Sequence[tuple[int, wire.Command | StrategyChange]] = (),
        bar_grace_ns: int = 0,
        carried: Sequence[wire.PositionSnapshot] = (),
        start_ns: int | None = None,
    ) -> None:
        """``commands``: (market ns, command) given to risk at that moment of the run, as
        an operator's were live (a pause, a stop, the kill switch: the day's shadow
        replays them, ``shadow/day.py``), or a strategy's change taken up by the engine
        (``StrategyChange``); with ``ticks`` only (bars step a bar at a time).
        ``bar_grace_ns``: live hands a minute's bar this long after its end
        (``MT_BAR_GRACE_S``), so a command that came within it was in force when live
        decided on that bar: here it is given before the bar is handed. ``carried``:
        positions the strategies hold at the start (the day's shadow: those carried into
        the day live), restored in their books and risk's as the engine and risk restore
        them from the router at a start, at their average prices. ``start_ns``: the
        strategies start then, not at the session's open, with ``ticks`` only (the day's
        shadow of a stack that joined the market mid-session: warmed up on what came
        before, and the first bar, partial, swapped for the source's whole copy, as the
        engine does)."""
        if spec.start > spec.end:
            raise DataError(f"empty date range: {spec.start} is after {spec.end}")
        if not trading_days(refdata, "NFO", spec.start, spec.end):
            raise DataError(f"no trading day between {spec.start} and {spec.end}")
        self.spec = spec
        self.refdata = refdata
        self.source = source
        self.ticks = ticks
        if commands and ticks is None:
            raise DataError("commands at moments of the day need tick data (--fills ticks)")
        self.commands = collections.deque(sorted(commands, key=lambda c: c[0]))
        self.bar_grace_ns = bar_grace_ns
        self.base_tf = base_tf
        self.base_ns = TIMEFRAMES.get(base_tf, 0) * NS
        self._progress = progress
        self.progress = Progress()
        if start_ns is not None and ticks is None:
            raise DataError("a start within the session needs tick data (--fills ticks)")
        self.joined = start_ns is not None
        self.clock = Clock(start_ns if start_ns is not None else self._session_open(spec.start))
        self.results = Results(refdata, config.charges, spec.capital)
        if spec.fills == "ticks":
            self.broker: SimBroker = SimBroker(
                refdata, self.clock, spec.slippage_ticks, spec.tick_model, spec.partial_fills
            )
        else:
            self.broker = BarBroker(refdata, self.clock, spec.slippage_ticks)
        self.venue = BacktestVenue(self.broker, self._on_exec)
        self.intents: collections.deque[wire.Intent] = collections.deque()
        self.orders: collections.deque[wire.Order] = collections.deque()
        self.risk = BacktestRisk(
            refdata,
            config,
            spec.capital,
            self.broker,
            self.clock.now_ns,
            self.clock.now,
            self.orders.append,
            self._on_risk_event,
        )
        self.runner = StrategyRunner(
            refdata,
            self.clock.now_ns,
            self.clock.now,
            self.intents.append,
            self._need,
            run_id="bt",
            history=self._history,
            mode="backtest",
            time_hooks=False,  # hook latency is a live figure; here it would cost 5 %
            margins=self.risk.margins,
            bands=lambda name: self.risk.limits.of(name).band(),
        )
        for cls, params in spec.strategies:
            self.runner.add(cls, params)
            self.results.book(cls.name)
        self.streams: dict[tuple[str, str], Stream] = {}
        self.resamplers: dict[str, Resampler] = {}
        self.notes: list[str] = []
        self._greeks_at = 0  # the next Greeks sample's market time (the report's)
        self._report_at = 20_000  # the bar count of the next progress report
        self.missing: dict[str, list[str]] = {}  # why -> instruments subscribed with no data
        held = [p for p in carried if p.strategy in self.runner.strategies and p.quantity]
        if held:
            self.runner.restore(held, 0)
            self.risk.core.restore(Snapshot(held, 0, []), [])

    # ------------------------------------------------------------------- set-up

    def _session_open(self, d: date) -> int:
        for _ in range(10):
            hours = self.refdata.calendar.hours("NFO", d)
            if hours is not None:
                return int(datetime.combine(d, hours[0], tzinfo=IST).timestamp()) * NS
            d += timedelta(days=1)
        raise DataError(f"no session near {d}")

    def _need(self, exchange: str, symbol: str) -> None:
        """A strategy subscribed to an instrument: its bars join the stream."""
        key = (exchange, symbol)
        if key in self.streams or self.ticks is not None:
            return
        first = self.clock.now().date() if self.runner.started else self.spec.start
        stream = Stream(
            exchange, symbol, self.source.batches(exchange, symbol, first, self.spec.end)
        )
        now = self.clock.t
        try:
            while (s := stream.next_start()) is not None and s < now:
                stream.i += 1  # a late subscription starts at the current bar
        except DataError as exc:
            if not self.runner.started:
                raise
            # a subscription made while running (an option leg): the strategy trades on
            # without its bars, as live without quotes; the run says so
            reason = str(exc).removeprefix(f"{symbol}: ")
            self.missing.setdefault(reason, []).append(symbol)
            self.streams[key] = Stream(exchange, symbol, iter(()))
            return
        self.streams[key] = stream

    def _history(self, exchange: str, symbol: str, tf: str, start: date, end: date) -> list:
        """Warm-up bars from the same source, before the backtest's first bar."""
        bars: list[wire.Bar] = []
        rs = Resampler(self.refdata.calendar, tf) if tf != self.base_tf else None
        stream = Stream(exchange, symbol, self.source.batches(exchange, symbol, start, end))
        while (s := stream.next_start()) is not None and s < self.clock.t:
            b = stream.take(self.base_tf)
            bars += rs.add(b) if rs else [b]
        return bars

    def check_data(self) -> None:
        """Every subscribed instrument has data on every trading day of the window."""
        for ex, sym in self.streams:
            have = self.source.days(ex, sym, self.spec.start, self.spec.end)
            inst = self.refdata.instrument(ex, sym)
            last = min(self.spec.end, inst.expiry) if inst.expiry else self.spec.end
            missing = holes(trading_days(self.refdata, ex, self.spec.start, last), have)
            if not have:
                raise DataError(
                    f"no data for {ex}:{sym} between {self.spec.start} and {self.spec.end} "
                    f"in {getattr(self.source, 'name', self.source)}{self._held(ex, sym)}"
                )
            if missing and not self.spec.allow_holes:
                shown = ", ".join(str(d) for d in missing[:20])
                more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
                raise DataError(
                    f"{ex}:{sym}: {len(missing)} trading day(s) without data: {shown}{more} "
                    f"(download them, or pass --allow-holes to run without them)"
                    f"{self._held(ex, sym)}"
                )
            if missing:
                self.notes.append(f"{sym}: ran without {len(missing)} day(s) of data")
            self.progress.total += len(have) * (375 if self.base_tf == "1m" else 1)

    def _held(self, ex: str, sym: str) -> str:
        """What the data hold of an instrument, for an error: "; the data hold A..B"."""
        days = self.source.days(ex, sym, date(1990, 1, 1), date(2100, 12, 31))
        return f"; the data hold {days[0]}..{days[-1]}" if days else "; the data hold none of it"

    # --------------------------------------------------------------------- run

    def run(self) -> Results:
        # the young garbage of set-up, not a full collection: a sweep's worker runs one
        # backtest after another, and a full one walked every module each time (65 ms)
        gc.collect(1)
        gc.freeze()  # what set-up built is long-lived: full collections need not walk it
        threshold = gc.get_threshold()
        # the run appends rows it keeps to the end (orders, fills): young collections
        # would walk them again and again; collect rarely, cycles are few
        gc.set_threshold(100_000, 50, 1000)
        try:
            return self._run()
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()

    def _run(self) -> Results:
        self.runner.start()
        if not self.joined:
            self.runner.partial.clear()  # bars read from history are whole, never partial
        self._drain()
        failed = [f"{n}: {h.last_error}" for n, h in self.runner.health.items() if h.errors]
        if failed:
            raise DataError(f"a strategy failed to start: {'; '.join(failed)}")
        if not self.streams and self.ticks is None:
            raise DataError("the strategies subscribed to no bars: nothing to backtest")
        if self.ticks is not None:
            self._run_ticks()
        else:
            self.check_data()
            wanted = {tf for subs in self.runner.bar_subs.values() for tf in subs}
            if self.base_tf == DAILY and wanted - {DAILY}:
                raise DataError(
                    f"the strategies ask for {sorted(wanted - {DAILY})} bars; the data are daily"
                )
            for tf in {tf for subs in self.runner.bar_subs.values() for tf in subs} | (
                self.risk.bar_tfs
            ):
                if tf != self.base_tf:
                    self.resamplers[tf] = Resampler(self.refdata.calendar, tf)
            try:
                self._run_bars()
            finally:  # the streaming states of indicators fed ahead: up to the last bar
                for ctx in self.runner.contexts.values():
                    ctx.finish_ahead()
        self.runner.stop()
        self._drain()
        return self.results

    def _run_bars(self) -> None:
        if len(self.streams) == 1 and not self.resamplers:
            self._run_one()  # returns when a second stream joins, or at the end
        if any(st.next_start() is not None for st in self.streams.values()):
            self._run_many()
        elif self._progress:
            self._progress(self.progress)

    def _run_one(self) -> None:
        """``_run_many`` for one instrument at its own timeframe, the common run: the same
        steps in the same order, without a heap, a step list or a call per bar to fetch
        the next one; the subscribers' indicators of the close are worked out a batch of
        bars ahead (``StrategyContext.ahead``). A subscription made while running (an
        option leg) ends it: the rest of the run is ``_run_many``'s, from the next step."""
        (st,) = self.streams.values()
        while st.next_start() is not None:
            ahead = self._ahead(st)
            try:
                if self._batch_one(st):
                    return
            finally:
                for ctx in ahead:
                    ctx.finish_ahead()

    def _batch_one(self, st: Stream) -> bool:
        """``_run_one``'s steps over the rest of its instrument's batch of bars; True when
        a second instrument joined (the rest of the run is ``_run_many``'s)."""
        clock, runner, risk, results = self.clock, self.runner, self.risk, self.results
        broker, venue, drain = self.broker, self.venue, self._drain
        assert isinstance(broker, BarBroker)
        key, ex, sym = st.key, st.exchange, st.symbol
        tf, span = self.base_tf, self.base_ns
        risk_base = tf in risk.bar_tfs
        progress = self.progress
        live, quotes = broker.live, broker.quotes
        intents, orders, streams = self.intents, self.orders, self.streams
        on_closed_bar, risk_mark, risk_step = runner.on_closed_bar, risk.mark, risk.step
        sample, last = results.sample, results.last
        bar_cls = wire.Bar
        starts, opens, highs, lows, closes, vols = st.cols
        i, n = st.i, st.n
        quoted = key in quotes  # the broker keeps a quote of it from its first bar on
        greeks_at, report_at, done = self._greeks_at, self._report_at, progress.bars
        batch = st.batch  # ``next_start`` at the last bar may load the next one
        try:
            while i < n:
                t = starts[i]
                close = closes[i]
                bar = bar_cls(ex, sym, tf, t, opens[i], highs[i], lows[i], close, vols[i])
                i += 1
                clock.t = t
                if live.get(key):
                    venue.on_events(broker.on_bar(bar))
                    drain()
                elif not quoted:
                    quotes[key] = broker._quote(bar)
                    quoted = True
                clock.t = t + span if span else self._session_close(t)
                risk_mark(key, close)
                last[key] = close
                on_closed_bar(bar)
                if risk_base:
                    risk.on_bar(bar)
                if intents:
                    drain()
                if runner.timers or runner.rolling:
                    runner.poll()
                    drain()
                risk_step()
                if orders or intents:
                    drain()
                if i == n:
                    st.i = i
                    if st.next_start() is None:  # its last bar: settled if expired
                        st.cols = ()
                        self._settle(key)
                        results.retire(key)
                sample(clock.t)
                if t >= greeks_at:  # every GREEKS_EVERY_NS of market time
                    greeks_at = t - t % GREEKS_EVERY_NS + GREEKS_EVERY_NS
                    self._sample_greeks()
                done += 1
                if done >= report_at:
                    report_at += 20_000
                    progress.bars = done
                    if self._progress:
                        self._progress(progress)
                if len(streams) > 1:
                    return True  # a subscription made during this step: the heap's from here
            return False
        finally:  # what the loop kept in locals (every bar pays for an attribute)
            if st.batch == batch and st.cols:
                st.i = i
            self._greeks_at, self._report_at, progress.bars = greeks_at, report_at, done

    def _ahead(self, st: Stream) -> list[StrategyContext]:
        """The subscribers' indicators of ``st``'s close, fed ahead from its next bar to
        its batch's end (``StrategyContext.ahead``; each context's earlier feed of the
        same bars is finished then). Returns the contexts fed."""
        st.ahead_batch = st.batch
        tf = self.base_tf
        contexts = self.runner.bar_contexts(st.key, tf)
        for ctx in contexts:
            ctx.ahead((st.exchange, st.symbol, tf), st.closes[st.i :], st.cols[4][st.i :])
        return contexts

    def _run_many(self) -> None:
        clock, runner, risk, results = self.clock, self.runner, self.risk, self.results
        broker, venue = self.broker, self.venue
        assert isinstance(broker, BarBroker)
        tf, span = self.base_tf, self.base_ns
        resamplers = list(self.resamplers.values())
        risk_tfs = risk.bar_tfs
        risk_base = tf in risk_tfs
        progress = self.progress
        heap: list[tuple[int, int, Stream]] = []
        order = 0
        for st in self.streams.values():
            s = st.next_start()
            if s is not None:
                heapq.heappush(heap, (s, order, st))
                order += 1
        step: list[tuple[tuple[str, str], wire.Bar]] = []
        ended: list[tuple[str, str]] = []
        live, quotes, last = broker.live, broker.quotes, results.last
        while heap:
            t = heap[0][0]
            step.clear()
            clock.t = t
            while heap and heap[0][0] == t:
                _, n, st = heap[0]
                if st.ahead_batch != st.batch:  # a new batch: its closes known ahead
                    self._ahead(st)
                bar = st.take(tf)
                key = st.key
                step.append((key, bar))
                nxt = st.next_start()
                if nxt is not None:
                    heapq.heapreplace(heap, (nxt, n, st))
                else:
                    heapq.heappop(heap)
                    st.cols = ()  # an expired contract's bars: a year of legs adds up
                    ended.append(key)
                if live.get(key):
                    venue.on_events(broker.on_bar(bar))
                    self._drain()
                elif key not in quotes:
                    quotes[key] = broker._quote(bar)
            clock.t = t + span if span else self._session_close(t)
            if len(step) > 1:  # every close of the step known before any strategy hears
                marks = runner.last  # of one: live, the last tick of each is in by then
                for key, bar in step:
                    marks[key] = bar.close
            for key, bar in step:
                risk.mark(key, bar.close)
                last[key] = bar.close
                runner.on_closed_bar(bar)
                if risk_base:
                    risk.on_bar(bar)
                for rs in resamplers:
                    for longer in rs.add(bar):
                        runner.on_closed_bar(longer)
                        if longer.tf in risk_tfs:
                            risk.on_bar(longer)
            if self.intents:
                self._drain()
            if runner.timers or runner.rolling:
                runner.poll()
                self._drain()
            risk.step()
            if self.orders or self.intents:
                self._drain()
            if ended:  # contracts whose last bar this was: settled if they expired
                for key in ended:
                    self._settle(key)
                    results.retire(key)
                ended.clear()
            results.sample(clock.t)
            if t >= self._greeks_at:  # every GREEKS_EVERY_NS of market time
                self._greeks_at = t - t % GREEKS_EVERY_NS + GREEKS_EVERY_NS
                self._sample_greeks()
            progress.bars += len(step)
            if progress.bars >= self._report_at:
                self._report_at += 20_000
                if self._progress:
                    self._progress(progress)
            # a subscription made during this step joins the heap
            if len(self.streams) > order:
                for st in list(self.streams.values())[order:]:
                    s = st.next_start()
                    if s is not None:
                        heapq.heappush(heap, (s, order, st))
                    order += 1
        if self._progress:
            self._progress(progress)

    def _session_close(self, t: int) -> int:
        d = datetime.fromtimestamp(t / NS, IST).date()
        hours = self.refdata.calendar.hours("NFO", d)
        close = hours[1] if hours else datetime.min.time()
        return int(datetime.combine(d, close, tzinfo=IST).timestamp()) * NS

    def _run_ticks(self) -> None:
        clock, runner, risk, results = self.clock, self.runner, self.risk, self.results
        minute = 0
        boundary = 0
        for tick in self.ticks:
            if not boundary:
                boundary = (tick.exch_ns // MINUTE_NS + 1) * MINUTE_NS
            while boundary <= tick.exch_ns:  # live closes bars by the clock at their end
                clock.t = boundary
                if self.commands and self.commands[0][0] <= boundary + self.bar_grace_ns:
                    self._command_due(boundary + self.bar_grace_ns)
                runner.poll()
                self._drain()
                risk.step()
                self._drain()
                boundary += MINUTE_NS
            clock.t = tick.exch_ns
            if self.commands and self.commands[0][0] <= tick.exch_ns:
                self._command_due(tick.exch_ns)
            runner.poll()
            self._drain()
            self.venue.on_events(self.broker.on_tick(tick))
            risk.on_tick(tick)
            results.last[(tick.exchange, tick.symbol)] = tick.ltp
            runner.on_tick(tick)
            self._drain()
            risk.step()
            self._drain()
            self.progress.bars += 1
            if tick.exch_ns // MINUTE_NS != minute:
                minute = tick.exch_ns // MINUTE_NS
                results.sample(clock.t)
                if self._progress and self.progress.bars % 1000 == 0:
                    self._progress(self.progress)
        results.sample(clock.t)

    def _command_due(self, t: int) -> None:
        """The commands due by ``t`` (the clock's now: the first tick or minute's end at
        or after each, as live risk takes one when it arrives) to risk, and what they set
        off (cancels, a flatten's exits) sent at once."""
        while self.commands and self.commands[0][0] <= t:
            cmd = self.commands.popleft()[1]
            if isinstance(cmd, StrategyChange):
                self._change(cmd)
                self._drain()
                continue
            try:
                self.risk.core.on_command(cmd)
            except ValueError as exc:  # a bad one changes nothing (as live): said, skipped
                self.notes.append(f"command {cmd.command} {cmd.value} {cmd.target}: {exc}")
            self._drain()

    def _change(self, ch: StrategyChange) -> None:
        """As the live engine takes a change up: one that holds positions or working
        orders is left as it runs (said in the notes), else removed and, with
        parameters, made again and warmed up from the data before now."""
        name = ch.cls.name
        if name in self.runner.strategies:
            held = self.runner.holds(name)
            if held:
                self.notes.append(f"{name}: change at {self.clock.now():%H:%M:%S} not taken, it "
                                  f"holds {', '.join(held)}")  # fmt: skip
                return
            self.runner.remove(name)
        if ch.params is not None:
            try:
                self.runner.start_one(ch.cls, ch.params)
            except (ValueError, ConfigError) as exc:  # bad parameters: it stays stopped
                self.notes.append(f"{name}: not started again at {self.clock.now():%H:%M:%S}: "
                                  f"{exc}")  # fmt: skip
                return
            self.results.book(name)

    def _sample_greeks(self) -> None:
        """The Greeks of every strategy holding options, for the report."""
        for name, ctx in self.runner.contexts.items():
            for (_, sym), p in ctx.ledger.positions.items():
                if p.qty and sym[-2:] in ("CE", "PE"):
                    self.results.sample_greeks(self.clock.t, name, self.runner.greeks(name))
                    break

    # --------------------------------------------------------------- settlement

    def _settle(self, key: tuple[str, str]) -> None:
        """A contract's bars ended: if it expired, the exchange settles it. Working orders
        on it are purged; every book still holding it gets its settlement (``settlement
        .py``) as fills marked so: risk, the results and the strategy book them as fills,
        charged as settlements (STT on exercise, delivery STT), never as trades."""
        inst = self.refdata.instrument(*key)
        if inst.expiry is None or self.clock.now().date() < inst.expiry:
            return  # the data ran out before its expiry: nothing settles
        for oid in list(self.broker.live.get(key, ())):
            self.venue.on_events(self.broker.cancel_order(oid)[1])
        held = [
            (name, k[2], p.qty)
            for name, b in self.risk.core.post.books.items()
            for k, p in b.ledger.positions.items()
            if (k[0], k[1]) == key and p.qty
        ]
        if not held:
            self._drain()
            return
        final = self._final_price(inst)
        for strategy, product, qty in held:
            legs = settle_legs(self.refdata, inst, qty, product, final)
            if legs is None:  # the run's data has no final price: held, said so
                self.notes.append(no_final_price(inst))
                continue
            assert inst.expiry is not None
            fill_id = settlement_id(inst.symbol, product, inst.expiry, strategy)
            for leg in legs:
                self._settlement_fill(strategy, leg, fill_id + leg.suffix)
        self._drain()

    def _final_price(self, inst: Any) -> float | None:
        """The underlying's close on the expiry day (NSE's final settlement price for
        index and stock derivatives), from the run's data."""
        for where in final_price_places(self.refdata, inst):
            try:
                batches = list(self.source.batches(*where, inst.expiry, inst.expiry))
            except (DataError, RefDataError):
                continue
            closes = [b.close for b in batches if len(b)]
            if closes:
                return float(closes[-1][-1])
        return None

    def _settlement_fill(self, strategy: str, leg: Leg, fill_id: str) -> None:
        n = self.venue.tracker.next_fill_no()
        at = self.clock.t
        key, product, signed, price = leg.where, leg.product, leg.signed, leg.price
        f = settlement_fill(strategy, key, product, signed, price, leg.how, at, fill_id, n)
        self.broker.ledger.apply((key[0], key[1], product), signed, price)
        self.broker.trades += 1  # funds change with it
        self._on_exec(f)

    # ------------------------------------------------------------------ plumbing

    def _drain(self) -> None:
        """Intents to risk, orders to the broker, until nothing is left in flight."""
        intents, orders = self.intents, self.orders
        exits = self.risk.core.exits
        while intents or orders:
            while intents:
                self.risk.on_intent(intents.popleft())
            while orders:
                o = orders.popleft()
                self.venue.send(o)
                self.results.on_order(o, self.clock.t, self.venue.status(o.order_id))
            if exits.jobs:  # an exit that waits for its cancels: answered at once here,
                exits.step()  # it goes in the same instant (live: a round trip later)

    def _on_exec(self, msg: wire.OrderUpdate | wire.Fill) -> None:
        now = self.clock.t
        if isinstance(msg, wire.Fill):
            self.risk.on_fill(msg)
            self.results.on_fill(msg)
            self.runner.on_fill(msg)
        else:
            self.risk.on_update(msg)
            self.results.on_update(msg, now)
            self.runner.on_order_update(msg)

    def _on_risk_event(self, ev: wire.RiskEvent) -> None:
        self.results.on_event(ev, self.clock.t)
        if ev.intent_id or ev.kind in ("state", "kill_switch"):
            self.runner.on_risk_event(ev)

    def stats(self) -> dict[str, Any]:
        return {
            "bars": self.progress.bars,
            "seconds": round(time.perf_counter() - self.progress.started, 3),
            "approved": self.risk.approved,
            "rejected": dict(self.risk.rejected),
            "triggers": dict(self.risk.triggers),
            "venue": dict(self.venue.counts),
            "strategies": self.runner.stats(),
            "notes": self.all_notes(),
        }

    def all_notes(self) -> list[str]:
        """What the run could not do, one line per kind: for the summary and the report."""
        out = list(self.notes)
        for why, symbols in self.missing.items():
            shown = ", ".join(symbols[:3]) + (
                f" and {len(symbols) - 3} more" if len(symbols) > 3 else ""
            )
            out.append(
                f"no data for {len(symbols)} instrument(s) subscribed while running "
                f"({shown}): {why}"
            )
        return out
