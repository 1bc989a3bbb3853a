"""What the router reads from each account's broker besides the answers to its calls:
order updates pushed on the WebSocket, the order book polled behind them, funds for
risk's margin checks, and the broker's margin per lot of the instruments traded.

A part the router's shell (``RouterDaemon``, ``router/daemon.py``) composes: given the
lanes, the order table and the settings, it reads each lane's broker and hands what it
finds to the table and to the shell (``RouterPorts``: broker events, alerts, the bus)."""

from __future__ import annotations

import msgspec

from mytrading import hosttime
from mytrading.domain import Action, Product
from mytrading.domain.accounts import MAIN
from mytrading.domain.outages import Outages
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.openalgo.broker import ABSENT_READS
from mytrading.router.lanes import Lane
from mytrading.router.ports import RouterPorts
from mytrading.router.session import expired_reply
from mytrading.router.table import OrderTable
from mytrading.settings import Settings

UNKNOWN_POLL_S = 2.0  # the order book read this often while an order is unknown
# A read due within this share of its period is made now: the timer that asks comes every
# period, and a read that started a few ms into its tick (calls before it in the same
# tick) would otherwise be "not yet due" at the next one and wait a whole period more
# (the simulator's seed 900: the order book read every 4 s, not 2, and an order that
# never reached the broker was still unknown at the day's end).
POLL_SLACK = 0.1
MARGIN_POLL_S = 60.0  # the broker's margin per lot of each instrument traded
MARGIN_WATCH_MAX = 20  # instruments asked about per poll (OpenAlgo rate limits)


