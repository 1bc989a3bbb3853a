"""Which OpenAlgo the daemons talk to, where each account's orders go, and which venue
the stack's state belongs to: built in one place.

**Where orders go** (``routes``): one meaning per mode, whatever else is configured.

* ``live``: every account's orders go to its OpenAlgo (``real``). Only with the
  operator's confirmation at start (``process/live.py``); the router refuses to start without it.
* ``paper``: nothing reaches a real broker. The embedded simulator server (``simserver``,
  ``MT_SIM_SERVER=true``) takes the main account's orders over the same REST API as live;
  ``MT_BROKER=sim`` fills them in the router's process (``local``); every other account,
  and the main account on a real OpenAlgo, is a ``paper`` venue: the simulated exchange
  in the router's process, filling against the live quotes the feed publishes from that
  OpenAlgo. Accounts follow the mode: ``config/accounts.toml`` hosts give market data in
  paper, never orders.
* ``dry_run``: no order leaves the router (``dry``); books are read from the brokers.

**State belongs to one venue** (``Venue``): the router's journal, risk's trading states
and day marks, webhook square-offs and the paper venues' books live under
``<state>/venues/<venue id>/``, the id made of the mode and the main account's route
(for live, the broker account OpenAlgo reports), so a simulated day is never restored
against a real broker. Each account's identity is also kept in the journal, so one
account's orders are never restored against another (``router/journal.py``).


``MT_BROKER=openalgo`` (the default): a real OpenAlgo, or the ``simserver`` program that
plays one, over HTTP and WebSocket; each daemon builds its clients from
``mytrading/openalgo`` with the account's URL and key. ``MT_BROKER=sim``: the simulated
venue in the daemon's own process (``mytrading/sim/local.py``), spoken to through the
same OpenAlgo requests, replies and messages, without sockets. This module is the only
way a daemon reaches the simulated venue, and it imports it only when asked, so a daemon
on a real broker never loads the simulator.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from mytrading.domain.accounts import MAIN, Accounts, load_accounts
from mytrading.domain.clock import MarketClock
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.settings import Settings

if TYPE_CHECKING:
    from mytrading.openalgo.broker import BrokerAdapter

LOCAL_URL = "http://local-sim"  # what the in-process venue's REST client is addressed as
LOCAL_KEY = "local-sim"  # its one account's key (it guards nothing: no socket reaches it)


class OrderUpdates(Protocol):
    """OpenAlgo ``order_update`` messages waiting to be read (``openalgo.ws.FeedClient``
    for a real server)."""

    authenticated: bool
    reconnects: int

    @property
    def pushing(self) -> bool:
        """Order updates arrive as they happen (the subscription confirmed)."""
        ...

    def take(self) -> list[Any]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LocalAccount(Protocol):
    @property
    def updates(self) -> OrderUpdates: ...

    def request(self, endpoint: str, body: bytes) -> tuple[int, bytes]:
        """OpenAlgo's REST API: a JSON request in, the HTTP status and JSON reply out."""
        ...

    def on_tick(self, tick: wire.Tick) -> None:
        """The market as the host process sees it; the venue fills against it."""
        ...


class LocalMarketData(Protocol):
    instruments: list[tuple[str, str]]

    def messages(self, now_ns: int, modes: dict[tuple[str, str], int]) -> list[tuple[bytes, int]]:
        """The ``market_data`` message of each instrument in ``modes`` at ``now_ns``, as
        JSON in its mode, with the mode."""
        ...


def local_broker(
    settings: Settings, refdata: RefData, clock: MarketClock, books_at: Path
) -> LocalAccount:
    """An in-process simulated OpenAlgo account: ``MT_BROKER=sim``, or a paper account
    filling against the quotes the router receives; its books are kept in ``books_at``."""
    from mytrading.sim.local import LocalBroker

    return LocalBroker(
        LOCAL_KEY,
        refdata,
        clock,
        settings.sim.capital,
        settings.sim.slippage_ticks,
        settings.sim.fill_model,
        settings.sim.partial_fills,
        books_at=books_at,
    )


def broker_adapter(
    api_key: str,
    rest_url: str,
    timeout_s: float,
    now_s: Callable[[], float],
    local: Callable[..., Any] | None = None,
    transport: Any = None,
) -> BrokerAdapter:
    """One account's broker as the router and the reconciler speak to it: the OpenAlgo
    adapter (``openalgo/orders.py``) on that account's URL and key, or on an in-process
    venue's request handling (``local``). Neither daemon names OpenAlgo's client: what
    comes back is the Protocol and its reports (``openalgo/broker.py``). ``transport``:
    the HTTP transport its host gives (the simulation's; None: the network)."""
    from mytrading.openalgo.orders import OpenAlgoAdapter, as_broker

    adapter = OpenAlgoAdapter(api_key, rest_url, timeout_s, now_s, local=local, transport=transport)
    return as_broker(adapter)


def order_update_feed(
    ws_url: str, api_key: str, wake: Callable[[], None], name: str = "main", rng: Any = None
) -> OrderUpdates:
    """An account's order updates as its OpenAlgo pushes them (its WebSocket, subscribed
    to orders), each batch waking the reader (``wake``). Its host runs it
    (``Host.start_ws``)."""
    from mytrading.openalgo.ws import FeedClient

    return FeedClient(ws_url, api_key, [], wake=wake, order_updates=True, name=name, rng=rng)


def local_quotes(settings: Settings, refdata: RefData, day: date) -> LocalMarketData:
    """The feed's in-process market data (``MT_BROKER=sim``)."""
    from mytrading.sim.local import LocalQuotes
    from mytrading.sim.market import configured_market

    return LocalQuotes(configured_market(settings, refdata, day))


