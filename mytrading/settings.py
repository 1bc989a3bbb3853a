"""Run-time settings: environment variables (prefix ``MT_``) and ``.env``, via pydantic-settings.

Every variable is documented in ``env_template.txt``. ``load_settings`` turns a validation
failure into ``ConfigError`` with a message that names the variable and what is allowed,
so the CLI can stop with exit code 2 before any process starts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tomllib
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mytrading.domain.errors import ConfigError

if TYPE_CHECKING:
    from mytrading.process.logsetup import Rotation

__all__ = ["PROJECT_ROOT", "ConfigError", "Settings", "load_settings"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def dotenv() -> dict[str, str | None]:
    """The checkout's ``.env`` (the file every ``MT_*`` setting is read from too)."""
    from dotenv import dotenv_values

    path = PROJECT_ROOT / ".env"
    return dict(dotenv_values(path)) if path.exists() else {}


def env_value(name: str) -> str:
    """A variable a configuration file names (an account's key): from the environment,
    else from ``.env``, as every setting is read; "" when neither has it."""
    return os.environ.get(name) or dotenv().get(name) or ""


def _from_env(prefix: str) -> SettingsConfigDict:
    """Variables named ``<prefix><FIELD>``, from the environment and ``.env``; others
    ignored; defaults validated too."""
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=PROJECT_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )


def _csv(v: object) -> object:
    """A comma-separated environment value as a list (a list is kept)."""
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    return v


class SimSettings(BaseSettings):
    """The simulated market and broker (``MT_SIM_*``): what the embedded default, the
    simulator server and the in-process venue are made of. A section of ``Settings``
    (``settings.sim``), not fields of every daemon's production settings."""

    model_config = _from_env("MT_SIM_")

    seed: int = 42
    speed: float = Field(30.0, gt=0, le=3600)
    start: str = (
        ""  # ISO date or datetime (IST) of market time at start; "" = last trading day 09:15
    )
    tick_hz: float = Field(4.0, gt=0, le=10_000)  # ticks per second per instrument (wall)
    history_sessions: int = Field(2, ge=0, le=4)  # past sessions served by history
    strikes: int = Field(5, ge=0, le=50)  # strikes either side of ATM in the option strip
    underlyings: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["NIFTY", "BANKNIFTY", "SENSEX"]
    )
    # the stocks quoted (config/stocks.toml; "*": all of them, "": none), with their near
    # futures; options strikes either side of ATM for stocks (-1: no stock options)
    stocks: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    stock_strikes: int = Field(-1, ge=-1, le=20)
    slippage_ticks: int = Field(0, ge=0, le=100)

    # --- the OpenAlgo-compatible simulator server (main.py sim)
    server_host: str = "127.0.0.1"
    server_allow_remote: bool = False  # the simulator beyond this machine (a lab)
    rest_port: int = Field(5000, ge=1, le=65535)
    ws_port: int = Field(8765, ge=1, le=65535)
    ws_auth_grace_s: float = Field(15.0, gt=0, le=600)  # then close 4401 "auth timeout"
    # The key the simulator accepts when MT_OPENALGO_API_KEY is empty
    api_key: SecretStr = SecretStr("mytrading-sim-key")
    order_rate_limit: int = Field(10, ge=1)  # per second, per client IP and endpoint
    smart_rate_limit: int = Field(10, ge=1)
    api_rate_limit: int = Field(50, ge=1)
    rest_delay_ms: float = Field(0.0, ge=0, le=10_000)  # a broker's round trip (benchmarks)
    history_spacing_ms: float = Field(350.0, ge=0, le=10_000)  # OpenAlgo's history pacing
    fill_model: Literal["sandbox", "realistic"] = "realistic"
    partial_fills: bool = True  # realistic model: a limit takes at most the touch size
    price_band_pct: float = Field(20.0, gt=0, le=100)  # limit/trigger within +-% of LTP
    option_price_band_pct: float = Field(50.0, gt=0, le=100)  # the same for options
    capital: float = Field(10_000_000.0, gt=0)  # the simulated account's starting cash

    replay: str = ""  # a recorded date (YYYY-MM-DD): the simulator replays it from record_db

    # --- the simulator's feed, as late and messy as a broker's (sim/server/feedfaults.py);
    # every figure in market seconds (at MT_SIM_SPEED 30, 2 s is 67 ms of wall time)
    feed_delay_s: float = Field(0.25, ge=0, le=3600)  # every tick's delivery delay
    feed_jitter_s: float = Field(0.25, ge=0, le=3600)  # plus up to this much at random
    feed_reorder: float = Field(0.0, ge=0, le=1)  # share of ticks held past the next one
    feed_stall_every_s: float = Field(0.0, ge=0)  # a stall this often (0: never)
    feed_stall_s: float = Field(0.0, ge=0, le=3600)  # held this long, then sent in a burst
    # share of contracts (options and futures, by a hash of the name) quoted as illiquid:
    # a trade now and then, their `timestamp` the last trade's while the quotes move
    feed_illiquid: float = Field(0.0, ge=0, le=1)
    feed_clock_offset_s: float = Field(0.0, ge=-86_400, le=86_400)  # its clock less ours
    feed_seed: int = 0

    _split = field_validator("underlyings", "stocks", mode="before")(_csv)

    @field_validator("server_host")
    @classmethod
    def _a_host(cls, v: str) -> str:
        why = bad_host(v)
        if why:
            raise ValueError(why)
        return v

    @field_validator("replay")
    @classmethod
    def _iso_date(cls, v: str) -> str:
        if v:
            try:
                date.fromisoformat(v)
            except ValueError:
                raise ValueError("must be a date, YYYY-MM-DD") from None
        return v