class BrokerReads:
    def __init__(
        self,
        lanes: dict[str, Lane],
        table: OrderTable,
        settings: Settings,
        refdata: RefData,
        ports: RouterPorts,
    ) -> None:
        self.lanes = lanes
        self.table = table
        self.settings = settings
        self.refdata = refdata
        self.ports = ports
        self.log = ports.log
        self.outages = Outages()  # by (read, account); the start's grace from ``started``
        self.started = hosttime.monotonic()
        self.funds_failures = 0
        # accounts whose broker stopped answering (three funds reads in a row failed),
        # and since when: an alert each way (the monitor's account_unreachable)
        self.away: dict[str, str] = {}
        self.margin_watch: dict[tuple[str, str, Product], None] = {}  # (ex, sym, product), LRU
        self.margin_next = 0.0  # monotonic time of the next poll; a new instrument: now

    @property
    def main(self) -> Lane:
        return self.lanes[MAIN]

    def on_ws_updates(self, lane: Lane) -> None:
        """The lane's WebSocket client woke the loop: updates are queued."""
        if lane.inflight is None:  # else they wait in the client's queue (see lanes.py)
            self.take_updates(lane)

    def take_updates(self, lane: Lane) -> None:
        assert lane.updates is not None
        for item in lane.updates.take():
            if isinstance(item, dict):
                with lane.lock:
                    events = lane.broker.on_order_update(item)
                self.ports.on_broker_events(lane.account, events)

    def maybe_poll(self) -> None:
        s = self.settings
        for lane in self.lanes.values():
            assert lane.updates is not None
            up = lane.updates.pushing  # subscribed and confirmed: the poll is a repair
            every = s.openalgo.poll_s if up else s.openalgo.poll_no_ws_s
            if lane.broker.unresolved():  # an order may be at the broker: look often
                every = min(every, UNKNOWN_POLL_S)
            if lane.session.expired:
                continue  # every call would be refused: the session probe comes first
            due = hosttime.monotonic() - lane.last_poll >= every * (1 - POLL_SLACK)
            if lane.inflight is None and due:
                self.poll(lane)

    def poll(self, lane: Lane) -> None:
        lane.last_poll = hosttime.monotonic()
        with lane.lock:
            events, resolved = lane.broker.poll()
        for order, outcome, broker_id in resolved:
            jo = self.table.get(order.order_id)
            if jo is None or jo.final:
                continue
            if outcome == "found":
                self.table.at_broker(jo, broker_id)
                self.ports.unknown_resolved(jo, f"found at the broker as {broker_id}: adopted")
            else:
                self.ports.reject(
                    jo,
                    f"never reached the broker: absent from its order book in {ABSENT_READS} "
                    f"reads over {lane.broker.absent_s:g}s after the call; not sent again",
                )
                self.ports.unknown_resolved(jo, "certainly never placed (absent at the broker)")
        self.ports.on_broker_events(lane.account, events)

    def publish_funds(self) -> None:
        """Each account's funds. A failed poll is a warning (the broker may still be
        starting); three in a row are an error, counted once per outage."""
        for lane in self.lanes.values():
            if lane.session.expired or lane.busy():
                continue  # a call in flight holds the lane: its funds at the next round
            try:
                funds = self.funds(lane)
            except ConnectionError as exc:
                if expired_reply(403, str(exc)):
                    self.ports.session_expired(lane, str(exc))
                    continue
                self.funds_failures += 1
                self.read_failed("funds", lane.account, exc)
                continue
            self.read_ok("funds", lane.account)
            if self.away.pop(lane.account, None) is not None:
                self.log.warning("account's broker answers again", account=lane.account)
            self.ports.publish("exec.funds", funds)

    def read_ok(self, what: str, account: str) -> None:
        """A read of ``what`` from ``account``'s broker answered: its failures end."""
        self.outages.ok((what, account), account)

    def read_failed(self, what: str, account: str, exc: Exception) -> None:
        """A broker read that did not connect: a warning (the broker may still be starting;
        the reader asks again), an error from the third in a row for that read and
        account once the broker has answered or the router has been up ``START_GRACE_S``,
        counted once per outage (``domain/outages.py``). Funds polled and funds or
        positions asked for by another daemon all come here; a good read of the same kind
        (``read_ok``) resets it."""
        n, error, starting = self.outages.failed(
            (what, account), account, hosttime.monotonic() - self.started
        )
        if error:
            if what == "funds":
                self.away[account] = hosttime.now(IST).isoformat(timespec="seconds")
            self.ports.count_error(
                f"{what} unavailable three times in a row", account=account, reason=str(exc)
            )
        else:
            self.log.warning(
                f"{what} unavailable", account=account, reason=str(exc), tries=n, starting=starting
            )

    @staticmethod
    def funds(lane: Lane) -> wire.Funds:
        with lane.lock:
            funds = lane.broker.funds()
        return msgspec.structs.replace(funds, account=lane.account)

    def watch_margin(self, o: wire.Order) -> None:
        """An order sent in an instrument: its margin per lot is asked for (at once, the
        first time) and then every ``MARGIN_POLL_S``, the most recent instruments first."""
        watched = (o.exchange, o.symbol, o.product)
        if watched not in self.margin_watch:
            self.margin_next = 0.0  # ask about a new instrument at the next tick of the timer
        self.margin_watch.pop(watched, None)
        self.margin_watch[watched] = None  # most recent last

    def maybe_margins(self) -> None:
        if self.main.session.expired or self.main.busy():
            return
        if self.margin_watch and hosttime.monotonic() >= self.margin_next:
            self.margin_next = hosttime.monotonic() + MARGIN_POLL_S
            self.publish_margins()

    def publish_margins(self) -> None:
        """Ask the broker what one lot of each recently traded instrument needs, short
        (and long, for futures); publish each answer for risk."""
        for ex, sym, prod in list(self.margin_watch)[-MARGIN_WATCH_MAX:]:
            inst = self.refdata.instrument(ex, sym)
            sides: tuple[Action, ...] = ("SELL", "BUY") if inst.kind == "FUT" else ("SELL",)
            for action in sides:
                try:
                    with self.main.lock:
                        per = self.main.broker.margin_per_lot(ex, sym, action, prod, inst.lot_size)
                except ConnectionError as exc:
                    self.log.warning("margin unavailable", symbol=sym, reason=str(exc))
                    return
                if per is not None:
                    self.ports.publish(
                        "exec.margin",
                        wire.MarginQuote(
                            exchange=ex, symbol=sym, action=action, product=prod,
                            per_lot=round(per, 2),
                        ),
                    )  # fmt: skip
