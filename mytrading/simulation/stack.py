"""The whole stack in one process, for one seed: the daemons' own cores on simulated
hosts, the simulated OpenAlgo, the market, and what a day brings.

A seed makes one trading day: the router, risk, the engine (the example strategies and a
builder template), the feed, the reconciler and signals (a webhook strategy fed alerts),
on two accounts (main at the simulated OpenAlgo over its REST and WebSocket; ``second``,
a paper account filled in the router's process) with a strategy that ``second``
follows. Faults (``simulation/faults.py``) and an operator (``simulation/operator.py``)
act on it at the seed's moments; the invariants (``simulation/invariants.py``) are
checked as it goes and at the day's end.

The configuration is composed here as a daemon's shell composes it (``StackConfig``),
into a directory of the seed's own: its state (journal, trading states, books, the
webhook audit) is on the real disk there, so a daemon killed and started again reads
back what it wrote, and nothing else.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mytrading.config import StackConfig
from mytrading.domain.accounts import MAIN, Accounts, load_accounts
from mytrading.domain.clock import MarketClock, build_clock
from mytrading.domain.refdata import IST, RefData
from mytrading.engine.daemon import EngineDaemon
from mytrading.feed.daemon import FeedDaemon
from mytrading.messaging import wire
from mytrading.process.base import Daemon
from mytrading.reconciler.daemon import ReconcilerDaemon
from mytrading.risk.daemon import RiskDaemon
from mytrading.router.daemon import RouterDaemon
from mytrading.settings import PROJECT_ROOT, Settings, load_settings
from mytrading.signals.daemon import SignalsDaemon
from mytrading.sim.exchange import SimExchange
from mytrading.sim.market import configured_market
from mytrading.sim.server.rest import RateLimits
from mytrading.simulation.bus import SimBus
from mytrading.simulation.host import SimHost
from mytrading.simulation.operator import TOP_UP_PER_S, WEBHOOK
from mytrading.simulation.parts import MemoryEvents, SimDoor
from mytrading.simulation.venue import CallClock, SimAccount, SimTransport, market_payloads
from mytrading.simulation.world import Trace, World

if TYPE_CHECKING:
    from mytrading.simulation.faults import FaultSchedule, FeedFaults
    from mytrading.simulation.invariants import Invariants
    from mytrading.simulation.operator import Operator

DAEMONS = ("router", "risk", "feed", "engine", "reconciler", "signals")
START_ORDER = DAEMONS  # supervisord's priorities: the router and risk first
KEY = "sim-main-key"
SECOND_KEY = "sim-second-key"
REST_URL = "http://127.0.0.1:5000"
WS_URL = "ws://127.0.0.1:8765"
STRATEGIES = (
    "sma_crossover",
    "rsi_mean_reversion",
    "supertrend_trend",
    "nifty_short_straddle",
    "equity_momentum",
    "stock_futures_trend",
    "nifty_iron_condor",
    "t_strangle",  # a builder template (builder/templates.py)
)
STOCKS = "HDFCBANK,ICICIBANK,SBIN,AXISBANK,KOTAKBANK"  # config/stocks.toml [universes] banks
FOLLOWED = "sma_crossover"  # the strategy ``second`` follows, at twice its size


# a seed's speed (``Options.speed`` 0): at 240x a day costs about 30 % less than at 120x
# (the daemons' timers fire half as often a market minute), and the simulator's seed 2
# found a bug at 240x that 200 seeds at 120x had not (router/daemon.py, the census)
SPEEDS = (120.0, 180.0, 240.0)


@dataclass
class Options:
    """How a seed's day is run."""

    # market seconds per wall second (the demo runs 30); 0: drawn from the seed among
    # ``SPEEDS``, so the same faults meet the market at other moments (the daemons' own
    # times are wall seconds: a heartbeat, a poll, a restart's delay); a scenario's script
    # is timed at 120x
    speed: float = 0.0
    step_s: float = 1.0  # the market steps (every instrument quoted) this often, wall:
    # at 120x every two market minutes (ticks thinned: a bar every other minute), at
    # 240x every four
    skip: str = "09:45-14:50"  # the quiet midday, jumped over (MT_SIM_SKIP)
    trace_full: bool = False  # keep every trace line (a replay writes them)
    faults: bool = True
    operator: bool = True
    close: time = time(15, 30)
    days: tuple[date, date] = (date(2026, 6, 1), date(2026, 11, 20))
    strategies: tuple[str, ...] = STRATEGIES
    # the feed records the day's ticks and bars (``MT_RECORD``) and risk's events are
    # stored in its DuckDB file at the day's end: what the day's shadow reads (``shadow``)
    record: bool = False
    mutation: str = ""  # a planted bug's name (tests: ``simulation/mutations.py``)
    # a scenario's own limits in risk.toml: (strategy, key, value), e.g. a tighter cap
    risk: tuple[tuple[str, str, int | float], ...] = ()
    # a scenario's own steps: (wall seconds after the open, what to do to the stack),
    # on top of (or, with faults and operator off, instead of) the seed's
    script: tuple[tuple[float, Callable[[Any], None]], ...] = ()


