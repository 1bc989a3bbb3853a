"""The simulated OpenAlgo of the simulation: the simulator's own exchange and request
handling (``mytrading/sim``), reached through the real OpenAlgo client code.

* **REST**: the daemons' ``httpx`` clients are given ``SimTransport`` (their host's
  ``transport``); a request's bytes go to ``SimServer.dispatch``, the same handler the
  simulator server runs (schemas, API key, rate limits, the exchange), and the reply's
  bytes come back as an ``httpx.Response``. A broker's bad day is applied here: a
  connection refused (certainly not sent), a 5xx before acting, a 429 with its limit, a
  reply lost after acting (the client's timeout: ``httpx.ReadTimeout``), garbage in a
  book, a session expired (403), timestamps on a clock off ours.
* **WebSocket**: ``FeedClient`` (``openalgo/ws.py``) runs its protocol over
  ``SimSocket``: authentication, subscriptions and pongs answered by the simulator
  server's own ``FeedServer.on_text``; ``market_data`` of every market step and
  ``order_update`` of every change pushed as the server's JSON, late, jittered,
  reordered, stalled or dropped as a seed's faults say.
* **Time**: a call's time is charged to whoever waits for it (``CallClock``): the lane's
  worker that made it, or the loop of the daemon that called on its loop.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from mytrading.messaging import wire
from mytrading.sim.exchange import SimExchange
from mytrading.sim.server.faults import LOGIN_PAGE, PROXY_503, FaultPlan
from mytrading.sim.server.rest import SimServer, limited
from mytrading.sim.server.ws import Client, FeedServer

# the ``SimStack`` (``simulation/stack.py``) that composes this part: typed loosely,
# so that no part imports the module that imports it
Sim = Any

if TYPE_CHECKING:
    from mytrading.simulation.host import SimHost

REST_S = 0.004  # a REST call's round trip to a broker
WS_S = 0.002  # a WebSocket frame's way from the broker
ORDER_CALLS = frozenset({"placeorder", "modifyorder", "cancelorder"})
BOOKS = frozenset({"orderbook", "tradebook", "positionbook", "orderstatus"})
_enc = msgspec.json.Encoder()


class CallClock:
    """Where a broker call's time goes: the worker running it (``on_worker``), else the
    loop of the daemon that made it on its loop (it is busy meanwhile)."""

    def __init__(self, stack: Sim) -> None:
        self.stack = stack
        self._spent: list[float] | None = None

    @contextlib.contextmanager
    def on_worker(self) -> Iterator[list[float]]:
        before, self._spent = self._spent, [0.0]
        try:
            yield self._spent
        finally:
            self._spent = before

    def spend(self, seconds: float) -> None:
        if self._spent is not None:
            self._spent[0] += seconds
        elif self.stack.current is not None:
            self.stack.current.busy(seconds)


@dataclass
class BrokerFaults:
    """What is wrong with the broker now; each draw comes from the seed's generator."""

    refuse: float = 0.0  # order calls refused before anything happens (503, or no connection)
    lose_place: float = 0.0  # placeorder done, its reply lost (the client times out)
    # the next placements' replies lost for certain (a fault's window may hold no order:
    # the first placement after it opens meets it, whenever it comes)
    lose_next: int = 0
    error_5xx: float = 0.0  # order calls answered 500 before acting
    throttle: float = 0.0  # calls answered 429 (the broker's limit), retry_after given
    garble: float = 0.0  # book reads answered with garbage
    updates_late_s: float = 0.0  # order updates pushed this late
    updates_lost: float = 0.0  # order updates never pushed
    plan: FaultPlan = field(default_factory=FaultPlan)  # the broker's clock (its shift)

    def draw(self, rng: random.Random, ep: str) -> str:
        if ep == "placeorder" and self.lose_next:
            self.lose_next -= 1
            return "lose"
        if ep in ORDER_CALLS:
            x = rng.random()
            if x < self.refuse:
                return "refuse"
            x -= self.refuse
            if x < self.error_5xx:
                return "5xx"
            x -= self.error_5xx
            if ep == "placeorder" and x < self.lose_place:
                return "lose"
        if self.throttle and rng.random() < self.throttle:
            return "429"
        if ep in BOOKS and self.garble and rng.random() < self.garble:
            return "garble"
        return ""


