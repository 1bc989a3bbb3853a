"""One lane per account: its broker adapter, rate limits, pushed order updates and the
thread its broker calls run on.

Accounts are separate brokers with separate limits: a slow or failing account must not
hold up another's orders. Each lane's calls run on its own single worker thread, so an
order fanned out to three accounts reaches the three brokers in parallel, while one
account's calls stay in order (a cancel never overtakes the place it cancels). The
router's journal, books and publications stay on its main thread: a batch's results are
applied there once every lane has answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mytrading.accounts import Account
from mytrading.feed.openalgo_ws import FeedClient
from mytrading.router.broker import BrokerAdapter, OrderEvent, PlaceResult, TradeEvent
from mytrading.router.openalgo_adapter import OpenAlgoAdapter
from mytrading.router.throttle import Throttle

Events = list[OrderEvent | TradeEvent]


@dataclass
class Call:
    """What one broker call of a lane came back with (``result`` None: nothing was sent,
    because an amend's target was not working, or ``error``: the call raised)."""

    result: PlaceResult | None
    events: Events
    wall_ns: int
    error: BaseException | None = None


@dataclass
class Lane:
    account: str
    broker: BrokerAdapter
    throttle: Throttle
    adapter: OpenAlgoAdapter | None = None
    updates: FeedClient | None = None
    updates_pull: Any = None  # the zmq PULL its FeedClient wakes the router on
    last_poll: float = 0.0
    funds_failing: int = 0
    pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    @staticmethod
    def rates(acct: Account) -> Throttle:
        return Throttle(
            {"order": acct.orders_per_s, "smart": acct.smart_orders_per_s}, time.monotonic()
        )

    def start_pool(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"lane-{self.account}")

    def close(self) -> None:
        if self.updates is not None:
            self.updates.stop()
        if self.updates_pull is not None:
            self.updates_pull.close(0)
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def call_all(
    batches: dict[str, list[Any]],
    lanes: dict[str, Lane],
    call: Callable[[Lane, Any], Call],
) -> list[tuple[Lane, Any, Call]]:
    """Make every lane's calls, lanes in parallel (inline when only one has work), and
    return the outcomes in the order of ``batches``."""

    def run(lane: Lane, batch: list[Any]) -> list[tuple[Lane, Any, Call]]:
        return [(lane, item, call(lane, item)) for item in batch]

    if len(batches) <= 1 or any(lanes[a].pool is None for a in batches):
        return [out for a, batch in batches.items() for out in run(lanes[a], batch)]
    futures = [lanes[a].pool.submit(run, lanes[a], batch) for a, batch in batches.items()]  # type: ignore[union-attr]
    return [out for f in futures for out in f.result()]
