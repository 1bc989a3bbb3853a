"""The router's start: replay the journal and settle every order that was in flight
against its broker before any new order is accepted; publish what recovery found once
subscribers are back; carry a finished day's positions into the next.

A damaged journal (``router/journal.py``: bytes in the middle of the file that hold no
good frame) is settled against each account's order and trade books before anything
else: an order whose first record was lost is rebuilt from the broker's row of its broker
id (its later records survived), every trade of our orders the journal lacks becomes a
fill, and orders at the broker nothing accounts for are named in an alert (the
reconciler reports them too). Nothing of it is sent again.

A part the router's shell (``RouterDaemon``, ``router/daemon.py``) composes: given the
order table, the books and the lanes, it fills the table and books from the journal and
the brokers before any order is read, and asks the shell (``RouterPorts``) only to book a
fill, reject, alert or publish."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from mytrading import domain, hosttime
from mytrading.domain.accounts import MAIN
from mytrading.domain.ids import OrderId
from mytrading.domain.positions import Ledger
from mytrading.messaging import wire
from mytrading.openalgo.broker import OrderReport, TradeEvent, broker_state
from mytrading.orders.state import OrderState
from mytrading.orders.tracker import TrackedOrder
from mytrading.router.books import BookKey, Books, snapshots
from mytrading.router.journal import Replay
from mytrading.router.lanes import Lane
from mytrading.router.ports import RouterPorts
from mytrading.router.table import OrderTable

S = OrderState
BOOK_READS = 3  # reads of a position book at the start before its positions are unconfirmed


class Recovery:
    def __init__(
        self,
        table: OrderTable,
        books: Books,
        lanes: dict[str, Lane],
        poll: Callable[[Lane], None],
        ports: RouterPorts,
    ) -> None:
        self.table = table
        self.books = books
        self.lanes = lanes
        self.poll = poll  # a lane's order book read now: fills and cancels while we were down
        self.ports = ports
        self.log = ports.log
        # what a damaged journal lost and what was done about it (empty when it was whole)
        self.journal_damage: dict[str, Any] = {}
        # positions the journal holds that the broker did not confirm at start
        self.unconfirmed: set[tuple[str, str, str, str]] = set()
        # accounts whose position book could not be read at start (their positions are in
        # ``unconfirmed`` until a later read, ``confirm_again``, settles them)
        self.unread: set[str] = set()

    def run(self, rep: Replay) -> None:
        """Replay the journal and settle every order in flight against the broker before
        any new order is accepted (the order pipe is opened after this returns)."""
        for c in rep.carried:
            self.books.carry(c)
        filled: dict[str, tuple[int, float]] = {}
        for f in rep.fills:
            self.books.book(f)
            q, v = filled.get(f.order_id, (0, 0.0))
            filled[f.order_id] = (q + f.quantity, v + f.quantity * f.price)
        self.table.fill_no = rep.last_fill_no
        orders = self.table.orders
        orders.update(rep.orders)
        if rep.damaged or rep.orphans:
            self._settle_damage(rep, filled)
        for lane in self.lanes.values():
            lane.broker.remember(
                {
                    jo.broker_id
                    for jo in orders.values()
                    if jo.broker_id and jo.order.account == lane.account
                }
            )
        outcome: collections.Counter[str] = collections.Counter()
        for jo in [jo for jo in orders.values() if not jo.final]:
            outcome[self._settle(jo, filled.get(jo.order.order_id, (0, 0.0)))] += 1
        for account in self.table.accounts_working():
            self.poll(self.lanes[account])  # fills and cancels while we were down
        self.unconfirmed = self._confirm_positions()
        self.log.info(
            "journal replayed",
            orders=len(orders),
            fills=len(rep.fills),
            carried=len(rep.carried),
            torn_bytes=rep.torn_bytes,
            **outcome,
        )
        if rep.torn_bytes:
            self.log.warning("journal: a torn last record was cut", bytes=rep.torn_bytes)

    def _confirm_positions(
        self, reads: int = BOOK_READS, only: set[str] | None = None
    ) -> set[tuple[str, str, str, str]]:
        """The positions the journal says we hold, against each account's position book:
        one the broker does not hold (at least as much, on the same side) is not ours to
        act on. It is reported loudly, kept out of what risk, the engine and the webhook
        books restore (``strategy_positions`` names it), and so never closed by an order:
        the reconciler reports the difference until a human settles it. A position book
        that cannot be read confirms nothing.

        An order still unknown (its reply lost, or the router died with it at the broker)
        may have filled where the journal cannot see it: the broker's position may differ
        from ours by what such orders would move. That difference confirms (the simulator's
        seed 468: killed with a SELL at the broker, the router found the broker flat where
        its journal held 65 long, and a restarted risk left that position's fills out of
        its books for the day); the order's fill, when it is found, is booked as any fill.

        ``only``: these accounts alone (``confirm_again``); the others keep what their
        start found."""
        self.unread = set() if only is None else self.unread - only
        ours = self.books.net_by_account()
        # per position, how far unknown orders could move it: (down, up)
        unknown: dict[tuple[str, str, str, str], tuple[int, int]] = {}
        for jo in self.table.orders.values():
            o = jo.order
            if jo.state != S.UNKNOWN or o.op != "place":
                continue
            uk = (o.account, o.exchange, o.symbol, str(o.product))
            down, up = unknown.get(uk, (0, 0))
            left = o.quantity - jo.filled
            unknown[uk] = (down - left, up) if o.action == "SELL" else (down, up + left)
        out: set[tuple[str, str, str, str]] = set()
        for account in sorted({k[0] for k, q in ours.items() if q}):
            if only is not None and account not in only:
                continue
            lane = self.lanes.get(account)
            book = self._position_book(account, lane, reads) if lane is not None else None
            if book is None and lane is not None:
                self.unread.add(account)
            net: dict[tuple[str, str, str, str], int] = {}
            for p in book or []:
                k = (account, p.exchange, p.symbol, p.product)
                net[k] = net.get(k, 0) + p.quantity
            for k, q in ours.items():
                if k[0] != account or not q:
                    continue
                down, up = unknown.get(k, (0, 0))
                b = net.get(k, 0)
                # ours long: the broker at least as long, less what unknown sells took
                held = b >= q + down if q > 0 else b <= q + up
                if book is None or not held:
                    out.add(k)
        # read again (``only``): an account still unread was said at start, not every round
        said = sorted(k for k in out if only is None or k[0] not in self.unread)
        if said:
            self.ports.count_error(
                "ALERT: positions in the journal that the broker's book does not confirm: not "
                "restored to risk, strategies or webhook books, and never closed by an order",
                positions=[f"{a}/{e}:{s}:{p} ours {ours[(a, e, s, p)]}" for a, e, s, p in said],
            )
        return out

    def confirm_again(self) -> None:
        """An account whose position book was unread at start (its session expired, its
        broker down) is read again once its session is good; what it confirms leaves
        ``unconfirmed`` (the simulator's seed 991: the router restarted in an expired
        session, every position unconfirmed for the day, and a restarted risk blind to
        them). Readers that restart ask until no account is unread (``Snapshot.unread``)."""
        # each account as its own lane allows: one whose session is still expired, or
        # whose lane a batch holds, waits for the next round without holding the others
        accounts = {a for a in self.unread
                    if not self.lanes[a].session.expired and not self.lanes[a].busy()}  # fmt: skip
        if not accounts:
            return
        before = set(self.unconfirmed)
        # on the loop, one call each; the accounts read at start are not asked again (a
        # fill the broker shows a moment before ours would unconfirm a position mid-day)
        again = self._confirm_positions(reads=1, only=accounts)
        self.unconfirmed = {k for k in before if k[0] not in accounts} | again
        read = accounts - self.unread
        if read:
            self.log.warning("position books read again: positions confirmed",
                             accounts=sorted(read),
                             confirmed=sorted("/".join(k) for k in before - self.unconfirmed),
                             unconfirmed=sorted("/".join(k) for k in self.unconfirmed))  # fmt: skip

    def _position_book(
        self, account: str, lane: Lane, reads: int = BOOK_READS
    ) -> list[wire.BrokerPosition] | None:
        """The account's position book, read again at once when a read fails: a
        timeout, a 5xx or a login page at the start would otherwise leave every position
        unconfirmed for the day (the simulator's seed 2, with string hashing 0: a garbled
        read kept risk, restarted later, blind to a position the broker held)."""
        for attempt in range(1, reads + 1):
            try:
                with lane.lock:
                    return lane.broker.positionbook()
            except ConnectionError as exc:
                self.log.warning("position book unread", account=account,
                                 error=str(exc), attempt=attempt, of=reads)  # fmt: skip
        return None

    def _settle_damage(self, rep: Replay, filled: dict[str, tuple[int, float]]) -> None:
        """Settle what a damaged journal cannot account for against every account's order
        and trade books (see the module's doc); ``filled`` (journaled fills per order id)
        gains the fills found. Then an alert says what was lost and what was done."""
        books: dict[str, tuple[dict[str, OrderReport], dict[str, tuple[int, float]]]] = {}
        unread = []
        for account, lane in self.lanes.items():
            with lane.lock:
                got = lane.broker.books()
            if got is None:
                unread.append(account)
                continue
            books[account] = got.orders, got.filled()
        rebuilt, lost = [], []
        for oid, part in rep.orphans.items():
            hit = [(a, b[0][part.broker_id]) for a, b in books.items() if part.broker_id in b[0]]
            if not part.broker_id or not hit:
                lost.append(f"{oid} ({part.state})")
                continue
            account, row = hit[0]
            jo = TrackedOrder(_order_from_report(oid, account, row), S.OPEN, part.broker_id)
            jo.filled, jo.avg, jo.attempt, jo.sent_ns = part.filled, part.avg, 1, part.sent_ns
            self.table.orders[oid] = jo
            self.table.set(jo, broker_state(row.status, part.filled), with_order=True)
            rebuilt.append(oid)
        rep.orphans.clear()
        found_fills = 0
        for jo in list(self.table.orders.values()):
            account, bid = jo.order.account, jo.broker_id
            if not bid or account not in books or jo.order.op != "place":
                continue
            got_q, got_v = books[account][1].get(bid, (0, 0.0))
            have_q, have_v = filled.get(jo.order.order_id, (0, 0.0))
            if got_q > have_q:
                px = round((got_v - have_v) / (got_q - have_q), 6)  # the trades' value
                trade = TradeEvent(bid, f"{bid}-{got_q}", got_q - have_q, px, hosttime.time_ns())
                self.ports.fill(jo, trade)
                filled[jo.order.order_id] = (got_q, got_v)
                found_fills += 1
                if got_q > jo.filled:
                    self.table.set(jo, jo.state, filled=got_q, avg=round(got_v / got_q, 2))
        known = {
            (jo.order.account, jo.broker_id) for jo in self.table.orders.values() if jo.broker_id
        }
        unaccounted = [
            f"{a}/{bid} {r.action} {r.quantity} {r.symbol} {r.status}"
            for a, (rows, _) in books.items()
            for bid, r in rows.items()
            if (a, bid) not in known
        ]
        self.journal_damage = {
            "lost_bytes": rep.damaged_bytes,
            "ranges": [list(r) for r in rep.damaged],
            "kept_at": rep.kept_at,
            "rebuilt_from_broker": rebuilt,
            "fills_from_broker": found_fills,
            "lost_orders": lost,
            "at_broker_unaccounted": unaccounted,
            "books_unread": unread,
        }
        self.ports.count_error(
            "ALERT: order journal damaged; recovered every record whose checksum holds and "
            "settled the rest against the broker's books",
            **self.journal_damage,
        )

    def _settle(self, jo: TrackedOrder, fills: tuple[int, float]) -> str:
        o = jo.order
        if jo.state == S.NEW:
            self.ports.reject(jo, "router restarted before sending it; not sent")
            return "not_sent"
        if o.op != "place":
            self.ports.reject(jo, f"{o.op}: outcome unknown after a router restart")
            return "amend_dropped"
        qty, value = fills
        done, avg = max(jo.filled, qty), (value / qty if qty else jo.avg)
        lane = self.lanes.get(o.account)
        bid = None
        if lane is not None:
            bid = lane.broker.recover(o, jo.broker_id, done, avg, jo.sent_ns / 1e9)
        if bid is None:
            if jo.state == S.UNKNOWN:  # alerted (and its strategy halted) before the restart
                return "unknown"
            why = (
                "not found at the broker after a router restart"
                if lane is not None
                else f"account {o.account!r} is no longer configured"
            )
            self.table.set(jo, S.UNKNOWN, reason=why)
            self.ports.alert_unknown(jo, why)
            return "unknown"
        adopted = not jo.broker_id
        was_unknown = jo.state == S.UNKNOWN
        state = S.OPEN if adopted or was_unknown else jo.state
        self.table.set(jo, state, broker_id=bid, filled=done, avg=avg)
        self.table.index(jo)
        self.ports.publish_order(jo)
        if was_unknown:  # its strategy was halted for it before the restart: released
            # (the simulator's seed 163: found at once after the restart, the release was
            # never sent and the strategy stayed HALTED for the day)
            self.ports.unknown_resolved(jo, f"found at the broker as {bid} after a restart")
        return "adopted" if adopted else "resumed"


def carried(rep: Replay) -> list[wire.PositionSnapshot]:
    """The positions a journal of an earlier day ends with: carried into today's."""
    ledger: Ledger[BookKey] = Ledger()
    for c in rep.carried:
        key = (c.strategy, c.exchange, c.symbol, c.product, c.account)
        ledger.apply(key, c.quantity, c.avg_price)
    for f in rep.fills:
        key = (f.strategy, f.exchange, f.symbol, f.product, f.account)
        ledger.apply(key, f.quantity if f.action == "BUY" else -f.quantity, f.price)
    return [s for s in snapshots(ledger) if s.quantity]


def _order_from_report(order_id: str, account: str, row: OrderReport) -> wire.Order:
    """Our order rebuilt from the broker's report of its broker id, for an order whose
    first journal record was lost. Its strategy is the order id's head
    (``<strategy>.<intent>``; a follower's ``<strategy>.<intent>@<account>`` is in the book
    ``<strategy>@<account>``). A value the broker wrote outside our sets is taken as the
    safest reading (SELL only if it said SELL; MARKET; MIS) and the order is rebuilt, not
    lost."""
    try:
        oid = OrderId.parse(order_id)
    except ValueError:  # not one of ours in form: rebuilt under its own name, not lost
        oid = OrderId(order_id, "", account if account != MAIN else "")
    return wire.Order(
        order_id=order_id,
        intent_id=oid.intent,
        strategy=str(oid.book),
        exchange=row.exchange,
        symbol=row.symbol,
        action="SELL" if row.action == "SELL" else "BUY",
        quantity=row.quantity,
        pricetype=domain.price_type(row.pricetype) if row.pricetype in domain.PRICE_TYPES
        else "MARKET",
        product=domain.product(row.product) if row.product in domain.PRODUCTS else "MIS",
        price=row.price,
        trigger_price=row.trigger_price,
        approved_by="risk",
        account=account,
    )  # fmt: skip