def risk_limit(path: Path, strategy: str, key: str, value: float) -> None:
    """``key = value`` in the strategy's table of risk.toml (made if it has none, its own
    line for ``key`` replaced): edited with tomlkit, as ``control`` edits strategies.toml,
    since TOML refuses a table or a key declared twice."""
    import tomlkit

    doc = tomlkit.parse(path.read_text())
    strategies = doc.setdefault("strategies", tomlkit.table(is_super_table=True))
    if strategy not in strategies:
        strategies[strategy] = tomlkit.table()
    strategies[strategy][key] = value
    path.write_text(tomlkit.dumps(doc))


@dataclass
class Said:
    """An error a daemon logged (what an operator would read)."""

    t_ns: int
    daemon: str
    event: str
    fields: dict[str, Any] = field(default_factory=dict)


class SimStack:
    def __init__(
        self, seed: int, workdir: Path, refdata: RefData, shared: Path, options: Options
    ) -> None:
        self.seed = seed
        self.options = options
        self.refdata = refdata
        self.rng = random.Random(seed)
        days = trading_days(refdata, options.days)
        self.day = days[self.rng.randrange(len(days))]
        drawn = SPEEDS[self.rng.randrange(len(SPEEDS))]
        self.speed = options.speed or (120.0 if options.script else drawn)
        self.dir = workdir / f"seed-{seed}"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.open_dt = datetime.combine(self.day, time(9, 15), tzinfo=IST)
        start_ns = int(self.open_dt.timestamp()) * 1_000_000_000
        self.world = World(start_ns, Trace(full=options.trace_full))
        self.current: SimHost | None = None
        self.calls = CallClock(self)
        self.bus = SimBus(self, random.Random(self.rng.random()))
        self.settings, self.accounts = self._settings(shared)
        self.config = StackConfig(self.settings)
        self.config.__dict__["refdata"] = refdata  # the process's, loaded once
        self.config.__dict__["accounts"] = self.accounts
        self.clock: MarketClock = build_clock(self.settings, refdata.calendar)
        self.hosts: dict[str, SimHost] = {}
        self.cores: dict[str, Any] = {}  # each daemon's live core, by name
        self._pids = itertools.count(100)
        self.started: dict[str, int] = {}  # incarnations per daemon
        self.said: list[Said] = []
        self.events = MemoryEvents()
        self.doors: list[SimDoor] = []
        with self.world:  # the market's day and its history on the seed's clock
            market = configured_market(self.settings, refdata, self.day)
            ex = SimExchange(refdata, self.clock, market, capital=self.settings.sim.capital,
                             slippage_ticks=self.settings.sim.slippage_ticks,
                             fill_model=self.settings.sim.fill_model,
                             partial_fills=self.settings.sim.partial_fills)  # fmt: skip
            self.main = SimAccount(self, MAIN, ex, KEY, REST_URL, WS_URL,
                                   random.Random(self.rng.random()))  # fmt: skip
            self._preload_history(ex)
        self.venue = self
        self.timeout_s = self.settings.openalgo.timeout_s
        self.stopped = False
        # set by ``run.py`` for the day: what it checks, what goes wrong, who acts
        self.invariants: Invariants
        self.feed_faults: FeedFaults
        self.faults: FaultSchedule
        self.operator: Operator
        self.disk_full = False
        self.kill_at_next_place = 0.0  # the router dies in its next placement (a fault)
        # the router dies at the next order to reach a step: (the step, restarted after s)
        self.crash_armed: tuple[str, float] | None = None
        self.journal_write: Callable[[int, bytes], int] = os.write
        self.clock_offset_s = 0.0

    # ------------------------------------------------------------------ settings

    def _settings(self, shared: Path) -> tuple[Settings, Accounts]:
        cfg = self.dir / "config"
        shutil.copytree(PROJECT_ROOT / "config", cfg)
        (cfg / "accounts.toml").write_text(
            "[accounts.second]\n"
            'host = "http://127.0.0.1:5001"\nws_url = "ws://127.0.0.1:8766"\n'
            'api_key_env = "MT_SIM_SECOND_KEY"\n\n'
            f"[strategies.{FOLLOWED}]\nfollow = {{ second = 2 }}\n"
        )
        # the charting service may send a thin day's top-up alerts faster than the
        # examples' 5 orders a second (operator.py, TOP_UP_GAP_S)
        with (cfg / "risk.toml").open("a") as f:
            f.write(f"\n[strategies.{WEBHOOK}]\nmax_orders_per_sec = {TOP_UP_PER_S}\n")
        for strategy, key, value in self.options.risk:
            risk_limit(cfg / "risk.toml", strategy, key, value)
        data = self.dir / "data"
        env = {
            "MT_MODE": "paper",
            "MT_BROKER": "openalgo",
            "MT_SIM_SERVER": "true",
            "MT_CONFIG_DIR": str(cfg),
            "MT_STRATEGIES_DIR": str(shared),
            "MT_STRATEGIES": ",".join(self.options.strategies),
            "MT_LOG_DIR": str(self.dir / "logs"),
            "MT_STATE_DIR": str(self.dir / "state"),
            "MT_RUN_DIR": str(self.dir / "run"),
            "MT_RECORD": "true" if self.options.record else "false",
            "MT_RECORD_DB": str(data / "marketdata.duckdb"),
            "MT_RISK_DB": str(data / "risk.duckdb"),
            "MT_WEBHOOK_DB": str(data / "webhooks.sqlite"),
            "MT_CONTROL_DB": str(data / "control.sqlite"),
            "MT_ALERTS_DB": str(data / "alerts.sqlite"),
            # the day's shadow fills a history cache and reads the instruments: the seed's
            # own, never the project's (a cache shared by seeds made one seed's shadow
            # depend on the seeds run before it)
            "MT_HISTORY_DB": str(data / "history.duckdb"),
            "MT_BACKTEST_DB": str(data / "backtests.duckdb"),
            "MT_INSTRUMENTS_DB": str(data / "instruments.duckdb"),
            "MT_REPORT_DIR": str(self.dir / "reports"),
            "MT_SIM_START": self.open_dt.strftime("%Y-%m-%dT%H:%M:%S"),
            "MT_SIM_SKIP": self.options.skip,
            "MT_SIM_SPEED": str(self.speed),
            "MT_CLOCK_ANCHOR_NS": str(self.world.start_ns),
            "MT_SIM_SEED": str(self.seed),
            "MT_SIM_STOCKS": STOCKS,
            "MT_SIM_UNDERLYINGS": "NIFTY,BANKNIFTY",  # what the strategies trade
            "MT_HEARTBEAT_S": "2",  # four market minutes at 120x: a peer down in 6 s
            "MT_SIM_API_KEY": KEY,
            "MT_SIM_SECOND_KEY": SECOND_KEY,
            "MT_SIM_HISTORY_SESSIONS": "1",
            # a thin book: a touch of 1 to 3 lots, so an order of two lots or more often
            # fills in several trades at several prices (what a fill's pricing must get
            # right, and a router that dropped a later trade would get wrong)
            "MT_SIM_DEPTH_LOTS": "4",
            # five banks, not ten stocks; moving averages and RSI bands that trade on a
            # two-hour day of bars every other minute (as the demo test's RSI bands do)
            "MT_STRATEGY_PARAMS": json.dumps(
                {
                    "equity_momentum": {"universe": "banks"},
                    "sma_crossover": {"fast": 3, "slow": 9},
                    "stock_futures_trend": {"fast": 3, "slow": 9},
                    "rsi_mean_reversion": {"oversold": 42, "overbought": 58, "exit_level": 50},
                }
            ),
            "MT_ENGINE_MAX_RSS_MB": "0",
            # a day is a couple of minutes of wall time: the order book read every 2 s
            # behind the pushes, open orders checked every 5 s, an order whose reply was
            # lost certainly absent after 3 s of reads (not the 30 s of a real day), and
            # given up after 2 s of waiting (not 5: two lost replies in a session that
            # expired at 14:53 held the router 10 s, 20 market minutes, and seed 21's
            # orders were still unknown at the day's end)
            "MT_OPENALGO_TIMEOUT_S": "2",
            "MT_OPENALGO_POLL_S": "2",
            "MT_ENGINE_ORDER_CHECK_S": "5",
            "MT_OPENALGO_ABSENT_S": "3",
            # the simulated host has no power to lose: the journal's fdatasync (a real
            # disk flush, 4 % of a simulated day's CPU) protects against nothing here
            "MT_JOURNAL_FSYNC": "false",
        }
        self.env = env  # what a later read of the settings (the day's shadow) runs under
        with mt_environ(env):
            settings = load_settings()
            return settings, load_accounts(settings)

    def rate_limits(self) -> RateLimits:
        s = self.settings.sim
        return RateLimits(s.order_rate_limit, s.smart_rate_limit, s.api_rate_limit)

    def _preload_history(self, ex: SimExchange) -> None:
        sessions = self.settings.sim.history_sessions
        if sessions:
            bars = ex.market.past_bars(self.clock.now_ns(), sessions, self.seed + 1)  # type: ignore[union-attr]
            ex.history_store.preload(bars)
        ex.step()  # quotes exist before the first request

    # ------------------------------------------------------------------- daemons

    def start_daemon(self, name: str) -> None:
        if self.alive(name):
            # two restarts of one death (a kill while its restart is due): the second
            # finds its instance lock held and exits, as the real one does
            # (process/shell.py, EXIT_ALREADY_RUNNING)
            self.trace_event("start", f"{name}: already running; the second one exits")
            return
        host = SimHost(self, name, next(self._pids))
        self.hosts[name] = host
        self.bus.join(host)
        self.started[name] = self.started.get(name, 0) + 1
        self.trace_event("start", f"{name} pid {host.pid}")
        try:
            core = self._core(name, host)
        except Exception as exc:
            self.said.append(Said(self.world.now_ns, name, f"failed at start: {exc!r}"))
            self.kill_daemon(name, why="failed at start")
            return
        host.core = core
        self.cores[name] = core

        def start() -> None:
            if isinstance(core, RiskDaemon):  # its approvals, as it makes them
                send = core.send

                def approve(order: wire.Order) -> bool:
                    self.invariants.approval(order)
                    return send(order)

                core.send = approve  # type: ignore[method-assign]
            core.start()
            if isinstance(core, RouterDaemon):
                self._fit_router(core)

        host.run(start)

    def arm_crash(self, point: str, restart_s: float) -> None:
        """The router dies (``RouterDaemon._crash``, ``SimHost.crash``) at the next order
        to reach ``point`` and is restarted ``restart_s`` later; "" disarms."""
        self.crash_armed = (point, restart_s) if point else None
        router = self.cores.get("router")
        if isinstance(router, RouterDaemon):
            router.crash_at = point

    def crashed(self, name: str) -> None:
        """A daemon died at an injected crash: supervisord starts it again."""
        restart_s = self.crash_armed[1] if self.crash_armed else 1.0
        self.crash_armed = None
        self.restart_daemon(name, restart_s)

    def _fit_router(self, router: RouterDaemon) -> None:
        """The router's disk is the simulation's (it fills when a fault says), and a
        paper account's broker, in the router's process, is watched at its door as the
        simulated OpenAlgo is. An armed crash waits in it."""
        router.crash_at = self.crash_armed[0] if self.crash_armed else ""
        router.table.journal.write = self.journal_write
        for name, lane in router.lanes.items():
            sdk = getattr(lane.broker, "sdk", None)
            local = getattr(sdk, "local", None)
            if sdk is None or local is None:
                continue
            sdk.local = self._tap(name, local)

    def _tap(self, account: str, request: Callable[[str, bytes], tuple[int, bytes]]) -> Any:
        def tapped(endpoint: str, body: bytes) -> tuple[int, bytes]:
            code, reply = request(endpoint, body)
            self.trace_event("call", f"{account} {endpoint} {code}")
            if endpoint == "placeorder" and code == 200:
                got = json.loads(reply)
                self.invariants.placed_at_broker(account, json.loads(body), str(got.get("orderid")))
            return code, reply

        tapped.__self__ = getattr(request, "__self__", None)  # type: ignore[attr-defined]
        return tapped

    def _core(self, name: str, host: SimHost) -> Daemon:
        s, rd, accts, cfg = self.settings, self.refdata, self.accounts, self.config
        if name == "router":
            return RouterDaemon(host, s, rd, accts)
        if name == "risk":
            return RiskDaemon(host, s, rd, accts, risk=cfg.risk, schedules=cfg.schedules,
                              events=self.events)  # fmt: skip
        if name == "engine":
            return EngineDaemon(host, s, rd, accts, margins=cfg.margins, limits=cfg.risk.limits,
                                deadlines=False)  # fmt: skip
        if name == "feed":
            return FeedDaemon(host, s, rd, accts)
        if name == "reconciler":
            return ReconcilerDaemon(host, s, rd, accts)
        if name == "signals":
            return SignalsDaemon(host, s, rd, accts, door=self._door)
        raise ValueError(name)

    def _door(self, make_gate: Callable[[], Any]) -> SimDoor:
        door = SimDoor(make_gate)
        self.doors.append(door)
        return door

    def kill_daemon(self, name: str, why: str = "killed") -> None:
        """kill -9: the process is gone with its memory; what it wrote stays."""
        host = self.hosts.get(name)
        if host is None or not host.alive:
            return
        host.alive = False
        self.bus.leave(host)
        for c in list(self.main.connections):
            if c.host is host:
                c.open = False
                self.main.connections.remove(c)
        self.main.watch_subscriptions()
        core = self.cores.pop(name, None)
        if core is not None:
            release(core)
        self.trace_event("kill", f"{name} pid {host.pid}: {why}")

    def stop_daemon(self, name: str) -> None:
        """An orderly stop (SIGTERM): the core tears down, then the process is gone."""
        core = self.cores.get(name)
        host = self.hosts.get(name)
        if core is not None and host is not None and host.alive:
            host.run(core.finish)
        self.kill_daemon(name, why="stopped")

    def restart_daemon(self, name: str, after_s: float) -> None:
        self.kill_daemon(name)
        self.world.after(after_s, lambda: self.start_daemon(name))

    def alive(self, name: str) -> bool:
        host = self.hosts.get(name)
        return host is not None and host.alive

    # ------------------------------------------------------------- the venue's side

    def transport(self, url: str, host: SimHost | None = None) -> SimTransport:
        if url.rstrip("/") == self.main.rest_url:
            return SimTransport(self.main, self.timeout_s, host)
        return SimTransport(_Nowhere(self), self.timeout_s, host)  # type: ignore[arg-type]

    def connect_ws(self, client: Any, host: SimHost) -> None:
        client.rng = random.Random(self.rng.random())
        if client.url == self.main.ws_url:
            self.main.connect(client, host)

    def market_step(self) -> None:
        """The market moves: resting orders matched, quotes pushed to the subscribers."""
        ex = self.main.exchange
        # ``step_to``, not ``step``: one quote per instrument per step (a stalled server's
        # catch-up half-minutes are not this loop's: its steps are its own)
        ticks = ex.step_to(self.clock.now_ns())
        if not ticks:
            return
        self.feed_faults.deliver(self.main, ticks)

    def push_ticks(self, conn: Any, ticks: list[wire.Tick], extra_s: float) -> None:
        for text in market_payloads(self.main.feed, ticks, conn.server.subs):
            conn.to_client(text, extra_s)

    # -------------------------------------------------------------------- tracing

    def trace_event(self, kind: str, what: str) -> None:
        self.world.trace.add(self.world.now_ns, kind, what)

    def market_now(self) -> datetime:
        return self.clock.now()


