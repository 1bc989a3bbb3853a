"""The reconciler: compares the positions our fills imply with the broker's position book.

It subscribes to fills first, then starts from the router's books: every position it
holds, those carried from earlier days included, as of a fill number, then the fills
after it (late joiner: snapshot plus sequenced updates, de-duplicated by ``fill_no``).
Every ``MT_RECON_INTERVAL_S`` it asks for the broker's position book together with the
router's latest ``fill_no``, fetches any fill it has not seen up to that number (so a fill
still in flight on the bus cannot look like a mismatch), and compares net quantities per
(exchange, symbol, product). A difference is logged and published as a ``ReconEvent``
naming both sides. The broker is the truth, but no strategy made the difference: it is
labelled *external* (a position opened by hand or by another tool), kept apart from
every strategy's books, and counted in later comparisons, so it is reported once.

Against OpenAlgo it also compares **orders and trades**: the broker's order book and
trade book (read directly, two calls per check) with the router's journaled orders and
the fills it published. An order at the broker the stack never placed is *external*; an
order final on one side and working on the other, or a filled quantity that differs, is a
mismatch naming both sides. Either is reported only when two checks in a row agree (an
update may be in flight on the bus for one), and once. The router's own polling corrects
its fills and states; the reconciler reports, it does not trade.

It runs 2 s after the router is first seen (at start) and then every
``MT_RECON_INTERVAL_S``, account by account (``config/accounts.toml``): each account's
books against that account's broker, every event naming its account.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from mytrading import hosttime, venue
from mytrading.domain.outages import Outages
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.messaging.catchup import (
    FillSequence,
    fetch_fills,
    fetch_fills_since,
    fetch_snapshot,
)
from mytrading.openalgo.broker import SESSION_EXPIRED, BrokerAdapter, OrderReport
from mytrading.process.base import Daemon, Peer

# (account, kind, broker order id, ours, broker)
Suspect = tuple[str, Literal["order", "trade"], str, int, int]
PosKey = tuple[str, str, str, str]  # (account, exchange, symbol, product)


class Where(NamedTuple):
    """The instrument a reported difference is about."""

    exchange: str
    symbol: str
    product: str


def _where(r: OrderReport) -> Where:
    return Where(r.exchange, r.symbol, r.product)


T = TypeVar("T", bound=tuple[Any, ...])
FAILED_CHECKS_ERROR = 3  # checks in a row that could not run before it is an error


class TwoChecks(Generic[T]):
    """What two checks in a row agree on, per account. A broker's books can run ahead of
    what the stack has recorded for a moment (an order in flight): only a difference that
    the next check finds again is reported, for orders, trades and positions alike."""

    def __init__(self) -> None:
        self.seen: dict[str, set[T]] = {}

    def confirm(self, account: str, now: Iterable[T]) -> list[T]:
        """The differences of this check that the account's previous check found too."""
        found = set(now)
        before, self.seen[account] = self.seen.get(account, set()), found
        return sorted(found & before)