class SimTransport(httpx.BaseTransport):
    """HTTP to one simulated OpenAlgo account, as ``httpx`` carries it."""

    def __init__(self, account: SimAccount, timeout_s: float, host: Any = None) -> None:
        self.account = account
        self.timeout_s = timeout_s
        self.host = host  # the daemon whose client it is: a dead one's calls go nowhere

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        acct = self.account
        stack = acct.stack
        if self.host is not None and not self.host.alive:
            raise httpx.ConnectError("the process is gone", request=request)
        ep = request.url.path.rsplit("/api/v1/", 1)[-1].strip("/")
        raw = request.read()
        fault = acct.faults.draw(acct.rng, ep)
        stack.calls.spend(REST_S)
        if fault:
            acct.counts[f"{ep}:{fault}"] += 1
            stack.trace_event("fault", f"broker {acct.name} {ep} {fault}")
        if fault == "refuse":
            if acct.rng.random() < 0.5:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(503, text=PROXY_503, request=request)
        if fault == "5xx":
            return httpx.Response(500, json={"status": "error", "message": "Internal error"})
        if fault == "429":
            return httpx.Response(429, json=limited(acct.server.limits.for_endpoint(ep)))
        code, body = acct.server.dispatch(ep, "sim", raw)
        acct.counts[f"{ep}:{code}"] += 1
        stack.trace_event("call", f"{acct.name} {ep} {code} {_call_key(ep, raw, body)}")
        if ep == "placeorder" and code == 200 and isinstance(body, dict):
            stack.invariants.placed_at_broker(acct.name, json.loads(raw), str(body.get("orderid")))
            if stack.kill_at_next_place and stack.current is None:  # a lane's call
                restart_in, stack.kill_at_next_place = stack.kill_at_next_place, 0.0
                stack.restart_daemon("router", restart_in)  # the answer never arrives
        if fault == "lose":  # done at the broker; the answer never comes
            stack.calls.spend(self.timeout_s)
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "garble" and code == 200:
            return httpx.Response(200, text=LOGIN_PAGE, request=request)
        body = acct.faults.plan.shift(ep, body)
        return httpx.Response(code, content=_enc.encode(body), request=request,
                              headers={"Content-Type": "application/json"})  # fmt: skip


class SimSocket:
    """The client's end of one WebSocket session: what it sends goes to the server's
    protocol handler; ``keep_running``/``sock`` as websocket-client's app has them."""

    def __init__(self, conn: SimConnection) -> None:
        self.conn = conn
        self.keep_running = True
        self.sock = None

    def send(self, text: str) -> None:
        self.conn.from_client(text)

    def close(self) -> None:
        self.conn.drop("closed by the client")


