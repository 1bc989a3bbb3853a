"""Exits that risk itself places: closing positions when a post-trade limit is breached.

An exit job per (strategy, position) cancels the strategy's working orders on that
instrument, then sends MARKET orders (each at most a child order's size) until the
fill-implied position is flat, sending again for whatever is left if an exit order ends
without filling (retries back off from 1 s to 10 s, with a critical alert from the third).
A job is done only when the broker's position book agrees: its net for the instrument
equals what every strategy's fills imply.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from mytrading import hosttime
from mytrading.domain.accounts import MAIN
from mytrading.domain.ids import OrderId
from mytrading.domain.refdata import Instrument, RefData
from mytrading.messaging import wire
from mytrading.risk.monitor import Key, PostTrade

log = structlog.get_logger("risk.exits")


@dataclass
class ExitJob:
    strategy: str
    key: Key
    kind: str
    attempts: int = 0
    next_try: float = 0.0
    orders: list[str] = field(default_factory=list)
    cancelled: set[str] = field(default_factory=set)


class ExitManager:
    def __init__(
        self,
        refdata: RefData,
        post: PostTrade,
        send: Callable[[wire.Order], bool],
        working: Callable[[str, Key], list[str]],
        broker_net: Callable[[Key, str], int | None],
        event: Callable[[ExitJob, str, str], None],
        run_id: str,
        child: Callable[[str, Instrument], int],
        account_of: Callable[[str], str] = lambda book: MAIN,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.refdata = refdata
        self.post = post
        self._send = send
        self._working = working  # our order ids still working for (strategy, key)
        self._broker_net = broker_net  # the broker's net quantity, None if unreachable
        self._event = event
        self._ids = itertools.count(1)
        self.run_id = run_id
        self._child = child  # largest order for a strategy and instrument
        self._account_of = account_of  # the account a book trades on
        self.jobs: dict[tuple[str, Key], ExitJob] = {}
        # seconds for retry back-off: market time in a backtest, else the host's clock
        self._clock = clock or (lambda: hosttime.monotonic())

    def start(self, strategy: str, key: Key, kind: str) -> None:
        if (strategy, key) not in self.jobs:
            self.jobs[(strategy, key)] = ExitJob(strategy, key, kind)

    def step(self) -> None:
        now = self._clock()
        for jk, job in list(self.jobs.items()):
            qty = self.post.qty(job.strategy, job.key)
            mine = self._working(job.strategy, job.key)
            ours = [o for o in mine if o in job.orders]
            if qty == 0:
                if ours:
                    continue
                self._cancel(job, mine)  # anything the strategy still has working goes too
                if self._confirmed(job):
                    self._event(job, "exit_confirmed", "flat in the broker's position book")
                    del self.jobs[jk]
                continue
            if ours or now < job.next_try:
                continue  # our exit is still working, or it is not time to try again
            self._cancel(job, mine)  # the strategy's own orders could re-open what we close
            job.attempts += 1
            job.next_try = now + min(10.0, float(2 ** (job.attempts - 1)))
            sent = self._close(job, qty)
            what = "exit" if job.attempts == 1 else "exit_retry"
            self._event(job, what, f"closing {qty} (attempt {job.attempts})")
            if job.attempts >= 3:
                log.critical(
                    "exit not flat after repeated attempts",
                    strategy=job.strategy,
                    symbol=job.key[1],
                    left=qty,
                    orders=sent,
                )

    def _cancel(self, job: ExitJob, order_ids: list[str]) -> None:
        for oid in order_ids:
            if oid not in job.cancelled and oid not in job.orders:
                job.cancelled.add(oid)
                self._order(job, "cancel", 0, oid)

    def _close(self, job: ExitJob, qty: int) -> list[str]:
        inst = self.refdata.instrument(job.key[0], job.key[1])
        chunk = self._child(job.strategy, inst)
        left = abs(qty)
        sent = []
        while left > 0:
            part = min(chunk, left)
            oid = self._order(job, "place", part if qty < 0 else -part, "")
            if oid:
                sent.append(oid)
            left -= part
        return sent

    def _order(self, job: ExitJob, op: wire.OrderOp, signed: int, ref: str) -> str:
        intent = f"risk-{self.run_id}-{next(self._ids)}"
        order = wire.Order(
            order_id=str(OrderId(job.strategy, intent)),
            intent_id=intent,
            strategy=job.strategy,
            exchange=job.key[0],
            symbol=job.key[1],
            action="BUY" if signed > 0 else "SELL",
            quantity=abs(signed),
            pricetype="MARKET",
            product=job.key[2],
            price=0.0,
            trigger_price=0.0,
            approved_by="risk",
            op=op,
            ref_order_id=ref,
            exit=True,
        )
        if not self._send(order):
            return ""
        if op == "place":
            job.orders.append(order.order_id)
        return order.order_id

    def _confirmed(self, job: ExitJob) -> bool:
        """The broker's book for the job's account agrees with every book on it."""
        account = self._account_of(job.strategy)
        net = self._broker_net(job.key, account)
        if net is None:
            return False
        books = [s for s in list(self.post.books) if self._account_of(s) == account]
        return net == sum(self.post.qty(s, job.key) for s in books)
