"""One frozen settings section per daemon and part, composed into the stack's ``Settings``.

Each section is read from its variables (``settings/env.py``: the section's prefix and
the field's name, or the field's alias), and each field is documented by the docstring
under it. A process reads the sections it uses (``settings.router.max_attempts``); the
variables are those of ``env_template.txt``, unchanged since the settings were one class.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

from mytrading.settings.env import PROJECT_ROOT, csv, from_env
from mytrading.settings.hosts import a_host, hosts

DATA = PROJECT_ROOT / "logs" / "data"


class OpenAlgoSettings(BaseSettings):
    """The OpenAlgo server the adapter and the feed talk to (``MT_OPENALGO_*``)."""

    model_config = from_env("MT_OPENALGO_")

    host: str = "http://127.0.0.1:5000"
    """Its REST base URL."""
    ws_url: str = "ws://127.0.0.1:8765"
    """Its WebSocket URL (market data and order updates)."""
    api_key: SecretStr = SecretStr("")
    """Its API key: never logged, never shown (required for a real server)."""
    timeout_s: float = Field(5.0, gt=0, le=60)
    """Per REST call (the SDK's default is 120 s)."""
    poll_s: float = Field(10.0, gt=0, le=600)
    """Order-book polling for working orders, behind the WebSocket's order updates."""
    poll_no_ws_s: float = Field(1.0, gt=0, le=60)
    """... and while that WebSocket is down."""
    absent_s: float = Field(30.0, ge=1, le=600)
    """An order whose placement reply was lost is certainly absent only after three good
    reads of the order book over this long."""
    plain_http_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Hosts allowed plain http:// and ws:// though not on this machine (the key then
    crosses the network in clear): named one by one, on purpose. Default: none."""

    _split = field_validator("plain_http_hosts", mode="before")(csv)
    _hosts = field_validator("plain_http_hosts")(hosts)


class FeedSettings(BaseSettings):
    """The market-data daemon (``MT_FEED_*``)."""

    model_config = from_env("MT_FEED_")

    failback_s: float = Field(15.0, gt=0, le=3600)
    """Market data on a fallback account: how often the preferred ones are probed."""
    subscribe: Literal["declared", "universe"] = "declared"
    """What it subscribes: what the daemons declare (and the indices), or the whole
    quoted universe besides (``messaging/interest.py``)."""
    ping_s: float = Field(30.0, ge=0, le=3600)
    """It pings OpenAlgo's WebSocket this often (wall seconds) for the broker's clock
    (its pong's ``server_timestamp``); 0: no pings, the offset from ticks alone."""


class RouterSettings(BaseSettings):
    """The order router's execution safety (``MT_ROUTER_*``, docs/execution.md)."""

    model_config = from_env("MT_ROUTER_")

    journal_fsync: bool = Field(True, validation_alias="MT_JOURNAL_FSYNC")
    """Flush the order journal to the disk on every state change (off: tests only)."""
    orders_per_s: float = Field(10.0, gt=0, le=100_000)
    """OpenAlgo's ``ORDER_RATE_LIMIT`` (benchmarks raise it)."""
    smart_orders_per_s: float = Field(1.0, gt=0, le=100_000)
    """OpenAlgo's ``SMART_ORDER_RATE_LIMIT``."""
    max_attempts: int = Field(3, ge=1, le=10)
    """Sends of one order that surely failed."""
    retry_backoff_s: float = Field(0.5, ge=0, le=30)
    """The wait before a retry, doubled on each."""
    retry_after_max_s: float = Field(60.0, ge=0, le=600)
    """The cap on a 429's ``retry_after``."""
    rehearse_ms: int = Field(10, ge=0, le=1000)
    """While no order comes, frame the last order's journal record again this often,
    writing nothing, so the next one finds the code warm (0: never; ``journal.rehearse``)."""


class RiskSettings(BaseSettings):
    """The risk daemon's overrides of ``config/risk.toml`` and its waits (``MT_RISK_*``).
    A limit given here replaces its key of ``[defaults]`` (``risk/limits.py``)."""

    model_config = from_env("MT_RISK_")

    max_order_lots: int = Field(10, ge=1)
    """Lots in one order (above: split or refused)."""
    max_position_lots: int = Field(20, ge=1)
    """Lots one strategy may hold in one contract."""
    max_orders_per_sec: int = Field(5, ge=1)
    """Orders a strategy may send in one second."""
    any_hour: bool = False
    """Trade outside exchange sessions (demos and tests only; refused live)."""
    wait_s: float = Field(5.0, gt=0, le=60)
    """How long an intent waits for a dead risk, and an approved order for the router."""
    rehearse_ms: int = Field(10, ge=0, le=1000)
    """While no intent comes, judge the last order again this often, sending nothing, so
    the next one finds risk's code warm (0: never; ``RiskCore.rehearse``)."""

    # the fields that override ``config/risk.toml``'s ``[defaults]`` when given
    OVERRIDES: ClassVar[tuple[str, ...]] = (
        "max_order_lots",
        "max_position_lots",
        "max_orders_per_sec",
        "any_hour",
    )

    def overrides(self) -> dict[str, object]:
        """The limits given (environment or ``.env``), by their ``risk.toml`` key."""
        return {n: getattr(self, n) for n in self.OVERRIDES if n in self.model_fields_set}


class EngineSettings(BaseSettings):
    """The strategy engine: how long it waits, and how it contains a strategy."""

    model_config = from_env("MT_")

    intent_answer_s: float = Field(15.0, gt=0, le=300)
    """How long it waits for risk's answer to an intent (an approval's order update or a
    rejection) before settling it as rejected: longer than risk may hold one, so only a
    lost or unreadable intent reaches it."""
    order_check_s: float = Field(30.0, ge=0, le=3600)
    """While a strategy holds orders open, the router's books are read this often: an
    order they show ended at two reads in a row lost its final update on the bus, and is
    closed from them; 0: never."""
    strategy_max_errors: int = Field(5, ge=1)
    """Hook errors after which a strategy is quarantined."""
    hook_timeout_s: float = Field(3.0, gt=0, le=600)
    """A hook running longer is interrupted and its strategy quarantined."""
    hook_kill_s: float = Field(15.0, gt=0, le=3600)
    """A hook the timeout could not stop ends the engine at this (``engine/watchdog.py``)."""
    max_rss_mb: float = Field(2048.0, ge=0, le=1_000_000, validation_alias="MT_ENGINE_MAX_RSS_MB")
    """Above this resident size, the strategy whose hooks grew it is quarantined and what
    it allocated dropped (``engine/watchdog.py`` ``MemoryGuard``); 0: no limit."""

    @model_validator(mode="after")
    def _kill_after_timeout(self) -> EngineSettings:
        if self.hook_kill_s <= self.hook_timeout_s:
            raise ValueError(
                f"MT_HOOK_KILL_S={self.hook_kill_s:g} must be more than MT_HOOK_TIMEOUT_S="
                f"{self.hook_timeout_s:g}: the process is ended only for a hook the "
                "timeout could not stop"
            )
        return self


class ReconSettings(BaseSettings):
    """The reconciler (``MT_RECON_*``)."""

    model_config = from_env("MT_RECON_")

    interval_s: float | None = Field(None, gt=0, le=3600)
    """How often our books are compared with the broker's; unset: 60 s against a real
    broker, 10 s on the embedded simulated one (the demo)."""


class MonitorSettings(BaseSettings):
    """The monitor's Prometheus metrics and dashboard (``MT_MONITOR_*``)."""

    model_config = from_env("MT_MONITOR_")

    host: str = "127.0.0.1"
    """The address the dashboard listens on."""
    port: int = Field(9108, ge=1, le=65535)
    """... and its port."""
    allow_remote: bool = False
    """The dashboard and /metrics beyond this machine: on purpose, and with a token."""
    token: SecretStr = SecretStr("")
    """``Bearer <token>``, or basic auth's password (16+ characters off loopback)."""

    _host = field_validator("host")(a_host)


class SignalsSettings(BaseSettings):
    """The signals daemon's webhook server (``MT_SIGNALS_*``, ``MT_WEBHOOK_*``)."""

    model_config = from_env("MT_SIGNALS_")

    host: str = "127.0.0.1"
    """The address it listens on."""
    port: int = Field(5100, ge=1, le=65535)
    """... and its port."""
    allow_remote: bool = False
    """Listening on anything but loopback exposes order entry: only on purpose."""
    trust_proxy: bool = False
    """Behind a reverse proxy every request comes from the proxy: rate-limit by the client
    address it appends to X-Forwarded-For instead (only behind your own proxy)."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """The proxies whose X-Forwarded-For is believed (addresses or networks); with
    ``trust_proxy`` and none named: a proxy on this machine."""
    public_url: str = Field("", validation_alias="MT_WEBHOOK_PUBLIC_URL")
    """The https://... a reverse proxy serves it at, for ``webhook new``."""
    rate_per_min: int = Field(100, ge=1, le=100_000, validation_alias="MT_WEBHOOK_RATE_PER_MIN")
    """Alerts a minute per webhook id."""
    unknown_per_min: int = Field(
        30, ge=1, le=100_000, validation_alias="MT_WEBHOOK_UNKNOWN_PER_MIN"
    )
    """Requests a minute for unknown ids, per client."""
    dup_window_s: float = Field(60.0, ge=0, le=86_400, validation_alias="MT_WEBHOOK_DUP_WINDOW_S")
    """The same alert again within this long is ignored."""
    queue: int = Field(1000, ge=1, le=100_000, validation_alias="MT_WEBHOOK_QUEUE")
    """Alerts accepted, not yet processed."""

    _split = field_validator("trusted_proxies", mode="before")(csv)
    _host = field_validator("host")(a_host)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        import ipaddress

        for n in v:
            try:
                ipaddress.ip_network(n, strict=False)
            except ValueError:
                raise ValueError(f"{n!r} is not an IP address or network") from None
        return v

    def proxies(self) -> list[str]:
        """Whose X-Forwarded-For the webhook server believes (none unless told)."""
        if self.trusted_proxies:
            return self.trusted_proxies
        return ["127.0.0.0/8", "::1"] if self.trust_proxy else []


class ControlSettings(BaseSettings):
    """The HTTP control API (``MT_CONTROL_*``; its record and tokens: ``MT_CONTROL_DB``)."""

    model_config = from_env("MT_CONTROL_")

    rate_per_min: int = Field(60, ge=1, le=100_000)
    """Requests a minute per token; over it, 429 (and recorded)."""


class HttpSettings(BaseSettings):
    """Every HTTP server (webhook, dashboard, simulator) sheds slow clients
    (``web/shed.py``) and answers only to its own names (``MT_HTTP_*``)."""

    model_config = from_env("MT_HTTP_")

    header_timeout_s: float = Field(10.0, gt=0, le=300)
    """A request's headers within this long."""
    body_timeout_s: float = Field(30.0, gt=0, le=600)
    """... its body within this long."""
    max_connections: int = Field(256, ge=8, le=10_000)
    """At most this many connections."""
    keepalive_s: float = Field(15.0, gt=0, le=3600)
    """An idle kept-alive connection is closed after this long."""
    hostnames: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """More names the servers answer to (the Host header), besides loopback names, the
    bind address and the webhook URL's host: what a reverse proxy forwards."""

    _split = field_validator("hostnames", mode="before")(csv)
    _hosts = field_validator("hostnames")(hosts)

    def shed_limits(self):  # -> web.shed.ShedLimits (imported here: settings load first)
        from mytrading.web.shed import ShedLimits

        return ShedLimits(
            self.header_timeout_s, self.body_timeout_s, self.max_connections, self.keepalive_s
        )


class BusSettings(BaseSettings):
    """The message bus (``MT_BUS_*``, docs/deployment.md and docs/security.md)."""

    model_config = from_env("MT_BUS_")

    transport: Literal["ipc", "tcp"] = "ipc"
    """ipc on one host; tcp across hosts."""
    host: str = "127.0.0.1"
    """The tcp bus's host."""
    base_port: int = Field(7100, ge=1024, le=65000)
    """The first of its ports."""
    endpoints: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Endpoints by name, replacing the derived ones (a JSON object)."""
    curve: bool | None = None
    """CURVE (encryption and the stack's own keys only) on the tcp bus: unset = on with
    tcp; off is allowed only with every endpoint on loopback."""
    keys_dir: Path = PROJECT_ROOT / "keys"
    """Where ``main.py keys init`` writes the bus keys."""

    _host = field_validator("host")(a_host)

    @field_validator("endpoints", mode="before")
    @classmethod
    def _parse_json(cls, v: object) -> object:
        return json_object(v)

    def curve_on(self) -> bool:
        """The tcp bus uses CURVE unless switched off (then loopback only)."""
        return self.transport == "tcp" and self.curve is not False


class LivenessSettings(BaseSettings):
    """Heartbeats and stopping, for every daemon."""

    model_config = from_env("MT_")

    heartbeat_s: float = Field(1.0, gt=0, le=10)
    """Each daemon's status beat."""
    peer_missed_beats: int = Field(3, ge=1, le=100)
    """A peer silent this many beats is down."""
    stop_timeout_s: float = Field(8.0, gt=0, le=120)
    """``main.py stop``: how long a process has after SIGTERM before it gets SIGKILL."""


class LogSettings(BaseSettings):
    """Each daemon's JSON log (``MT_LOG_*``; its directory is ``MT_LOG_DIR``)."""

    model_config = from_env("MT_LOG_")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The least level written."""
    max_mb: float = Field(20.0, gt=0.1, le=10_000)
    """A log rotates at this size ..."""
    backups: int = Field(5, ge=1, le=1000)
    """... keeping this many older files ..."""
    keep_days: float = Field(14.0, gt=0, le=3650)
    """... none older than this many days: at most ``max_mb * (backups + 1)`` a daemon."""

    def rotation(self):  # -> process.logsetup.Rotation (imported here: settings load first)
        from mytrading.process.logsetup import Rotation

        return Rotation(self.max_mb, self.backups, self.keep_days)


class StoreSettings(BaseSettings):
    """The stack's files: each written by one process."""

    model_config = from_env("MT_")

    record: bool = True
    """The feed records ticks and bars."""
    record_db: Path = DATA / "marketdata.duckdb"
    """... into this file."""
    record_idle_s: float = Field(60.0, gt=0, le=86_400)
    """With nothing to write this long (after the close), the feed lets the recording go:
    a reader (the day's shadow, ``main.py data``, a notebook) can open it."""
    risk_db: Path = DATA / "risk.duckdb"
    """Risk's events."""
    history_db: Path = DATA / "history.duckdb"
    """Downloaded and imported history."""
    backtest_db: Path = DATA / "backtests.duckdb"
    """Backtest runs and their results."""
    report_dir: Path = PROJECT_ROOT / "logs" / "backtests"
    """One directory per backtest run."""
    instruments_db: Path = DATA / "instruments.duckdb"
    """The master contract."""
    instruments_sync_at_start: bool = True
    """``start``/``run`` sync the master contract once a trading day (real OpenAlgo)."""
    alerts_db: Path = DATA / "alerts.sqlite"
    """The monitor's alerts."""
    webhook_db: Path = DATA / "webhooks.sqlite"
    """Webhook strategies and their audit."""
    control_db: Path = DATA / "control.sqlite"
    """Every command given to the running stack, with who, how and what came of it."""


class RetentionSettings(BaseSettings):
    """How long each store keeps what it holds (docs/operating.md, Disk)."""

    model_config = from_env("MT_")

    record_keep_days: float = Field(30.0, gt=0, le=36500)
    """Recorded ticks, by market age."""
    record_bars_keep_days: float = Field(400.0, gt=0, le=36500)
    """Recorded bars, by market age."""
    risk_events_keep_days: float = Field(365.0, gt=0, le=36500)
    """Risk events, by age."""
    alerts_keep_days: float = Field(90.0, gt=0, le=36500)
    """Alerts, by age."""
    backtest_keep_runs: int = Field(200, ge=1, le=1_000_000)
    """The newest backtest runs kept."""
    journal_aside_keep_days: float = Field(30.0, gt=0, le=36500)
    """The journal's kept-aside copies (damaged files, other venues' records), by age."""
    webhook_audit_days: int = Field(90, ge=1, le=3650)
    """The webhook audit, by age."""


class SimSettings(BaseSettings):
    """The simulated market and broker (``MT_SIM_*``): what the embedded default, the
    simulator server and the in-process venue are made of."""

    model_config = from_env("MT_SIM_")

    seed: int = 42
    """The random walk's seed."""
    speed: float = Field(30.0, gt=0, le=3600)
    """Market seconds per wall second."""
    start: str = ""
    """ISO date or datetime (IST) of market time at start; "" = the last trading day 09:15."""
    skip: str = ""
    """A span of every simulated session that market time jumps over, ``HH:MM-HH:MM`` (the
    quiet midday: a demo or a simulation that wants the open and the close sooner); ""
    = none. No quote in it, as in a trading halt."""
    tick_hz: float = Field(4.0, gt=0, le=10_000)
    """Ticks per second per instrument (wall)."""
    history_sessions: int = Field(2, ge=0, le=4)
    """Past sessions served by history."""
    strikes: int = Field(5, ge=0, le=50)
    """Strikes either side of ATM in the option strip."""
    underlyings: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["NIFTY", "BANKNIFTY", "SENSEX"]
    )
    """The indices quoted, with their futures and options."""
    stocks: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    """The stocks quoted (``config/stocks.toml``; "*": all of them, "": none), with their
    near futures."""
    stock_strikes: int = Field(-1, ge=-1, le=20)
    """Option strikes either side of ATM for stocks (-1: no stock options)."""
    slippage_ticks: int = Field(0, ge=0, le=100)
    """Ticks of slippage on each market fill."""

    server_host: str = "127.0.0.1"
    """The OpenAlgo-compatible simulator server (``main.py sim``) listens here."""
    server_allow_remote: bool = False
    """The simulator beyond this machine (a lab)."""
    rest_port: int = Field(5000, ge=1, le=65535)
    """Its REST port."""
    ws_port: int = Field(8765, ge=1, le=65535)
    """Its WebSocket port."""
    ws_auth_grace_s: float = Field(15.0, gt=0, le=600)
    """A WebSocket not authenticated within this is closed 4401 "auth timeout"."""
    api_key: SecretStr = SecretStr("mytrading-sim-key")
    """The key the simulator accepts when ``MT_OPENALGO_API_KEY`` is empty."""
    order_rate_limit: int = Field(10, ge=1)
    """Orders a second, per client IP and endpoint."""
    smart_rate_limit: int = Field(10, ge=1)
    """Smart orders a second."""
    api_rate_limit: int = Field(50, ge=1)
    """Other calls a second."""
    rest_delay_ms: float = Field(0.0, ge=0, le=10_000)
    """A broker's round trip (benchmarks)."""
    history_spacing_ms: float = Field(350.0, ge=0, le=10_000)
    """OpenAlgo's history pacing."""
    fill_model: Literal["sandbox", "realistic"] = "realistic"
    """sandbox: OpenAlgo's sandbox rules; realistic: the touch, its size, the queue."""
    partial_fills: bool = True
    """Realistic model: a limit takes at most the touch size."""
    depth_lots: int = Field(40, ge=2, le=10_000)
    """A quote's size at the touch: 1 to this less one lots (a market order larger than
    it walks the book, in several trades)."""
    price_band_pct: float = Field(20.0, gt=0, le=100)
    """A limit or trigger within +-% of the last price."""
    option_price_band_pct: float = Field(50.0, gt=0, le=100)
    """The same for options."""
    capital: float = Field(10_000_000.0, gt=0)
    """The simulated account's starting cash."""
    replay: str = ""
    """A recorded date (YYYY-MM-DD): the simulator replays it from the recordings."""

    # the simulator's feed, as late and messy as a broker's (sim/server/feedfaults.py);
    # every figure in market seconds (at MT_SIM_SPEED 30, 2 s is 67 ms of wall time)
    feed_delay_s: float = Field(0.25, ge=0, le=3600)
    """Every tick's delivery delay."""
    feed_jitter_s: float = Field(0.25, ge=0, le=3600)
    """Plus up to this much at random."""
    feed_reorder: float = Field(0.0, ge=0, le=1)
    """The share of ticks held past the next one."""
    feed_stall_every_s: float = Field(0.0, ge=0)
    """A stall this often (0: never) ..."""
    feed_stall_s: float = Field(0.0, ge=0, le=3600)
    """... held this long, then sent in a burst."""
    feed_illiquid: float = Field(0.0, ge=0, le=1)
    """The share of contracts (by a hash of the name) quoted as illiquid: a trade now and
    then, their ``timestamp`` the last trade's while the quotes move."""
    feed_clock_offset_s: float = Field(0.0, ge=-86_400, le=86_400)
    """Its clock less ours."""
    feed_seed: int = 0
    """The feed faults' seed."""

    _split = field_validator("underlyings", "stocks", mode="before")(csv)
    _host = field_validator("server_host")(a_host)

    @field_validator("skip")
    @classmethod
    def _skip(cls, v: str) -> str:
        if not v.strip():
            return ""
        try:
            a, b = (time.fromisoformat(x.strip()) for x in v.split("-"))
        except ValueError:
            raise ValueError(f"skip must look like 10:45-14:00, got {v!r}") from None
        if not a < b:
            raise ValueError(f"skip {v!r} ends before it starts")
        return f"{a:%H:%M}-{b:%H:%M}"

    def skipped(self) -> tuple[time, time] | None:
        """The span of each session market time jumps over, if any."""
        if not self.skip:
            return None
        a, b = self.skip.split("-")
        return time.fromisoformat(a), time.fromisoformat(b)

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

    model_config = from_env("MT_")

    router_crash_at: str = ""
    """Die (exit 86) at this journal step: the journal's tests."""
    sim_faults: str = ""
    """The simulator's faults: "true" serves /_sim/faults (faults queued by a test); a list
    of key=value makes its bad days seeded (``sim/server/faults.py``); "" or false: none."""

    @property
    def sim_faults_on(self) -> bool:
        return self.sim_faults.strip().lower() not in ("", "0", "false", "no", "off")


def json_object(v: object) -> object:
    """A JSON object given as an environment value (an empty one: ``{}``)."""
    import json

    if isinstance(v, str):
        if not v.strip():
            return {}
        try:
            return json.loads(v)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON object ({exc.msg})") from exc
    return v


SECTIONS: dict[str, type[BaseSettings]] = {
    "openalgo": OpenAlgoSettings,
    "feed": FeedSettings,
    "router": RouterSettings,
    "risk": RiskSettings,
    "engine": EngineSettings,
    "recon": ReconSettings,
    "monitor": MonitorSettings,
    "signals": SignalsSettings,
    "control": ControlSettings,
    "http": HttpSettings,
    "bus": BusSettings,
    "liveness": LivenessSettings,
    "logs": LogSettings,
    "stores": StoreSettings,
    "retention": RetentionSettings,
    "sim": SimSettings,
}
"""The sections of ``Settings``, by its attribute."""
