"""The simulated venue inside the process that uses it, reached through OpenAlgo's protocol.

``MT_BROKER=sim`` (unit tests of single daemons and the latency benchmark) needs a broker
and a market without the ``simserver`` program: over HTTP the simulator takes about 450
orders a second, and the benchmark sends 1,000. Nothing here is a second simulator: the
router gets the same ``SimExchange`` and the same request handling (schemas, refusals,
replies) the server runs. Each REST request's JSON bytes go to ``SimServer.dispatch``
instead of a socket (``openalgo.rest.Exchange``), and order updates come back as the JSON
the WebSocket would carry. The feed gets ``market_data`` messages as the WebSocket would
send them. So the daemons run their OpenAlgo code (``mytrading/openalgo``) either way,
and no daemon imports this package: ``mytrading/venue.py`` builds what they ask for.

The two halves live in two processes: the feed's ``LocalQuotes`` makes the prices; the
router's ``LocalBroker`` fills against the ticks the router receives from the feed over
the bus (``on_tick``), which is where a real broker's exchange would be.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

import msgspec

from mytrading.domain.clock import MarketClock
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.sim.books import BookStore
from mytrading.sim.exchange import SimExchange
from mytrading.sim.market import SimMarket
from mytrading.sim.server.rest import RateLimits, SimServer
from mytrading.sim.server.ws import market_data

_enc = msgspec.json.Encoder()


class TapeMarket:
    """Prices for an exchange whose quotes come from outside: the ticks its host process
    receives. ``spot`` follows the index ticks, as ``SimMarket.spot`` does its walk."""

    def __init__(self, refdata: RefData) -> None:
        self.spot: dict[str, float] = {}
        self.instruments: list[Any] = []  # nothing to list: search and expiry answer empty
        self._index = {(u.spot_exchange, name): name for name, u in refdata.underlyings.items()}
        self._pending: list[wire.Tick] = []

    def push(self, tick: wire.Tick) -> None:
        self._pending.append(tick)
        name = self._index.get((tick.exchange, tick.symbol))
        if name is not None:
            self.spot[name] = tick.ltp

    def step(self, now_ns: int) -> list[wire.Tick]:
        out, self._pending = self._pending, []
        return out

    def listed(self, exchange: str, symbol: str) -> bool:
        return False  # the tape lists nothing: orders go by the reference data

    def watch(self, keys: object) -> None:
        """The tape brings what its host's feed subscribed to."""

    def quote(self, exchange: str, symbol: str, now_ns: int) -> wire.Tick | None:
        return None


class LocalUpdates:
    """OpenAlgo's ``order_update`` messages of an in-process venue, taken like a
    ``FeedClient``'s (the router reads both through the same calls)."""

    authenticated = True  # nothing to lose: polling stays at its slow pace
    pushing = True
    reconnects = 0

    def __init__(self) -> None:
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._lock = threading.Lock()

    def put(self, update: dict[str, Any]) -> None:
        with self._lock:
            self._queue.append(msgspec.json.decode(_enc.encode(update)))  # JSON, as sent

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
        return out

    def start(self) -> None:
        """Nothing to connect: the venue is in this process."""

    def stop(self) -> None:
        """Nothing to close."""


class LocalBroker:
    """One simulated OpenAlgo account in this process: REST through ``request``, order
    updates through ``updates``, market data through ``on_tick``."""

    def __init__(
        self,
        api_key: str,
        refdata: RefData,
        clock: MarketClock,
        capital: float,
        slippage_ticks: int,
        fill_model: str = "realistic",
        partial_fills: bool = True,
        books_at: Path | None = None,
    ) -> None:
        """``books_at``: a directory where the account's books are kept, so a restarted
        router finds its orders and fills at this venue as it would at a real broker."""
        self.clock = clock
        self.market = TapeMarket(refdata)
        self.exchange = SimExchange(
            refdata,
            clock,
            self.market,  # type: ignore[arg-type]  # a ReplayMarket quotes like a SimMarket
            capital=capital,
            slippage_ticks=slippage_ticks,
            fill_model=fill_model,
            partial_fills=partial_fills,
        )
        # No rate limits of its own: the router's throttle is what is under test.
        self.server = SimServer(self.exchange, api_key, RateLimits(10**9, 10**9, 10**9))
        self.updates = LocalUpdates()
        if books_at is not None:
            self.exchange.attach_books(BookStore(books_at))
        self.exchange.listeners.append(self.updates.put)

    def request(self, endpoint: str, body: bytes) -> tuple[int, bytes]:
        """One REST call: the JSON request body in, the status and JSON reply out."""
        code, reply = self.server.dispatch(endpoint, "local", body)
        return code, _enc.encode(reply)

    def on_tick(self, tick: wire.Tick) -> None:
        self.market.push(tick)
        self.exchange.step_to(self.clock.now_ns())


class LocalQuotes:
    """The simulated market's quotes as OpenAlgo's WebSocket sends them (``market_data``
    in the mode each instrument is subscribed in), for a feed with no server to connect
    to."""

    def __init__(self, market: SimMarket) -> None:
        self.market = market
        self.refdata = market.refdata
        # the universe (indices, futures, the option strip), not every listed option:
        # the feed subscribes this list when told to quote the universe
        self.instruments = list(market.universe)
        self._day_open: dict[tuple[str, str], float] = {}

    def messages(self, now_ns: int, modes: dict[tuple[str, str], int]) -> list[tuple[bytes, int]]:
        """The instruments in ``modes`` quoted at ``now_ns``: one JSON message each, in
        its mode (1 LTP, 2 quote, 3 depth, five levels a side), with the mode. The market
        moves every instrument, subscribed or not, as the real one does."""
        out = []
        self.market.watch(modes)  # the options quoted are the ones subscribed
        for t in self.market.step(now_ns):
            mode = modes.get((t.exchange, t.symbol))
            if mode:
                tick = self.refdata.instrument(t.exchange, t.symbol).tick_size if mode == 3 else 0
                out.append((_enc.encode(market_data(t, mode, self._day_open, tick)), mode))
        return out
