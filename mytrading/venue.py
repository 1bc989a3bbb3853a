"""Which OpenAlgo the daemons talk to, built in one place.

``MT_BROKER=openalgo`` (the default): a real OpenAlgo, or the ``simserver`` program that
plays one, over HTTP and WebSocket; each daemon builds its clients from
``mytrading/openalgo`` with the account's URL and key. ``MT_BROKER=sim``: the simulated
venue in the daemon's own process (``mytrading/sim/local.py``), spoken to through the
same OpenAlgo requests, replies and messages, without sockets. This module is the only
way a daemon reaches the simulated venue, and it imports it only when asked, so a daemon
on a real broker never loads the simulator.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from mytrading import wire
from mytrading.clock import MarketClock
from mytrading.refdata import RefData
from mytrading.settings import Settings

LOCAL_URL = "http://local-sim"  # what the in-process venue's REST client is addressed as
LOCAL_KEY = "local-sim"  # its one account's key (it guards nothing: no socket reaches it)


class OrderUpdates(Protocol):
    """OpenAlgo ``order_update`` messages waiting to be read (``openalgo.ws.FeedClient``
    for a real server)."""

    authenticated: bool
    reconnects: int

    def take(self) -> list[Any]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class LocalAccount(Protocol):
    updates: OrderUpdates

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


def local_broker(settings: Settings, refdata: RefData, clock: MarketClock) -> LocalAccount:
    """The router's in-process OpenAlgo account (``MT_BROKER=sim``)."""
    from mytrading.sim.local import LocalBroker

    return LocalBroker(
        LOCAL_KEY,
        refdata,
        clock,
        settings.sim_capital,
        settings.sim_slippage_ticks,
        settings.sim_fill_model,
        settings.sim_partial_fills,
        books_at=settings.state_dir / "router",
    )


def local_quotes(settings: Settings, refdata: RefData, day: date) -> LocalMarketData:
    """The feed's in-process market data (``MT_BROKER=sim``)."""
    from mytrading.sim.local import LocalQuotes
    from mytrading.sim.market import configured_market

    return LocalQuotes(configured_market(settings, refdata, day))