class ReconcilerDaemon(Daemon):
    name = "reconciler"
    required_peers = ("router",)
    sub_prefixes = ("exec.fill.",)

    def setup(self) -> None:
        # (account, exchange, symbol, product) -> what our fills say
        self.ledger: Ledger[PosKey] = Ledger()
        self.external: dict[PosKey, int] = {}  # the broker's rest, no strategy's
        # a position difference (key, broker, ours) is reported when two checks agree
        self.positions_agreed: TwoChecks[tuple[PosKey, int, int]] = TwoChecks()
        # fills in the router's numbering, each booked once; a hole the router did not
        # fill is asked again at its next heartbeat (and before every check), never
        # jumped over (``FillSequence``)
        self.fill_seq = self._fill_sequence()
        self.settled: list[str] = []  # settlements at expiry booked, latest last
        self.checks = 0
        self.mismatches = 0
        self.last_check = ""
        self.last_result = "not yet run"
        self.synced = False
        # (account, broker order id) -> our fills' quantity
        self.filled_by_order: dict[tuple[str, str], int] = {}
        s = self.settings
        accounts = self.accounts
        self.account_list = list(accounts.by_name.values())
        routes = venue.routes(s, accounts)
        # Order and trade books are read from an account's OpenAlgo only where its orders
        # go there: a paper account's books are the router's in-process venue's (its
        # positions still come through the router).
        self.brokers: dict[str, BrokerAdapter] = {
            a.name: venue.broker_adapter(
                a.api_key,
                a.rest_url,
                s.openalgo.timeout_s,
                lambda: self.clock.now_ns() / 1e9,
                transport=self.host.transport(a.rest_url),
            )
            for a in self.account_list
            if routes[a.name].kind in ("real", "simserver", "dry")
        }
        self.orders_agreed: TwoChecks[Suspect] = TwoChecks()
        # checks that could not run, per account: the router's rule for its own reads of
        # the broker (a broker starting with the stack is waited out, ``domain/outages.py``)
        self.failures = Outages(in_a_row=FAILED_CHECKS_ERROR)
        self.reported: set[Suspect] = set()
        self.order_mismatches = 0
        self.adopted = 0  # unknown orders of ours found at the broker and handed over
        self.every(s.recon_interval(), self.reconcile)

    def _fill_sequence(self) -> FillSequence:
        return FillSequence(lambda after: fetch_fills_since(self.ask_router(), after))

    @property
    def seen_fill_no(self) -> int:
        """The last fill number booked in order (0 before the first)."""
        return self.fill_seq.last or 0

    def on_peer_change(self, peer: Peer) -> None:
        if peer.name == "router" and peer.up and not self.synced:
            self.synced = self._sync()
            self.after(2.0, self.reconcile)  # at start, not one interval later

    def _sync(self) -> bool:
        """Start from the router's books: every position it holds (those carried from
        earlier days and those the broker did not confirm included: the broker's book is
        compared with all of them) as of its last fill, and the day's fills per order for
        the trade-book comparison. Later fills are applied on top, in number order."""
        snap = fetch_snapshot(self.ask_router(), everything=True)
        if snap is None:
            return False
        fills = fetch_fills(self.ask_router(), snap.last_fill_no)
        if fills is None:
            return False
        self.ledger = Ledger()
        self.filled_by_order = {}
        self.fill_seq = self._fill_sequence()
        for p in snap.positions:
            self.ledger.apply((p.account, p.exchange, p.symbol, p.product), p.quantity, p.avg_price)
        for f in fills:
            if f.settlement:  # the exchange's: no broker order behind it
                continue
            bid = (f.account, f.broker_order_id)
            self.filled_by_order[bid] = self.filled_by_order.get(bid, 0) + f.quantity
        self.fill_seq.start_at(snap.last_fill_no)
        return True  # later fills come on the bus (subscribed first) and by the heartbeat

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Fill):
            self._apply(msg)

    def on_peer_status(self, st: wire.Status) -> None:
        if self.synced:  # a hole not answered before, or a last fill the bus lost
            for f in self.fills_caught_up(self.fill_seq, st):
                self._book(f)

    def _apply(self, f: wire.Fill) -> None:
        """A fill from the bus, in the router's numbering: those of a hole before it are
        asked of the router first; a hole it does not answer for stays a hole (asked
        again), the fill after it is booked."""
        if not self.synced:
            return  # the snapshot at the router's first heartbeat covers it
        for g in self.fills_in_order(self.fill_seq, f):
            self._book(g)

    def _book(self, f: wire.Fill) -> None:
        signed = f.quantity if f.action == "BUY" else -f.quantity
        self.ledger.apply((f.account, f.exchange, f.symbol, f.product), signed, f.price)
        if f.settlement:  # the exchange's, not a trade: no broker order or trade to match
            what = (
                f"{f.action} {f.quantity} {f.exchange}:{f.symbol} at {f.price:g} ({f.settlement})"
            )
            self.settled = [*self.settled[-19:], what]
            self.log.info("settlement at expiry booked", account=f.account, settled=what)
            return
        bid = (f.account, f.broker_order_id)
        self.filled_by_order[bid] = self.filled_by_order.get(bid, 0) + f.quantity

    def _catch_up(self, upto: int) -> bool:
        """Every fill up to ``upto`` (the router's last) booked, a hole's too; False while
        the router has not given them all (asked again at the next check or heartbeat)."""
        for f in self.fill_seq.catch_up(upto):
            self._book(f)
        return not self.fill_seq.holes and self.seen_fill_no >= upto

    def _failed(self, account: str, what: str, **ctx: Any) -> None:
        """A check that could not run (the router busy at a start, a broker read timed
        out): a warning, and tried again at the next check; an error on the third in a
        row for that account, counted once per outage (while its broker has not answered
        since our start, not before ``START_GRACE_S``)."""
        n, error, starting = self.failures.failed(account, account, self.uptime())
        if error:
            self.count_error(f"{what} {n} checks in a row", account=account, **ctx)
        else:
            self.log.warning(what, account=account, checks_in_a_row=n, starting=starting, **ctx)

    def reconcile(self) -> None:
        if not self.peer_up("router"):
            self.last_result = "skipped: router down"
            return
        t0 = hosttime.monotonic()
        found = compared = 0
        for acct in self.account_list:
            got = self._reconcile(acct.name)
            if got is None:
                return
            found += got[0]
            compared += got[1]
        self.checks += 1
        self.mismatches += found
        self.last_check = hosttime.now(IST).strftime("%H:%M:%S")
        self.last_result = f"{found} mismatches over {compared} positions"
        self.record_latency_ns(int((hosttime.monotonic() - t0) * 1e9))
        self.log.info("reconciled", mismatches=found, positions=compared, fills=self.seen_fill_no)

    def _reconcile(self, account: str) -> tuple[int, int] | None:
        """One account: (mismatches reported, positions compared), None when it could not."""
        reply = self.host.request("rpc.router", wire.BrokerQuery(kind="positions", account=account))
        if isinstance(reply, wire.BrokerReply) and reply.error.startswith(SESSION_EXPIRED):
            # the router says it once, as an alert; nothing can be compared meanwhile
            self.log.warning("reconciliation paused: broker session expired", account=account)
            self.last_result = f"paused: broker session expired for {account}"
            return None
        if not isinstance(reply, wire.BrokerReply) or not reply.ok:
            self._failed(account, "position book query failed",
                         reply=getattr(reply, "error", "timeout"))  # fmt: skip
            self.last_result = f"failed: no position book for {account}"
            return None
        if reply.last_fill_no < self.seen_fill_no:
            # The router's numbers went back (its journal started over): its books are the
            # truth now.
            self.log.warning(
                "router fill numbers restarted", ours=self.seen_fill_no, router=reply.last_fill_no
            )
            self.synced = self._sync()
            return None
        behind = self.seen_fill_no < reply.last_fill_no or self.fill_seq.holes
        if behind and not self._catch_up(reply.last_fill_no):
            self._failed(account, "could not fetch fills before reconciling")
            return None
        self.failures.ok(account, account)
        found = 0
        pending: set[Where] = set()  # where an order of ours is unknown at the broker
        if account in self.brokers:
            got, pending = self._orders_and_trades(account)
            found += got
        broker = {(account, p.exchange, p.symbol, p.product): p for p in reply.positions}
        ours = {k: q for k, q in self.ledger.net().items() if k[0] == account}
        external = {k for k in self.external if k[0] == account}
        differ: set[tuple[PosKey, int, int]] = set()
        for key in set(broker) | set(ours) | external:
            b = broker[key].quantity if key in broker else 0
            o = ours.get(key, 0)
            if b != o + self.external.get(key, 0):
                if Where(*key[1:]) in pending:
                    # an order of ours may be behind it: the router is still looking for
                    # it (never labelled external while it may be ours)
                    self.log.warning("position differs where an order of ours is unknown; "
                                     "not compared until it is resolved", account=account,
                                     symbol=key[2], ours=o, broker=b)  # fmt: skip
                    continue
                differ.add((key, b, o))
        # The broker's book can run ahead of the fills the router has recorded (an order
        # filled while its placeorder call has not returned): a difference is reported
        # only when the next check finds the same one.
        for key, b, o in self.positions_agreed.confirm(account, differ):
            found += 1
            _, ex, sym, prod = key
            self.log.error(
                "position mismatch",
                account=account,
                exchange=ex,
                symbol=sym,
                product=prod,
                ours=o,
                broker=b,
            )
            self.publish(
                "recon.mismatch",
                wire.ReconEvent(
                    exchange=ex,
                    symbol=sym,
                    product=prod,
                    ours=o,
                    broker=b,
                    action="external",
                    account=account,
                ),
            )
            # The broker is the truth, but no strategy made the difference: it is held as
            # an external position (by hand, another tool) and never adopted by a strategy.
            self.external[key] = b - o
            if not self.external[key]:
                del self.external[key]
        return found, len(set(broker) | set(ours))

    def _orders_and_trades(self, account: str) -> tuple[int, set[Where]]:
        """Compare one account's order and trade books with the router's orders and our
        fills; report what two checks in a row agree on. Returns how many it reported,
        and where an order of ours is still unknown at the broker (a broker order that
        matches one is handed to the router as that order, not reported)."""
        books = self.brokers[account].books()
        reply = self.host.request("rpc.router", wire.BrokerQuery(kind="orders"))
        if books is None or not isinstance(reply, wire.BrokerReply):
            self.log.warning(
                "order or trade book unavailable; orders not compared", account=account
            )
            return 0, set()
        ours = {
            w.broker_order_id: w
            for w in reply.working
            if w.broker_order_id and w.order.account == account
        }
        unknown = [w for w in reply.working if w.status == "unknown" and w.order.account == account]
        rows = books.orders
        strangers = [r for b, r in rows.items() if b not in ours]
        claimed = self._claim_unknown(account, unknown, strangers)
        rows = {b: r for b, r in rows.items() if b not in claimed}
        pending = {Where(w.order.exchange, w.order.symbol, w.order.product) for w in unknown}
        broker_filled = {bid: q for bid, (q, _) in books.filled().items()}
        now: dict[Suspect, tuple[Where, str]] = {}
        for bid, row in rows.items():
            w = ours.get(bid)
            status = row.status
            if w is None:
                now[(account, "order", bid, 0, 1)] = (
                    _where(row),
                    f"{status}: not placed by this stack",
                )
            elif (w.status in wire.TERMINAL_STATUSES) != (status in wire.TERMINAL_STATUSES):
                now[(account, "order", bid, 1, 1)] = (
                    _where(row),
                    f"ours {w.status}, broker {status}",
                )
        for bid, w in ours.items():
            if bid not in rows:
                if w.status not in wire.TERMINAL_STATUSES:
                    now[(account, "order", bid, 1, 0)] = (
                        Where(w.order.exchange, w.order.symbol, w.order.product),
                        f"ours {w.status}, not in the broker's book",
                    )
                # finished and not in the broker's book of the day: it is of another day
                # there (an answer that crossed the night at a demo's speed); its trades
                # are not in this day's trade book either
                continue
            got, have = self.filled_by_order.get((account, bid), 0), broker_filled.get(bid, 0)
            if got != have:
                now[(account, "trade", bid, got, have)] = (
                    Where(w.order.exchange, w.order.symbol, w.order.product),
                    f"filled {got} here, {have} at the broker",
                )
        confirmed = [k for k in self.orders_agreed.confirm(account, now) if k not in self.reported]
        for key in confirmed:
            _, kind, bid, o, b = key
            where, why = now[key]
            external = kind == "order" and o == 0
            self.log.error(
                f"{kind} mismatch",
                account=account,
                broker_order_id=bid,
                ours=o,
                broker=b,
                detail=why,
            )
            self.publish(
                "recon.mismatch",
                wire.ReconEvent(
                    exchange=where.exchange,
                    symbol=where.symbol,
                    product=where.product,
                    ours=o,
                    broker=b,
                    action="external" if external else "reported",
                    kind=kind,
                    order_id=bid,
                    detail=why,
                    account=account,
                ),
            )
            self.reported.add(key)
        self.order_mismatches += len(confirmed)
        return len(confirmed), pending

    def _claim_unknown(
        self, account: str, unknown: list[wire.WorkingOrder], strangers: list[OrderReport]
    ) -> set[str]:
        """Each unknown order of ours that exactly one broker order no one has claimed
        could be (same instrument, side, quantity, type, product) is handed to the router
        as that order; returns the broker ids it took."""
        took: set[str] = set()
        for w in unknown:
            o = w.order
            hits = [
                r
                for r in strangers
                if r.broker_id not in took
                and (r.exchange, r.symbol, r.action, r.quantity, r.pricetype, r.product)
                == (o.exchange, o.symbol, o.action, o.quantity, o.pricetype, o.product)
                and r.strategy in (None, "", o.strategy)
            ]
            if len(hits) != 1:
                continue
            q = wire.BrokerQuery(
                kind="adopt", account=account, order_id=o.order_id, broker_id=hits[0].broker_id
            )
            reply = self.host.request("rpc.router", q)
            if isinstance(reply, wire.BrokerReply) and reply.ok:
                took.add(hits[0].broker_id)
                self.adopted += 1
                self.log.warning("an order at the broker is our unknown order: the router "
                                 "adopts it", account=account, order_id=o.order_id,
                                 broker_id=hits[0].broker_id)  # fmt: skip
        return took

    def teardown(self) -> None:
        for broker in self.brokers.values():
            broker.close()

    def detail(self) -> dict[str, Any]:
        return {
            "order_mismatches": self.order_mismatches,
            "unknown_adopted": self.adopted,
            "checks": self.checks,
            "mismatches": self.mismatches,
            "fills_seen": self.seen_fill_no,
            "last_check": self.last_check,
            "last_result": self.last_result,
            "settled": self.settled,  # expiry settlements booked (the last 20)
            # ex:sym:product on main, account/ex:sym:product on another account
            "external": {
                ("" if k[0] == "main" else f"{k[0]}/") + ":".join(k[1:]): q
                for k, q in self.external.items()
            },
        }
