"""The router's bad days, each a state with one alert going in and one coming out:

* **A disk that refuses the journal** (``JournalFaults``): new orders are refused before
  sending (an order is never sent unjournaled), fills are booked but held
  (``router/publishing.py``), what the journal holds in memory is written again every
  second, and once the disk takes it orders flow and the held fills go out, in order. The
  journal also rolls to each new trading day here while the router runs.
* **An expired broker session** (``Sessions``): OpenAlgo's daily expiry or a logout on one
  account; its orders are refused as "broker session expired" before sending, its broker
  probed on a backoff, and resumed when it answers.

Parts the router's shell (``router/daemon.py``) composes; what they ask of it is
``RouterPorts`` (an alert, a rejection) and a way to send the orders waiting."""

from __future__ import annotations

import collections
from collections.abc import Callable

from mytrading import hosttime
from mytrading.domain.clock import MarketClock
from mytrading.orders.tracker import TrackedOrder
from mytrading.router.broker_reads import BrokerReads
from mytrading.router.journal import Replay, day_start_ns
from mytrading.router.lanes import Lane
from mytrading.router.ports import RouterPorts
from mytrading.router.recovery import carried
from mytrading.router.session import SESSION_EXPIRED, expired_reply
from mytrading.router.table import OrderTable

JOURNAL_RETRY_S = 1.0  # while the disk refuses the journal: how often it is tried again


class JournalFaults:
    def __init__(
        self,
        table: OrderTable,
        clock: MarketClock,
        ports: RouterPorts,
        counts: collections.Counter[str],
        resume: Callable[[], int],
    ) -> None:
        self.table = table
        self.clock = clock
        self.ports = ports
        self.counts = counts
        # once the disk takes the journal again: the fills held go out and the orders
        # waiting are sent; how many fills it released
        self.resume = resume
        self.said = ""  # the fault the alert has named ("": none)
        self.day = ""  # the trading day the journal holds
        self.roll_failed = ""  # the day a roll failed on (said once)

    def open(self, identities: dict[str, str]) -> Replay:
        """Open (replay and compact) the journal; a disk that refuses the compaction is
        waited for, said once: nothing can be sent before the journal is written."""
        said = False
        while True:
            try:
                rep = self.table.journal.open(
                    self.clock.now().date().isoformat(), carried, identities
                )
            except OSError as exc:
                if not said:
                    said = True
                    self.ports.count_error(
                        "ALERT: the order journal cannot be written at start; waiting for "
                        "the disk (no order is accepted before it is)",
                        path=str(self.table.journal.path),
                        error=exc.strerror or repr(exc),
                    )
                hosttime.sleep(JOURNAL_RETRY_S)
                continue
            self.day = rep.day
            return rep

    def down(self) -> bool:
        """Whether the disk refuses the journal; its first refusal is alerted (once per
        fault, with the recovery said when it ends: ``retry``)."""
        fault = self.table.journal.fault
        if fault and fault != self.said:
            self.said = fault
            self.ports.count_error(
                "ALERT: the order journal cannot be written: new orders are refused until "
                "it can (checked every second); fills are held until they are on the disk",
                fault=fault,
            )
        return bool(fault)

    def refuse(self, jo: TrackedOrder) -> None:
        """An order not sent because its ``sent`` record cannot be written."""
        self.counts["refused_journal_down"] += 1
        self.ports.reject(jo, f"not sent: {self.table.journal.fault}; orders resume when it can")

    def retry(self) -> None:
        """While the disk refuses the journal: try to write what is held; once it takes
        it, orders are accepted again and the fills held are published, in order."""
        journal = self.table.journal
        if not journal.fault:
            return
        self.down()
        held = journal.held_bytes
        if not journal.recover():
            return
        self.said = ""
        released = self.resume()
        self.ports.log.warning(
            "ALERT RECOVERED: the order journal is written again; orders accepted",
            written_bytes=held,
            fills_released=released,
        )

    def roll(self) -> None:
        """A new trading day in a router that did not restart: the journal is rolled as a
        start would roll it (``Journal.roll``): it stays one day long over weeks."""
        today = self.clock.now().date().isoformat()
        if today == self.day:
            return
        since = day_start_ns(today)
        try:
            rolled = self.table.journal.roll(today, carried, self.table.of_today(since))
        except OSError as exc:
            if self.roll_failed != today:  # said once a day; tried again every second
                self.roll_failed = today
                self.ports.log.warning("journal not rolled to the new day; trying again",
                                       day=today, error=exc.strerror or repr(exc))  # fmt: skip
            return
        if rolled or not self.table.journal.fault:
            self.day = today
            if rolled:
                # the reconciler compares with the broker's day
                dropped = self.table.roll(since)
                self.ports.log.info("journal rolled to a new day", day=today,
                                    orders_done=dropped,
                                    bytes=self.table.journal.path.stat().st_size)  # fmt: skip


class Sessions:
    def __init__(
        self,
        lanes: dict[str, Lane],
        reads: BrokerReads,
        ports: RouterPorts,
        counts: collections.Counter[str],
    ) -> None:
        self.lanes = lanes
        self.reads = reads
        self.ports = ports
        self.counts = counts

    def refuse(self, lane: Lane, jo: TrackedOrder) -> None:
        """Not sent: the account's broker session has expired (not a broker rejection)."""
        self.counts["session_refused"] += 1
        self.ports.reject(jo, f"{SESSION_EXPIRED}: {jo.order.op} not sent to {lane.account}")

    def expired(self, lane: Lane, why: str) -> None:
        if lane.session.expire(why):
            self.ports.count_error(
                "ALERT: broker session expired: orders for this account are refused until "
                "it is logged in again (working orders left as they are)",
                account=lane.account,
                reason=why,
            )

    def probe(self) -> None:
        """``ping`` each expired account on its backoff; resume it when it answers."""
        now = hosttime.monotonic()
        for lane in self.lanes.values():
            if not lane.session.probe_due(now) or lane.busy():
                continue
            with lane.lock:
                fail = lane.broker.ping()
            if lane.session.probed(fail is None, hosttime.monotonic()):
                self.ports.log.critical(
                    "ALERT: broker session restored: orders flow again", account=lane.account
                )
                self.reads.margin_next = 0.0
            elif fail is not None and not expired_reply(fail.code, fail.message):
                self.ports.log.warning(
                    "session probe failed", account=lane.account, reason=fail.message
                )