class SimConnection:
    """One WebSocket session between a ``FeedClient`` and an account's server."""

    def __init__(self, account: SimAccount, client: Any, host: SimHost) -> None:
        self.account = account
        self.client = client
        self.host = host
        self.sock = SimSocket(self)
        self.server = Client(ws=None)  # type: ignore[arg-type]  # the protocol's state only
        self.open = False
        self._last_due = 0
        self._reply_due = 0

    def start(self) -> None:
        acct = self.account
        if acct.ws_refused:
            self.account.stack.world.after(WS_S, lambda: self._ended("refused"))
            return
        self.open = True
        acct.connections.append(self)
        self.client._ws = self.sock
        self._as_client(lambda: self.client._on_open(self.sock))

    def from_client(self, text: str) -> None:
        if not self.open:
            raise ConnectionError("socket closed")
        reply = self.account.feed.on_text(self.server, text)
        if reply is not None:
            self.account.watch_subscriptions()
            self.to_client(json.dumps(reply), reply=True)

    def to_client(self, text: str, extra_s: float = 0.0, reply: bool = False) -> None:
        """A frame to the client, in order after the ones before it of its kind: the
        server answers the protocol (auth, subscriptions, pongs) at once, the data's
        lateness is the data's (a broker's feed late upstream)."""
        world = self.account.stack.world
        due = world.now_ns + int((WS_S + extra_s) * 1e9)
        if reply:
            due = self._reply_due = max(due, self._reply_due)
        else:
            due = self._last_due = max(due, self._last_due)
        world.at(due, lambda: self._deliver(text))

    def _deliver(self, text: str) -> None:
        if self.open and self.host.alive:
            self._as_client(lambda: self.client._on_message(self.sock, text))

    def _as_client(self, fn: Callable[[], None]) -> None:
        """The client's own thread: not the daemon's loop (busy or not), and a failure
        there is the thread's, as websocket-client's callbacks swallow it."""
        if not self.host.alive:
            return
        try:
            fn()
        except Exception as exc:
            self.account.stack.trace_event("ws", f"client callback failed: {exc!r}")

    def drop(self, why: str) -> None:
        if not self.open:
            return
        self.open = False
        if self in self.account.connections:
            self.account.connections.remove(self)
        self.account.watch_subscriptions()
        self.account.stack.trace_event("ws", f"{self.account.name} {self.host.name} dropped: {why}")
        self._as_client(lambda: self.client._on_close(self.sock, 1011, why))
        self._ended(why)

    def _ended(self, why: str) -> None:
        """The client's connection loop: wait as it would, then connect again."""
        if not self.host.alive:
            return
        delay = self.client.session_ended()
        host = self.host
        self.account.stack.world.after(delay, lambda: self.account.connect(self.client, host))


class SimAccount:
    """One OpenAlgo account of the simulation: exchange, request handling, sessions."""

    def __init__(
        self,
        stack: Sim,
        name: str,
        exchange: SimExchange,
        api_key: str,
        rest_url: str,
        ws_url: str,
        rng: random.Random,
    ) -> None:
        self.stack = stack
        self.name = name
        self.exchange = exchange
        self.rest_url = rest_url.rstrip("/")
        self.ws_url = ws_url
        self.rng = rng
        self.server = SimServer(exchange, api_key, stack.rate_limits())
        self.feed = FeedServer(exchange, api_key)
        exchange.listeners.remove(self.feed._order_update)  # pushed here, on virtual time
        exchange.listeners.append(self._order_update)
        self.faults = BrokerFaults()
        self.counts: collections.Counter[str] = collections.Counter()
        self.connections: list[SimConnection] = []
        self.ws_refused = False

    def connect(self, client: Any, host: SimHost) -> None:
        if host.alive:
            SimConnection(self, client, host).start()

    def watch_subscriptions(self) -> None:
        """The options quoted are those clients subscribed (as ``FeedServer._watch``)."""
        self.exchange.subscribed = {k for c in self.connections for k in c.server.subs}

    def _order_update(self, update: dict[str, Any]) -> None:
        f = self.faults
        for c in self.connections:
            if not (c.server.authed and c.server.orders):
                continue
            if f.updates_lost and self.rng.random() < f.updates_lost:
                self.counts["order_update_lost"] += 1
                self.stack.trace_event("fault", f"order update lost {update.get('orderid')}")
                continue
            c.to_client(_enc.encode(update).decode(), f.updates_late_s)

    def drop_all(self, why: str) -> None:
        for c in list(self.connections):
            c.drop(why)


def _call_key(ep: str, raw: bytes, body: Any) -> str:
    """The few fields of a call a trace line needs."""
    if ep not in ORDER_CALLS:
        return ""
    try:
        f = json.loads(raw)
    except ValueError:
        return ""
    got = body.get("orderid", "") if isinstance(body, dict) else ""
    return (
        " ".join(
            str(f.get(k, "")) for k in ("orderid", "action", "quantity", "symbol", "pricetype")
        )
        + f" -> {got}"
    )


def market_payloads(
    feed: FeedServer, ticks: list[wire.Tick], subs: dict[Any, set[int]]
) -> list[str]:
    """One client's ``market_data`` frames for a step's ticks, in each mode it asked."""
    out = []
    for t in ticks:
        for mode in subs.get((t.exchange, t.symbol), ()):
            out.append(_enc.encode(feed.payload(t, mode)).decode())
    return out