class FaultSwitches(BaseSettings):
    """Switches only tests turn on, read by the one process each concerns (the router,
    the simulator server) and never part of ``Settings``; ``MT_MODE=live`` refuses both
    by name (``Settings.tests_only_settings``)."""

    model_config = _from_env("MT_")

    router_crash_at: str = ""  # die (exit 86) at this journal step: the journal's tests
    # the simulator's faults: "true" serves /_sim/faults (faults queued by a test); a list
    # of key=value makes its bad days seeded (sim/server/faults.py); "" or false: none
    sim_faults: str = ""

    @property
    def sim_faults_on(self) -> bool:
        return self.sim_faults.strip().lower() not in ("", "0", "false", "no", "off")


class Settings(BaseSettings):
    model_config = _from_env("MT_")

    # --- mode and broker
    mode: Literal["live", "paper", "backtest", "dry_run"] = "paper"
    # openalgo: the REST adapter and WebSocket feed (against the local simulator server when
    # sim_server is on, the default). sim: the simulated venue inside the feed and the router
    # (sim/local.py, through the same OpenAlgo requests and messages): unit tests of single
    # daemons and the latency benchmark.
    broker: Literal["sim", "openalgo"] = "openalgo"
    sim_server: bool = True  # start and use the local OpenAlgo-compatible simulator server
    openalgo_timeout_s: float = Field(5.0, gt=0, le=60)  # per REST call (the SDK's default is 120)
    # Order-book polling for working orders, behind the WebSocket's order updates; faster
    # while that socket is down.
    openalgo_poll_s: float = Field(10.0, gt=0, le=600)
    openalgo_poll_no_ws_s: float = Field(1.0, gt=0, le=60)
    # An order whose placement may or may not have reached the broker (its reply lost) is
    # certainly absent only after 3 good reads of the order book over this long
    openalgo_absent_s: float = Field(30.0, ge=1, le=600)
    openalgo_host: str = "http://127.0.0.1:5000"
    openalgo_api_key: SecretStr = SecretStr("")
    openalgo_ws_url: str = "ws://127.0.0.1:8765"
    # Hosts allowed plain http:// and ws:// though not on this machine (the API key then
    # crosses the network in clear): named one by one, on purpose. Default: none.
    openalgo_plain_http_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # More accounts, and strategies that trade on them (default: config/accounts.toml)
    accounts_file: Path | None = None
    # Market data on a fallback account: how often the preferred ones are probed
    feed_failback_s: float = Field(15.0, gt=0, le=3600)
    # what the feed subscribes: what the daemons declare (and the indices), or the whole
    # quoted universe besides (interest.py)
    feed_subscribe: Literal["declared", "universe"] = "declared"
    # Bars under a late feed (bars.py): a quiet instrument's bar is closed by the clock
    # this long (market seconds) past its end and its own lag; a traded one closes on the
    # first tick stamped past its end, whatever the lag
    bar_grace_s: float = Field(2.0, ge=0, le=600)
    # the feed pings OpenAlgo's WebSocket this often (wall seconds) for the broker's clock
    # (its pong's server_timestamp); 0: no pings, the offset from ticks alone
    feed_ping_s: float = Field(30.0, ge=0, le=3600)

    # --- the router's execution safety (docs/execution.md)
    journal_fsync: bool = True  # flush the order journal to the disk on every state change
    # OpenAlgo's ORDER_RATE_LIMIT and SMART_ORDER_RATE_LIMIT (benchmarks raise them)
    router_orders_per_s: float = Field(10.0, gt=0, le=100_000)
    router_smart_orders_per_s: float = Field(1.0, gt=0, le=100_000)
    router_max_attempts: int = Field(3, ge=1, le=10)  # sends of one order that surely failed
    router_retry_backoff_s: float = Field(0.5, ge=0, le=30)  # doubled on each retry
    router_retry_after_max_s: float = Field(60.0, ge=0, le=600)  # cap on a 429's retry_after

    # --- places
    home: Path = PROJECT_ROOT
    log_dir: Path = PROJECT_ROOT / "logs"
    run_dir: Path | None = None  # private runtime directory; derived when unset
    state_dir: Path = PROJECT_ROOT / "logs" / "state"
    config_dir: Path = PROJECT_ROOT / "config"
    strategies_dir: Path = PROJECT_ROOT / "strategies"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # each daemon's log rotates at this size, keeping this many older files, none older
    # than this many days (logsetup.py): at most max_mb * (backups + 1) per daemon
    log_max_mb: float = Field(20.0, gt=0.1, le=10_000)
    log_backups: int = Field(5, ge=1, le=1000)
    log_keep_days: float = Field(14.0, gt=0, le=3650)

    # --- every HTTP server (webhook, dashboard, simulator): slow clients are shed
    # (httpshed.py): a request's headers within this long, its body within this long,
    # at most this many connections, an idle kept-alive one closed after this long
    http_header_timeout_s: float = Field(10.0, gt=0, le=300)
    http_body_timeout_s: float = Field(30.0, gt=0, le=600)
    http_max_connections: int = Field(256, ge=8, le=10_000)
    http_keepalive_s: float = Field(15.0, gt=0, le=3600)

    # --- bus
    bus_transport: Literal["ipc", "tcp"] = "ipc"
    bus_host: str = "127.0.0.1"
    bus_base_port: int = Field(7100, ge=1024, le=65000)
    bus_endpoints: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # CURVE (encryption and the stack's own keys only) on the tcp bus: None = on with tcp.
    # Off is allowed only with every endpoint on loopback (docs/security.md).
    bus_curve: bool | None = None
    bus_keys_dir: Path = PROJECT_ROOT / "keys"  # `main.py keys init` writes them here
    # The daemons this host runs (the others run on another host: docs/deployment.md)
    daemons: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "feed",
            "engine",
            "risk",
            "router",
            "reconciler",
            "signals",
            "monitor",
        ]
    )

    # --- liveness
    heartbeat_s: float = Field(1.0, gt=0, le=10)
    peer_missed_beats: int = Field(3, ge=1, le=100)
    # `main.py stop`: how long a process has after SIGTERM before it gets SIGKILL
    stop_timeout_s: float = Field(8.0, gt=0, le=120)

    # --- the simulated market and broker (the embedded default): MT_SIM_* (SimSettings)
    sim: SimSettings = Field(default_factory=lambda: SimSettings())
    clock_anchor_ns: int = Field(0, ge=0)  # wall instant of MT_SIM_START; the launcher sets it

    # --- market data recording (the feed writes; one writer process per file)
    record: bool = True
    record_db: Path = PROJECT_ROOT / "logs" / "data" / "marketdata.duckdb"
    risk_db: Path = PROJECT_ROOT / "logs" / "data" / "risk.duckdb"  # risk events
    history_db: Path = PROJECT_ROOT / "logs" / "data" / "history.duckdb"  # downloaded, imported
    backtest_db: Path = PROJECT_ROOT / "logs" / "data" / "backtests.duckdb"  # runs, results
    report_dir: Path = PROJECT_ROOT / "logs" / "backtests"  # one directory per run
    instruments_db: Path = PROJECT_ROOT / "logs" / "data" / "instruments.duckdb"  # master contract
    instruments_sync_at_start: bool = True  # start/run sync it once a trading day (real OpenAlgo)

    # --- the monitor: Prometheus metrics, the dashboard, alerts (docs/monitoring.md)
    monitor_host: str = "127.0.0.1"
    monitor_port: int = Field(9108, ge=1, le=65535)
    # The dashboard and /metrics beyond this machine: on purpose, and with a token
    monitor_allow_remote: bool = False
    monitor_token: SecretStr = SecretStr("")  # Bearer <token>, or basic auth's password
    alerts_db: Path = PROJECT_ROOT / "logs" / "data" / "alerts.sqlite"

    # --- webhook signals (TradingView, Amibroker, ChartInk): the signals daemon's server
    webhook_db: Path = PROJECT_ROOT / "logs" / "data" / "webhooks.sqlite"
    signals_host: str = "127.0.0.1"
    signals_port: int = Field(5100, ge=1, le=65535)
    webhook_public_url: str = ""  # the https://... a reverse proxy serves it at, for `new`
    # More names our HTTP servers answer to (the Host header), besides loopback names, the
    # bind address and the webhook URL's host: what a reverse proxy forwards
    http_hostnames: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Listening on anything but loopback exposes order entry: only on purpose (docs/webhooks.md)
    signals_allow_remote: bool = False
    # Behind a reverse proxy every request comes from the proxy: rate-limit by the client
    # address it appends to X-Forwarded-For instead (only set this behind your own proxy)
    signals_trust_proxy: bool = False
    # The proxies whose X-Forwarded-For is believed (addresses or networks); with
    # MT_SIGNALS_TRUST_PROXY and none named: a proxy on this machine (loopback)
    signals_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_rate_per_min: int = Field(100, ge=1, le=100_000)  # per webhook id
    webhook_unknown_per_min: int = Field(30, ge=1, le=100_000)  # unknown ids, per client
    webhook_audit_days: int = Field(90, ge=1, le=3650)  # the audit is pruned past this age
    # retention of the other stores (docs/operating.md, Disk): recorded ticks and bars by
    # market age, risk events and alerts by age, the newest backtest runs, the journal's
    # kept-aside copies (damaged files, other venues' records) by age
    record_keep_days: float = Field(30.0, gt=0, le=36500)
    record_bars_keep_days: float = Field(400.0, gt=0, le=36500)
    risk_events_keep_days: float = Field(365.0, gt=0, le=36500)
    alerts_keep_days: float = Field(90.0, gt=0, le=36500)
    backtest_keep_runs: int = Field(200, ge=1, le=1_000_000)
    journal_aside_keep_days: float = Field(30.0, gt=0, le=36500)
    webhook_dup_window_s: float = Field(60.0, ge=0, le=86_400)  # the same alert again: ignored
    webhook_queue: int = Field(1000, ge=1, le=100_000)  # alerts accepted, not yet processed

    # --- risk
    risk_max_order_lots: int = Field(10, ge=1)
    risk_max_position_lots: int = Field(20, ge=1)
    risk_max_orders_per_sec: int = Field(5, ge=1)
    risk_any_hour: bool = False  # trade outside exchange sessions (demo and tests only)
    risk_wait_s: float = Field(5.0, gt=0, le=60)  # how long an intent waits for a dead risk
    # how long the engine waits for risk's answer to an intent it sent (an approval's order
    # update or a rejection) before it settles it as rejected: longer than risk may hold
    # one (MT_RISK_WAIT_S for the router, 1.5 s for a funds figure, MT_RISK_WAIT_S in
    # risk's own queue to the router), so only a lost or unreadable intent reaches it
    intent_answer_s: float = Field(15.0, gt=0, le=300)
    # while a strategy holds orders open, the engine reads the router's books this often:
    # an order they show ended at two reads in a row that the strategy still holds open
    # lost its final update on the bus (a full queue), and is closed from them; 0: never
    order_check_s: float = Field(30.0, ge=0, le=3600)

    # --- reconciler
    # None: 60 s against a real broker, 10 s on the embedded simulated broker (the demo)
    recon_interval_s: float | None = Field(None, gt=0, le=3600)

    # --- strategies
    strategies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "sma_crossover",
            "rsi_mean_reversion",
            "supertrend_trend",
            "nifty_short_straddle",
            "equity_momentum",
            "stock_futures_trend",
            "nifty_iron_condor",  # a builder file (strategies/nifty_iron_condor.toml)
        ]
    )
    strategy_params: Annotated[dict[str, dict[str, Any]], NoDecode] = Field(default_factory=dict)
    strategy_max_errors: int = Field(5, ge=1)
    # a hook running longer is interrupted and its strategy quarantined; one that cannot
    # be interrupted ends the engine at the second (engine/watchdog.py)
    hook_timeout_s: float = Field(3.0, gt=0, le=600)
    hook_kill_s: float = Field(15.0, gt=0, le=3600)
    # the engine's RSS above this: the strategy whose hooks grew it is quarantined and
    # what it allocated dropped (engine/watchdog.py MemoryGuard); 0: no limit
    engine_max_rss_mb: float = Field(2048.0, ge=0, le=1_000_000)

    @field_validator(
        "strategies",
        "openalgo_plain_http_hosts",
        "daemons",
        "http_hostnames",
        "signals_trusted_proxies",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, v: object) -> object:
        return _csv(v)

    @field_validator("bus_host", "monitor_host", "signals_host")
    @classmethod
    def _a_host(cls, v: str) -> str:
        why = bad_host(v)
        if why:
            raise ValueError(why)
        return v

    @field_validator("http_hostnames", "openalgo_plain_http_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        for h in v:
            why = bad_host(h)
            if why:
                raise ValueError(why)
        return v

    @field_validator("signals_trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        import ipaddress

        for n in v:
            try:
                ipaddress.ip_network(n, strict=False)
            except ValueError:
                raise ValueError(f"{n!r} is not an IP address or network") from None
        return v

    def trusted_proxies(self) -> list[str]:
        """Whose X-Forwarded-For the webhook server believes (none unless told)."""
        if self.signals_trusted_proxies:
            return self.signals_trusted_proxies
        return ["127.0.0.0/8", "::1"] if self.signals_trust_proxy else []

    @field_validator("daemons")
    @classmethod
    def _daemon_names(cls, v: list[str]) -> list[str]:
        from mytrading.messaging.bus import DAEMONS

        bad = [d for d in v if d not in DAEMONS]
        if bad or not v or len(set(v)) != len(v):
            raise ValueError(f"distinct names from {', '.join(DAEMONS)}; got {v}")
        return v

    @field_validator("strategies")
    @classmethod
    def _strategy_names(cls, v: list[str]) -> list[str]:
        from mytrading.domain.names import bad_name

        for name in v:
            why = bad_name(name)
            if why:
                raise ValueError(why)
        return v

    @field_validator("strategy_params")
    @classmethod
    def _params_names(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from mytrading.domain.names import bad_name

        for name, table in v.items():
            why = bad_name(name)
            if why:
                raise ValueError(why)
            if not isinstance(table, dict):
                raise ValueError(f"{name}: parameters are a JSON object")
        return v

    @field_validator("bus_endpoints", "strategy_params", mode="before")
    @classmethod
    def _parse_json(cls, v: object) -> object:
        if isinstance(v, str):
            if not v.strip():
                return {}
            try:
                return json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON object ({exc.msg})") from exc
        return v

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.hook_kill_s <= self.hook_timeout_s:
            raise ValueError(
                f"MT_HOOK_KILL_S={self.hook_kill_s:g} must be more than MT_HOOK_TIMEOUT_S="
                f"{self.hook_timeout_s:g}: the process is ended only for a hook the "
                "timeout could not stop"
            )
        if self.intent_answer_s <= 2 * self.risk_wait_s + 1.5:
            raise ValueError(
                f"MT_INTENT_ANSWER_S={self.intent_answer_s:g} must be more than twice "
                f"MT_RISK_WAIT_S plus 1.5 s ({2 * self.risk_wait_s + 1.5:g}): risk may hold an "
                "intent that long before it answers"
            )
        if self.mode == "live" and (self.broker != "openalgo" or self.sim_server):
            raise ValueError("mode 'live' needs MT_BROKER=openalgo and MT_SIM_SERVER=false")
        if self.mode == "live" and self.sim.start:
            raise ValueError(
                "MT_SIM_START makes market time simulated: not with MT_MODE=live "
                "(live runs on the wall clock)"
            )
        if (
            self.broker == "openalgo"
            and not self.sim_server
            and not self.openalgo_api_key.get_secret_value()
        ):
            raise ValueError("MT_OPENALGO_API_KEY is required for a real OpenAlgo server")
        if self.mode == "live":
            tests_only = self.tests_only_settings()
            if tests_only:
                raise ValueError(
                    "MT_MODE=live refuses settings meant for tests and demos only: "
                    + "; ".join(tests_only)
                )
        for host, allow, var in (
            (self.monitor_host, self.monitor_allow_remote, "MONITOR"),
            (self.sim.server_host, self.sim.server_allow_remote, "SIM_SERVER"),
        ):
            if not is_loopback(host) and not allow:
                raise ValueError(
                    f"MT_{var}_HOST={host} would serve it to the network: set "
                    f"MT_{var}_ALLOW_REMOTE=true to mean it (docs/security.md)"
                )
        if not is_loopback(self.monitor_host) and len(self.monitor_token.get_secret_value()) < 16:
            raise ValueError(
                f"MT_MONITOR_HOST={self.monitor_host} needs MT_MONITOR_TOKEN (16+ characters): "
                "the dashboard and /metrics show positions and P&L"
            )
        if self.bus_transport == "tcp" and self.bus_curve is False:
            wide = [a for a in self.endpoints().endpoints.values() if not _loopback_url(a)]
            if wide:
                raise ValueError(
                    f"the tcp bus reaches beyond this machine ({wide[0]}) without CURVE: "
                    "leave MT_BUS_CURVE unset (CURVE is the default on tcp) and run "
                    "`python3 main.py keys init`"
                )
        if not is_loopback(self.signals_host) and not self.signals_allow_remote:
            raise ValueError(
                f"MT_SIGNALS_HOST={self.signals_host} would take orders from the network: "
                "set MT_SIGNALS_ALLOW_REMOTE=true to mean it, or serve it through a reverse "
                "proxy with TLS (docs/webhooks.md)"
            )
        return self

    # ----------------------------------------------------------------- derived

    def log_rotation(self) -> Rotation:
        """``setup_logging``'s rotation."""
        from mytrading.process.logsetup import Rotation

        return Rotation(self.log_max_mb, self.log_backups, self.log_keep_days)

    def runtime_dir(self) -> Path:
        """Private directory for ipc sockets: one per checkout, mode 0700."""
        if self.run_dir is not None:
            return self.run_dir
        digest = hashlib.sha1(str(self.home.resolve()).encode()).hexdigest()[:10]
        base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
        return Path(base) / f"mytrading-{os.getuid()}-{digest}"

    def http_names(self, bind_host: str) -> frozenset[str]:
        """The Host names an HTTP server bound to ``bind_host`` answers to."""
        import urllib.parse

        from mytrading.web.guard import host_names

        public = urllib.parse.urlsplit(self.webhook_public_url).hostname or ""
        return host_names(bind_host, [*self.http_hostnames, public])

    def bus_curve_on(self) -> bool:
        """The tcp bus uses CURVE unless switched off (then loopback only)."""
        return self.bus_transport == "tcp" and self.bus_curve is not False

    def tests_only_settings(self) -> list[str]:
        """The settings made for tests and demos that are set: each named, with why."""
        found = []
        if not self.journal_fsync:
            found.append("MT_JOURNAL_FSYNC=false (an order could be lost in a power cut)")
        faults = FaultSwitches()
        if faults.router_crash_at:
            found.append(f"MT_ROUTER_CRASH_AT={faults.router_crash_at} (kills the router)")
        if self.risk_any_hour:
            found.append("MT_RISK_ANY_HOUR=true (orders outside the exchange's sessions)")
        if faults.sim_faults_on:
            found.append(f"MT_SIM_FAULTS={faults.sim_faults} (a simulator's fault injection)")
        if self.bus_curve is False:
            found.append("MT_BUS_CURVE=false (an unauthenticated bus)")
        return found

    def endpoints(self):  # -> bus.EndpointMap (import kept local: settings loads first)
        from mytrading.messaging.bus import EndpointMap

        return EndpointMap.build(
            self.bus_transport,
            str(self.runtime_dir()),
            self.bus_host,
            self.bus_base_port,
            self.bus_endpoints,
        )

    def recon_interval(self) -> float:
        if self.recon_interval_s is not None:
            return self.recon_interval_s
        return 10.0 if self.simulated() else 60.0

    def simulated(self) -> bool:
        """True when market time is simulated: the embedded simulator server, the
        in-process venue, or an explicit ``MT_SIM_START`` (a simulator standing in for an
        OpenAlgo: tests, the real-OpenAlgo harness). Never live: live runs on wall time."""
        return self.broker == "sim" or self.sim_server or bool(self.sim.start)

    def rest_url(self) -> str:
        if self.sim_server:
            return f"http://{self.sim.server_host}:{self.sim.rest_port}"
        return self.openalgo_host

    def ws_url(self) -> str:
        if self.sim_server:
            return f"ws://{self.sim.server_host}:{self.sim.ws_port}"
        return self.openalgo_ws_url

    def shed_limits(self):  # -> httpshed.ShedLimits (import kept local: settings loads first)
        from mytrading.web.shed import ShedLimits

        return ShedLimits(
            self.http_header_timeout_s,
            self.http_body_timeout_s,
            self.http_max_connections,
            self.http_keepalive_s,
        )

    def api_key(self) -> str:
        key = self.openalgo_api_key.get_secret_value()
        return key or (self.sim.api_key.get_secret_value() if self.sim_server else "")

    def check_strategy_tables(self) -> None:
        """Every table of ``config/strategies.toml`` names a strategy by the one rule."""
        from mytrading.domain.names import check_names

        path = self.config_dir / "strategies.toml"
        if path.exists():
            try:
                tables = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            check_names(list(tables), str(path))

    def params_for(self, strategy: str) -> dict[str, Any]:
        """Class defaults < ``config/strategies.toml`` [strategy] < ``MT_STRATEGY_PARAMS``
        (the file read once while it is unchanged, not once per strategy)."""
        path = self.config_dir / "strategies.toml"
        from_file: dict[str, Any] = {}
        if path.exists():
            st = path.stat()
            try:
                table = _strategy_tables(str(path), st.st_mtime_ns, st.st_size).get(strategy, {})
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [{strategy}] must be a table")
            from_file = table
        return {**from_file, **self.strategy_params.get(strategy, {})}


@functools.lru_cache(maxsize=8)
def _strategy_tables(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """``strategies.toml`` parsed, kept while its time and size are the same."""
    return tomllib.loads(Path(path).read_text())


def _loopback_url(address: str) -> bool:
    """A bus address on this machine only: ipc, inproc, or tcp to a loopback host."""
    if not address.startswith("tcp://"):
        return True
    host = address[len("tcp://") :].rsplit(":", 1)[0].strip("[]")
    return is_loopback(host)


def bad_host(host: str) -> str | None:
    """Why ``host`` is not a host name or an IP address (None when it is one)."""
    import ipaddress
    import re

    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
    if len(host) <= 253 and re.fullmatch(rf"{label}(\.{label})*\.?", host):
        return None
    return f"{host!r} is not a host name or an IP address"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: Any) -> Settings:
    """Load and validate; raise ConfigError naming each bad variable and what is allowed.

    ``overrides`` are settings by their variable's name less ``MT_`` in lower case
    (``mode="live"``, ``sim_seed=7``): a name that is no setting is a ``TypeError``,
    never silently ignored."""
    sim_over = {
        k.removeprefix("sim_"): overrides.pop(k)
        for k in list(overrides)
        if k.startswith("sim_") and k.removeprefix("sim_") in SimSettings.model_fields
    }
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise TypeError(f"not settings: {', '.join(unknown)}")
    try:
        sim = SimSettings(**sim_over)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, "MT_SIM_")) from None
    try:
        s = Settings(sim=sim, **overrides)
        s.endpoints()  # unknown endpoint names are a config error too
        return s
    except ValidationError as exc:
        raise ConfigError(_explain(exc, "MT_")) from None
    except ValueError as exc:
        raise ConfigError(f"MT_BUS_ENDPOINTS: {exc}") from None


def _explain(exc: ValidationError, prefix: str) -> str:
    """One line per error: the variable, what is wrong, what it was given."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if p]
        var = prefix + "_".join(loc).upper() if loc else "configuration"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{var}: {msg} (got {err.get('input')!r})" if loc else f"{var}: {msg}")
    return "\n".join(lines)