# ------------------------------------------------------------------ where orders go

RouteKind = Literal["real", "simserver", "local", "paper", "dry"]


@dataclass(frozen=True)
class Route:
    """Where one account's orders go, and what its state is kept by."""

    account: str
    kind: RouteKind
    host: str  # its OpenAlgo (market data, books; orders only when ``real``)
    identity: str  # kind and host, and for live the broker account OpenAlgo reports

    @property
    def sends(self) -> bool:
        """Orders are handed to a broker adapter at all (not in dry_run)."""
        return self.kind != "dry"

    @property
    def real(self) -> bool:
        return self.kind == "real"

    def describe(self) -> str:
        return {
            "real": f"REAL ORDERS to {self.host}",
            "simserver": f"simulated fills at the embedded simulator ({self.host})",
            "local": "simulated fills in the router's process (MT_BROKER=sim)",
            "paper": f"simulated fills against live quotes from {self.host}",
            "dry": f"no order leaves the router (dry run; books read from {self.host})",
        }[self.kind]


@dataclass(frozen=True)
class Venue:
    mode: str
    routes: dict[str, Route]
    id: str  # the directory name of its state
    dir: Path  # <state>/venues/<id>

    @property
    def live(self) -> bool:
        return any(r.real for r in self.routes.values())

    def banner(self) -> str:
        """One line for people: where orders go."""
        by: dict[str, list[str]] = {}
        for r in self.routes.values():
            by.setdefault(r.describe(), []).append(r.account)
        parts = [f"{what} for {', '.join(accts)}" for what, accts in by.items()]
        head = "LIVE: " if self.live else f"{self.mode.upper()}: "
        return head + "; ".join(parts)


def routes(
    settings: Settings, accounts: Accounts, reported: dict[str, str] | None = None
) -> dict[str, Route]:
    """Each account's route in ``settings.mode`` (see the module's doc). ``reported``:
    for live, the broker account each OpenAlgo reported at confirmation (``process/live.py``)."""
    out = {}
    for name, acct in accounts.by_name.items():
        kind: RouteKind
        if settings.mode == "live":
            kind = "real"
        elif settings.mode == "dry_run":
            kind = "dry"
        elif settings.broker == "sim":
            kind = "local"
        elif name == MAIN and settings.sim_server:
            kind = "simserver"
        else:
            kind = "paper"
        host = acct.rest_url if settings.broker == "openalgo" else "in-process simulated market"
        identity: str
        if kind in ("simserver", "local"):
            identity = kind  # the simulator's own books (<state>/sim) or the router's
        elif kind == "paper":
            identity = f"paper:{name}"  # our own simulated account, in the venue's directory
        else:
            identity = f"{kind}:{host}" + (
                f":{reported[name]}" if reported and name in reported else ""
            )
        out[name] = Route(name, kind, host, identity)
    return out


def current(
    settings: Settings, accounts: Accounts | None = None, reported: dict[str, str] | None = None
) -> Venue:
    """The venue this configuration trades on. For live, ``reported`` comes from the
    operator's confirmation (``live.confirmed``); without it the id has the host only."""
    accounts = accounts or load_accounts(settings, keys=False)  # where orders go: no key
    rs = routes(settings, accounts, reported)
    main = rs[MAIN]
    if main.kind in ("simserver", "local"):
        vid = f"{settings.mode}-{'sim' if main.kind == 'simserver' else 'local'}"
    else:
        vid = f"{settings.mode}-{_slug(main.host)}"
        if main.real and reported and MAIN in reported:
            vid += f"-{_slug(reported[MAIN])}"
    digest = hashlib.sha256(f"{settings.mode}|{main.identity}".encode()).hexdigest()[:8]
    vid = f"{vid[:80]}-{digest}"
    return Venue(settings.mode, rs, vid, settings.state_dir / "venues" / vid)


def _slug(text: str) -> str:
    text = re.sub(r"^[a-z]+://", "", text.lower())
    return re.sub(r"[^a-z0-9.]+", "_", text).strip("_") or "x"


LEGACY = ("router", "risk_state.json", "risk_marks.json")  # <state>/ before venues


def set_aside_legacy(state_dir: Path, venue_dir: Path) -> Path | None:
    """State kept before it was kept per venue has no venue: the journal and the day
    marks are never restored, only moved to ``<state>/legacy-<time>/`` for a human. The
    trading states (a kill switch on, a strategy halted) only ever restrict, so they are
    carried into this venue if it has none yet. Returns where the rest went, or None."""
    import time

    found = [state_dir / name for name in LEGACY if (state_dir / name).exists()]
    if not found:
        return None
    carry_legacy_states(state_dir, venue_dir)
    aside = state_dir / f"legacy-{time.strftime('%Y%m%dT%H%M%S')}"
    aside.mkdir(parents=True, exist_ok=True)
    for path in found:
        path.rename(aside / path.name)
    return aside


def carry_legacy_states(state_dir: Path, venue_dir: Path) -> None:
    """Trading states kept before venues (``<state>/risk_state.json``) into this venue,
    if it has none: they only restrict (a kill switch on stays on)."""
    import shutil

    states = state_dir / "risk_state.json"
    target = venue_dir / "risk_state.json"
    if states.exists() and not target.exists():
        venue_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(states, target)


def for_daemon(settings: Settings, accounts: Accounts) -> Venue:
    """The venue a daemon keeps its state under; in live mode only with the operator's
    confirmation (``live.NotConfirmedError`` otherwise: the daemon does not start)."""
    reported = None
    if settings.mode == "live":
        from mytrading.process import live

        reported = live.reported(live.confirmed(settings, accounts))
    return current(settings, accounts, reported)
