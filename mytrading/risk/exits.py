"""Exits that risk itself places: closing positions when a post-trade limit is breached.

An exit job per (strategy, position) cancels the strategy's working orders on that
instrument (again every ``CANCEL_RETRY_S`` while one still works), then sends MARKET
orders (each at most a child order's size) until the fill-implied position is flat,
sending again for whatever is left if an exit order ends without filling (retries back
off from 1 s to 10 s, with a critical alert from the third). It closes only what no
working order of the strategy would close too: an entry on the exit's side whose cancel
has not been confirmed may still fill, and an exit sent for the whole position as well
would turn it round (the simulator's seed 80: a kill switch's flatten bought 750 to
close a short while the strategy's buy of 1,500 was in flight; both filled, long 1,500
with the kill switch on). A job is done only when the broker's position book agrees:
its net for the instrument equals what every strategy's fills imply.
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

CANCEL_RETRY_S = 2.0  # a strategy's order still working after our cancel: cancelled again


@dataclass
class ExitJob:
    strategy: str
    key: Key
    kind: str
    attempts: int = 0
    next_try: float = 0.0
    orders: list[str] = field(default_factory=list)
    cancelled: dict[str, float] = field(default_factory=dict)  # order id -> when, last


class ExitManager:
    def __init__(
        self,
        refdata: RefData,
        post: PostTrade,
        send: Callable[[wire.Order], bool],
        working: Callable[[str, Key], dict[str, int]],
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
        # (strategy, key)'s orders still working: order id -> signed quantity
        self._working = working
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
            working = self._working(job.strategy, job.key)
            ours = [o for o in working if o in job.orders]
            theirs = {o: q for o, q in working.items() if o not in job.orders}
            if qty == 0:
                if ours:
                    continue
                self._cancel(job, theirs, now)  # anything the strategy still has goes too
                if self._confirmed(job):
                    self._event(job, "exit_confirmed", "flat in the broker's position book")
                    del self.jobs[jk]
                continue
            if self._cancel(job, theirs, now):  # its orders could re-open what we close
                # a venue that answers at once (a backtest's) has ended them already
                theirs = {o: q for o, q in self._working(job.strategy, job.key).items()
                          if o not in job.orders}  # fmt: skip
            if ours or now < job.next_try:
                continue  # our exit is still working, or it is not time to try again
            # what the strategy's orders on the exit's side would close if they filled
            # before their cancels land: not ours to close as well
            covering = sum(q for q in theirs.values() if (q < 0) == (qty > 0))
            left = max(0, qty + covering) if qty > 0 else min(0, qty + covering)
            if left == 0:
                continue  # every lot is covered: the cancels' answers decide
            job.attempts += 1
            job.next_try = now + min(10.0, float(2 ** (job.attempts - 1)))
            sent = self._close(job, left)
            what = "exit" if job.attempts == 1 else "exit_retry"
            covered = f", {qty - left} covered by orders being cancelled" if left != qty else ""
            self._event(job, what, f"closing {left}{covered} (attempt {job.attempts})")
            if job.attempts >= 3:
                log.critical(
                    "exit not flat after repeated attempts",
                    strategy=job.strategy,
                    symbol=job.key[1],
                    left=left,
                    orders=sent,
                )

    def _cancel(self, job: ExitJob, order_ids: dict[str, int], now: float) -> bool:
        """Cancel each of the strategy's working orders; one still working
        ``CANCEL_RETRY_S`` after its cancel (refused: not at the broker yet, or lost)
        is cancelled again. Whether any cancel was sent."""
        sent = False
        for oid in order_ids:
            if now - job.cancelled.get(oid, -1e18) >= CANCEL_RETRY_S:
                job.cancelled[oid] = now
                self._order(job, "cancel", 0, oid)
                sent = True
        return sent

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
