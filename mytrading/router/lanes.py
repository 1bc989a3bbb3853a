"""One lane per account: its broker adapter, rate limits, pushed order updates and the
worker its broker calls run on (a thread in the process's shell, ``process/shell.py``;
a virtual one in the simulation).

Accounts are separate brokers with separate limits: a slow or failing account must not
hold up another's orders. Each lane sends its batches on its own worker thread and the
router's loop goes on meanwhile, so an order fanned out to three accounts reaches the
three brokers in parallel even when its copies arrive one after another, while one
account's calls stay in order (a lane has one batch in flight at a time; a cancel never
overtakes the place it cancels). The router's journal, books and publications stay on
its main thread: a lane's answers are applied there when the lane wakes it.

Everything else the router asks of a lane's adapter (polls, pushed updates, funds,
position book) happens on the main thread under the lane's lock, and pushed updates and
polls wait while a batch is in flight: an update for an order whose placement has not
been answered yet would name a broker id the router does not know yet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mytrading import hosttime
from mytrading.domain.accounts import Account
from mytrading.openalgo.broker import (
    BrokerAdapter,
    OrderEvent,
    PlaceResult,
    TradeEvent,
)
from mytrading.process.host import Pending, Worker
from mytrading.router.session import BrokerSession
from mytrading.router.throttle import Throttle
from mytrading.venue import OrderUpdates, Route

Events = list[OrderEvent | TradeEvent]


@dataclass
class Call:
    """What one broker call of a lane came back with (``result`` None: nothing was sent,
    because an amend's target was not working, or ``error``: the call raised)."""

    result: PlaceResult | None
    events: Events
    wall_ns: int
    error: BaseException | None = None
    # not made: an earlier call of the batch went unanswered (``Lane._run``)
    held: bool = False


class Answered:
    """A batch answered on the router's own thread (a lane without a worker: the
    in-process simulator): what a done ``Future`` would hold, without its lock and
    condition on the send path."""

    __slots__ = ("_out",)

    def __init__(self, out: list[tuple[Any, Call]]) -> None:
        self._out = out

    def done(self) -> bool:
        return True

    def result(self) -> list[tuple[Any, Call]]:
        return self._out


@dataclass
class Lane:
    account: str
    broker: BrokerAdapter
    throttle: Throttle
    route: Route | None = None  # where its orders go (venue.py); None only in unit tests
    updates: OrderUpdates | None = None  # a FeedClient, or the in-process venue's
    last_poll: float = 0.0
    session: BrokerSession = field(default_factory=BrokerSession)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    pool: Worker | None = field(default=None, repr=False)  # None: calls run inline
    inflight: Pending[list[tuple[Any, Call]]] | None = None
    taken: dict[str, int] = field(default_factory=dict)  # sends of the batch in flight

    @staticmethod
    def rates(acct: Account) -> Throttle:
        return Throttle(
            {"order": acct.orders_per_s, "smart": acct.smart_orders_per_s}, hosttime.monotonic()
        )

    def send(self, batch: list[Any], call: Callable[[Lane, Any], Call]) -> None:
        """Make the batch's calls: inline without a worker (the in-process simulator),
        else on the worker, which wakes the router when it is done."""
        if self.pool is None:
            self.inflight = Answered(self._run(batch, call))
            return
        self.inflight = self.pool.submit(lambda: self._run(batch, call))

    def _run(self, batch: list[Any], call: Callable[[Lane, Any], Call]) -> list[tuple[Any, Call]]:
        """The batch's calls in order, until one goes unanswered (a timeout, an
        ambiguous 5xx; found in the order book or not): the rest are held, not made, and
        go in the next round. A broker that stops answering would otherwise cost each of them a full
        timeout on this thread, one after another, and the account's fills and updates
        wait for the lane meanwhile (the simulator's seed 326: ten placements each lost
        their reply, and the lane stayed busy past the day's end)."""
        out: list[tuple[Any, Call]] = []
        with self.lock:
            for i, item in enumerate(batch):
                got = call(self, item)
                out.append((item, got))
                if got.result is not None and got.result.unanswered:
                    wall = hosttime.time_ns()
                    out.extend((rest, Call(None, [], wall, held=True)) for rest in batch[i + 1 :])
                    break
        return out

    def busy(self) -> bool:
        """A batch's calls are running on the worker (holding the lane's lock): anything
        the router's own loop would ask this broker waits for the next round rather than
        for the call (a late broker would hold the loop up to its timeout per order)."""
        return self.inflight is not None and not self.inflight.done()

    def answered(self) -> list[tuple[Any, Call]] | None:
        """The answers of the batch in flight once it is done (and the lane idle again)."""
        if self.inflight is None or not self.inflight.done():
            return None
        out, self.inflight = self.inflight.result(), None
        return out

    def close(self) -> None:
        if self.updates is not None:
            self.updates.stop()
        if self.pool is not None:
            self.pool.close()
