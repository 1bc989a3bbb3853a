"""Run-time settings: environment variables (prefix ``MT_``) and ``.env``, via pydantic-settings.

``Settings`` is the stack's: its own fields (the mode, the broker, the places, the
daemons and strategies) and one frozen section per daemon and part
(``settings/sections.py``: ``settings.router``, ``settings.risk``, ``settings.sim``...),
each read from its own variables. Every variable is documented in ``env_template.txt``.
``load_settings`` turns a validation failure into ``ConfigError`` with a message that
names the variable and what is allowed, so the CLI can stop with exit code 2 before any
process starts.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode

from mytrading.domain.errors import ConfigError
from mytrading.settings.env import csv, env_name, field_of, from_env
from mytrading.settings.hosts import bad_host, is_loopback, loopback_url
from mytrading.settings.sections import (
    SECTIONS,
    BusSettings,
    ControlSettings,
    EngineSettings,
    FaultSwitches,
    FeedSettings,
    HttpSettings,
    LivenessSettings,
    LogSettings,
    MonitorSettings,
    OpenAlgoSettings,
    ReconSettings,
    RetentionSettings,
    RiskSettings,
    RouterSettings,
    SignalsSettings,
    SimSettings,
    StoreSettings,
    json_object,
)

__all__ = [
    "PROJECT_ROOT",
    "ConfigError",
    "FaultSwitches",
    "Settings",
    "SimSettings",
    "bad_host",
    "env_value",
    "is_loopback",
    "load_settings",
    "variables",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
NOT_PARAMS = frozenset({"schedule", "enabled"})  # keys of a strategy's table that are not
# its parameters (risk's schedule; the engine's switch)


def dotenv() -> dict[str, str | None]:
    """The checkout's ``.env`` (the file every ``MT_*`` setting is read from too)."""
    from dotenv import dotenv_values

    path = PROJECT_ROOT / ".env"
    return dict(dotenv_values(path)) if path.exists() else {}


def env_value(name: str) -> str:
    """A variable a configuration file names (an account's key): from the environment,
    else from ``.env``, as every setting is read; "" when neither has it."""
    return os.environ.get(name) or dotenv().get(name) or ""