class _Nowhere:
    """An account the simulation has no broker for: every call refused."""

    def __init__(self, stack: SimStack) -> None:
        self.stack = stack
        self.name = "nowhere"


def release(core: Daemon) -> None:
    """What a killed process's kernel closes: its files (the journal's descriptor, a
    database's connection). Nothing is flushed or torn down: it died."""
    table = getattr(core, "table", None)
    journal = getattr(table, "journal", None)
    if journal is not None and getattr(journal, "_fd", -1) >= 0:
        os.close(journal._fd)
        journal._fd = -1
    store = getattr(core, "store", None)
    con = getattr(store, "con", None)
    if con is not None:
        with contextlib.suppress(Exception):
            con.close()
    recorder = getattr(core, "recorder", None)  # the feed's recording (``Options.record``)
    if recorder is not None:
        # its writer thread runs on the wall's time, not the world's: what it had written
        # at the kill would differ run to run. Every row it was handed is written, then
        # the file let go (a real kill loses up to its last second: not modelled)
        recorder.close()
    http = getattr(core, "http", None)
    gate = getattr(http, "gate", None)
    gcon = getattr(getattr(gate, "store", None), "con", None)
    if gcon is not None:
        with contextlib.suppress(Exception):
            gcon.close()
    lanes = getattr(core, "lanes", {})
    for lane in lanes.values():
        updates = getattr(lane, "updates", None)
        if updates is not None and hasattr(updates, "_stop"):
            updates._stop.set()


def trading_days(refdata: RefData, span: tuple[date, date]) -> list[date]:
    from datetime import timedelta

    out = []
    d = span[0]
    while d <= span[1]:
        if refdata.calendar.is_trading_day("NSE", d):
            out.append(d)
        d += timedelta(days=1)
    return out


@contextlib.contextmanager
def mt_environ(values: dict[str, str]) -> Iterator[None]:
    """Exactly these ``MT_*`` variables while settings load (a test's own are set aside)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MT_")}
    for k in saved:
        del os.environ[k]
    os.environ.update(values)
    try:
        yield
    finally:
        for k in values:
            os.environ.pop(k, None)
        os.environ.update(saved)