class Settings(BaseSettings):
    """The stack's settings: its own fields, and a section per daemon and part."""

    model_config = from_env("MT_")

    mode: Literal["live", "paper", "backtest", "dry_run"] = "paper"
    """live: real orders (confirmed); paper: live data, simulated fills; dry_run: nothing
    leaves; backtest."""
    broker: Literal["sim", "openalgo"] = "openalgo"
    """openalgo: the REST adapter and WebSocket feed (against the local simulator server
    when ``sim_server`` is on, the default). sim: the simulated venue inside the feed and
    the router (``sim/local.py``, through the same OpenAlgo requests and messages): unit
    tests of single daemons and the latency benchmark."""
    sim_server: bool = True
    """Start and use the local OpenAlgo-compatible simulator server (the embedded default)."""
    accounts_file: Path | None = None
    """More accounts, and strategies that trade on them (default: config/accounts.toml)."""
    bar_grace_s: float = Field(2.0, ge=0, le=600)
    """Bars under a late feed (``domain/bars.py``): a quiet instrument's bar is closed by
    the clock this long (market seconds) past its end and its own lag; a traded one closes
    on the first tick stamped past its end, whatever the lag."""
    clock_anchor_ns: int = Field(0, ge=0)
    """The wall instant of ``MT_SIM_START``; the launcher sets it."""

    home: Path = PROJECT_ROOT
    """The checkout."""
    log_dir: Path = PROJECT_ROOT / "logs"
    """Each daemon's log."""
    run_dir: Path | None = None
    """The private runtime directory (ipc sockets, locks); derived when unset."""
    state_dir: Path = PROJECT_ROOT / "logs" / "state"
    """Journals, trading states, marks."""
    config_dir: Path = PROJECT_ROOT / "config"
    """The configuration files."""
    strategies_dir: Path = PROJECT_ROOT / "strategies"
    """Where strategies are found."""
    daemons: Annotated[list[str], NoDecode] = Field(default_factory=lambda: _all_daemons())
    """The daemons this host runs (the others run on another host: docs/deployment.md)."""
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
    """The strategies the engine runs."""
    strategy_params: Annotated[dict[str, dict[str, Any]], NoDecode] = Field(default_factory=dict)
    """Parameters by strategy (a JSON object), over ``config/strategies.toml``'s."""

    openalgo: OpenAlgoSettings = Field(default_factory=lambda: OpenAlgoSettings())
    """The OpenAlgo server (``MT_OPENALGO_*``)."""
    feed: FeedSettings = Field(default_factory=lambda: FeedSettings())
    """The market-data daemon (``MT_FEED_*``)."""
    router: RouterSettings = Field(default_factory=lambda: RouterSettings())
    """The order router (``MT_ROUTER_*``, ``MT_JOURNAL_FSYNC``)."""
    risk: RiskSettings = Field(default_factory=lambda: RiskSettings())
    """The risk daemon (``MT_RISK_*``)."""
    engine: EngineSettings = Field(default_factory=lambda: EngineSettings())
    """The strategy engine (``MT_HOOK_*``, ``MT_INTENT_ANSWER_S``...)."""
    recon: ReconSettings = Field(default_factory=lambda: ReconSettings())
    """The reconciler (``MT_RECON_*``)."""
    monitor: MonitorSettings = Field(default_factory=lambda: MonitorSettings())
    """The monitor's dashboard and metrics (``MT_MONITOR_*``)."""
    signals: SignalsSettings = Field(default_factory=lambda: SignalsSettings())
    """The webhook server (``MT_SIGNALS_*``, ``MT_WEBHOOK_*``)."""
    control: ControlSettings = Field(default_factory=lambda: ControlSettings())
    """The HTTP control API (``MT_CONTROL_*``)."""
    http: HttpSettings = Field(default_factory=lambda: HttpSettings())
    """Every HTTP server (``MT_HTTP_*``)."""
    bus: BusSettings = Field(default_factory=lambda: BusSettings())
    """The message bus (``MT_BUS_*``)."""
    liveness: LivenessSettings = Field(default_factory=lambda: LivenessSettings())
    """Heartbeats and stopping."""
    logs: LogSettings = Field(default_factory=lambda: LogSettings())
    """The daemons' logs (``MT_LOG_*``)."""
    stores: StoreSettings = Field(default_factory=lambda: StoreSettings())
    """The stack's files."""
    retention: RetentionSettings = Field(default_factory=lambda: RetentionSettings())
    """How long the stores keep what they hold."""
    sim: SimSettings = Field(default_factory=lambda: SimSettings())
    """The simulated market and broker (``MT_SIM_*``)."""

    _split = field_validator("strategies", "daemons", mode="before")(csv)

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

    @field_validator("strategy_params", mode="before")
    @classmethod
    def _parse_json(cls, v: object) -> object:
        return json_object(v)

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

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        """What no one section can judge alone."""
        if self.engine.intent_answer_s <= 2 * self.risk.wait_s + 1.5:
            raise ValueError(
                f"MT_INTENT_ANSWER_S={self.engine.intent_answer_s:g} must be more than twice "
                f"MT_RISK_WAIT_S plus 1.5 s ({2 * self.risk.wait_s + 1.5:g}): risk may hold an "
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
            and not self.openalgo.api_key.get_secret_value()
        ):
            raise ValueError("MT_OPENALGO_API_KEY is required for a real OpenAlgo server")
        if self.mode == "live":
            tests_only = self.tests_only_settings()
            if tests_only:
                raise ValueError(
                    "MT_MODE=live refuses settings meant for tests and demos only: "
                    + "; ".join(tests_only)
                )
        mon = self.monitor
        for host, allow, var in (
            (mon.host, mon.allow_remote, "MONITOR"),
            (self.sim.server_host, self.sim.server_allow_remote, "SIM_SERVER"),
        ):
            if not is_loopback(host) and not allow:
                raise ValueError(
                    f"MT_{var}_HOST={host} would serve it to the network: set "
                    f"MT_{var}_ALLOW_REMOTE=true to mean it (docs/security.md)"
                )
        if not is_loopback(mon.host) and len(mon.token.get_secret_value()) < 16:
            raise ValueError(
                f"MT_MONITOR_HOST={mon.host} needs MT_MONITOR_TOKEN (16+ characters): "
                "the dashboard and /metrics show positions and P&L"
            )
        if self.bus.transport == "tcp" and self.bus.curve is False:
            wide = [a for a in self.endpoints().endpoints.values() if not loopback_url(a)]
            if wide:
                raise ValueError(
                    f"the tcp bus reaches beyond this machine ({wide[0]}) without CURVE: "
                    "leave MT_BUS_CURVE unset (CURVE is the default on tcp) and run "
                    "`python3 main.py keys init`"
                )
        sig = self.signals
        if not is_loopback(sig.host) and not sig.allow_remote:
            raise ValueError(
                f"MT_SIGNALS_HOST={sig.host} would take orders from the network: "
                "set MT_SIGNALS_ALLOW_REMOTE=true to mean it, or serve it through a reverse "
                "proxy with TLS (docs/webhooks.md)"
            )
        return self

    # ----------------------------------------------------------------- derived

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

        public = urllib.parse.urlsplit(self.signals.public_url).hostname or ""
        return host_names(bind_host, [*self.http.hostnames, public])

    def tests_only_settings(self) -> list[str]:
        """The settings made for tests and demos that are set: each named, with why."""
        found = []
        if not self.router.journal_fsync:
            found.append("MT_JOURNAL_FSYNC=false (an order could be lost in a power cut)")
        faults = FaultSwitches()
        if faults.router_crash_at:
            found.append(f"MT_ROUTER_CRASH_AT={faults.router_crash_at} (kills the router)")
        if self.risk.any_hour:
            found.append("MT_RISK_ANY_HOUR=true (orders outside the exchange's sessions)")
        if faults.sim_faults_on:
            found.append(f"MT_SIM_FAULTS={faults.sim_faults} (a simulator's fault injection)")
        if self.bus.curve is False:
            found.append("MT_BUS_CURVE=false (an unauthenticated bus)")
        return found

    def endpoints(self):  # -> bus.EndpointMap (import kept local: settings loads first)
        from mytrading.messaging.bus import EndpointMap

        b = self.bus
        return EndpointMap.build(
            b.transport, str(self.runtime_dir()), b.host, b.base_port, b.endpoints
        )

    def recon_interval(self) -> float:
        if self.recon.interval_s is not None:
            return self.recon.interval_s
        return 10.0 if self.simulated() else 60.0

    def simulated(self) -> bool:
        """True when market time is simulated: the embedded simulator server, the
        in-process venue, or an explicit ``MT_SIM_START`` (a simulator standing in for an
        OpenAlgo: tests, the real-OpenAlgo harness). Never live: live runs on wall time."""
        return self.broker == "sim" or self.sim_server or bool(self.sim.start)

    def rest_url(self) -> str:
        if self.sim_server:
            return f"http://{self.sim.server_host}:{self.sim.rest_port}"
        return self.openalgo.host

    def ws_url(self) -> str:
        if self.sim_server:
            return f"ws://{self.sim.server_host}:{self.sim.ws_port}"
        return self.openalgo.ws_url

    def api_key(self) -> str:
        key = self.openalgo.api_key.get_secret_value()
        return key or (self.sim.api_key.get_secret_value() if self.sim_server else "")

    def replaced(self, **values: Any) -> Settings:
        """A copy with some values changed, named as ``load_settings`` names them (the
        variable less ``MT_``, in lower case): each goes to its section. Not validated
        (as ``model_copy``): for tests and tools that vary one value of a loaded one."""
        top: dict[str, Any] = {}
        per: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            section, field = _route(key)
            if section:
                per.setdefault(section, {})[field] = value
            else:
                top[field] = value
        for section, fields in per.items():
            top[section] = getattr(self, section).model_copy(update=fields)
        return self.model_copy(update=top)

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
        (the file read once while it is unchanged, not once per strategy); the table's
        ``schedule`` is left out (risk's, ``risk/schedule.py``)."""
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
            # its schedule is risk's (``risk/schedule.py``) and ``enabled`` the engine's
            # (``enabled_strategies``): neither is a parameter
            from_file = {k: v for k, v in table.items() if k not in NOT_PARAMS}
        return {**from_file, **self.strategy_params.get(strategy, {})}

    def switches(self) -> dict[str, bool]:
        """``enabled = true|false`` of each table of ``config/strategies.toml`` that has
        one (what ``main.py control enable|disable`` writes)."""
        path = self.config_dir / "strategies.toml"
        if not path.exists():
            return {}
        st = path.stat()
        try:
            tables = _strategy_tables(str(path), st.st_mtime_ns, st.st_size)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        out = {}
        for name, table in tables.items():
            if isinstance(table, dict) and "enabled" in table:
                if not isinstance(table["enabled"], bool):
                    raise ConfigError(f"{path}: [{name}] enabled must be true or false")
                out[name] = table["enabled"]
        return out

    def enabled_strategies(self) -> list[str]:
        """The strategies that run: ``MT_STRATEGIES`` (``strategies``), less those
        ``config/strategies.toml`` turns off, and those it turns on after them. Read
        again at each call (a running engine enables one on the command layer's word)."""
        on = self.switches()
        return [n for n in self.strategies if on.get(n, True)] + [
            n for n, v in on.items() if v and n not in self.strategies
        ]


def _all_daemons() -> list[str]:
    """Every daemon, in the bus's order (``messaging/bus.py``: ``DAEMONS``)."""
    from mytrading.messaging.bus import DAEMONS

    return list(DAEMONS)


@functools.lru_cache(maxsize=8)
def _strategy_tables(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """``strategies.toml`` parsed, kept while its time and size are the same."""
    return tomllib.loads(Path(path).read_text())


def variables() -> Iterator[tuple[str, str, type[BaseModel], str]]:
    """Every setting as (variable, section or "", its model, field): the one list that
    ``load_settings``, ``config check``'s provenance and the env-template test read."""
    for field in Settings.model_fields:
        if field not in SECTIONS:
            yield env_name(Settings, field), "", Settings, field
    for section, model in SECTIONS.items():
        for field in model.model_fields:
            yield env_name(model, field), section, model, field


@functools.cache
def _by_key() -> dict[str, tuple[str, str]]:
    """(section, field) by the variable less ``MT_`` in lower case."""
    return {var.removeprefix("MT_").lower(): (sec, f) for var, sec, _, f in variables()}


def _route(key: str) -> tuple[str, str]:
    try:
        return _by_key()[key]
    except KeyError:
        raise TypeError(f"not a setting: {key}") from None


def load_settings(**overrides: Any) -> Settings:
    """Load and validate; raise ConfigError naming each bad variable and what is allowed.

    ``overrides`` are settings by their variable's name less ``MT_`` in lower case
    (``mode="live"``, ``sim_seed=7``, ``risk_wait_s=2``): each goes to its section; a
    name that is no setting is a ``TypeError``, never silently ignored."""
    unknown = sorted(k for k in overrides if k not in _by_key())
    if unknown:
        raise TypeError(f"not settings: {', '.join(unknown)}")
    top: dict[str, Any] = {}
    per: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in overrides.items():
        section, field = _route(key)
        (per[section] if section else top)[field] = value
    problems: list[str] = []
    for section, model in SECTIONS.items():
        try:
            top[section] = model(**per[section])
        except ValidationError as exc:
            problems.append(_explain(exc, model))
    if problems:
        raise ConfigError("\n".join(problems)) from None
    try:
        s = Settings(**top)
        s.endpoints()  # unknown endpoint names are a config error too
        return s
    except ValidationError as exc:
        raise ConfigError(_explain(exc, Settings)) from None
    except ValueError as exc:
        raise ConfigError(f"MT_BUS_ENDPOINTS: {exc}") from None


def _explain(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line per error: the variable, what is wrong, what it was given."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if p]
        msg = err["msg"].removeprefix("Value error, ")
        field = field_of(model, loc[0]) if loc else None
        if field is None:
            where = "_".join(loc).upper()
            var = f"MT_{where}" if loc else "configuration"
        else:
            var = env_name(model, field)
        lines.append(f"{var}: {msg} (got {err.get('input')!r})" if loc else f"{var}: {msg}")
    return "\n".join(lines)
