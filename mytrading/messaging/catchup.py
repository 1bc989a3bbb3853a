"""Catching up after a restart: the positions every strategy holds, from the router.

A daemon that restarts (engine, risk) has lost the positions it built from fills. Before
it serves anything it asks the router for its per-strategy books and the router-wide
number of the last fill in them; fills it then receives with a number at or below that one
are already in the snapshot and are skipped, so none counts twice and none is missed.
The snapshot also holds every order not yet final (``working``), so a restarted engine
knows what its strategies have working (``target_position`` counts it) and risk counts
it against the caps. The router rebuilds its own books from its journal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mytrading.messaging import wire


class Ask(Protocol):
    """One question to the router, waited for (a REQ socket in a process's shell,
    ``bus.asking``; the router's core itself in the simulation): its answer, or None."""

    def __call__(self, msg: wire.Msg, timeout_ms: int = 2000) -> wire.Msg | None: ...


@dataclass(frozen=True)
class Snapshot:
    positions: list[wire.PositionSnapshot]
    last_fill_no: int
    working: list[wire.WorkingOrder]
    # (account, exchange, symbol, product) the broker did not confirm at the router's
    # start: left out of ``positions`` and of the fills a reader replays; nothing acts on
    # them (the reconciler reports them)
    unconfirmed: frozenset[tuple[str, ...]] = frozenset()
    # accounts whose position book the router has not read yet: their positions are
    # unconfirmed for now, not for the day (a restarted reader asks again)
    unread: frozenset[str] = frozenset()

    def confirmed(self, f: wire.Fill) -> bool:
        """A fill of a position the broker confirmed (one to replay)."""
        return (f.account, f.exchange, f.symbol, f.product) not in self.unconfirmed


@dataclass(frozen=True)
class Day:
    """Every order of the day (final or not, with the engine's links) and every fill up to
    a snapshot: what a restarted engine needs to finish the duties of the one that died."""

    orders: list[wire.WorkingOrder]
    fills: list[wire.Fill]


def fetch_fills(ask: Ask, upto: int, timeout_ms: int = 2000) -> list[wire.Fill] | None:
    """The day's fills numbered up to ``upto`` (a snapshot's), or None."""
    reply = ask(wire.BrokerQuery(kind="fills"), timeout_ms)
    if not isinstance(reply, wire.BrokerReply) or not reply.ok:
        return None
    return [f for f in reply.fills if f.fill_no <= upto]


def fetch_fills_since(ask: Ask, after: int, timeout_ms: int = 2000) -> list[wire.Fill] | None:
    """The router's fills numbered above ``after`` (those it still keeps), or None."""
    reply = ask(wire.BrokerQuery(kind="fills", since_fill_no=after), timeout_ms)
    if not isinstance(reply, wire.BrokerReply) or not reply.ok:
        return None
    return [f for f in reply.fills if f.fill_no > after]


class FillSequence:
    """The router numbers its fills 1, 2, 3... with no hole, so a reader that sees N + 2
    after N has missed one: a SUB that joined the router's publisher a moment after the
    snapshot it restored from (ZeroMQ attaches a new subscriber at the publisher's next
    send, not at once), or a frame dropped at a full queue. Before going on, the reader
    asks the router for what it missed and takes it in order, so a fill is never dropped
    (a fill at or below the last one taken is a republication: skipped).

    ``last`` is None until a snapshot or a first fill gives the base (with no snapshot a
    reader starts flat and cannot tell a hole from the day's earlier fills).

    A router that does not answer when a hole shows does not lose the hole's fills: the
    fill after it is taken, and the numbers still missing (``holes``) are asked again at
    the router's next heartbeat (``catch_up``), taken late rather than never."""

    def __init__(self, fetch: Callable[[int], list[wire.Fill] | None]) -> None:
        self._fetch = fetch
        self.last: int | None = None
        self.recovered = 0  # fills taken from the router after a hole
        self.lost = 0  # numbers missing now: in holes the router has not filled yet
        self.holes: set[int] = set()  # ... those it did not answer for: asked again

    def start_at(self, fill_no: int) -> None:
        self.last = fill_no

    def take(self, f: wire.Fill) -> tuple[list[wire.Fill], int]:
        """The fills to apply, in order (``f`` last, or none if already taken), and how
        many numbers before it could not be fetched."""
        last = self.last
        if last is not None and f.fill_no <= last:
            if f.fill_no in self.holes:  # a hole's fill after all (a router republishing)
                self.holes.discard(f.fill_no)
                self.lost -= 1
                return [f], 0
            return [], 0
        out: list[wire.Fill] = []
        missing = 0
        if last is not None and f.fill_no > last + 1:
            got = self._fetch(last)
            if got is not None:
                out = sorted(
                    (m for m in got if last < m.fill_no < f.fill_no), key=lambda m: m.fill_no
                )
            else:  # not answered: asked again at the router's next heartbeat
                self.holes.update(range(last + 1, f.fill_no))
            missing = f.fill_no - last - 1 - len(out)
            self.recovered += len(out)
            self.lost += missing
        out.append(f)
        self.last = f.fill_no
        return out, missing

    def catch_up(self, published: int) -> list[wire.Fill]:
        """The router says (its heartbeat, sent after its fills on the same socket) that
        every fill up to ``published`` is out: the holes it did not answer for before, and
        those above ``last``, were missed and are fetched, in order (a missed last fill of
        the day has no later one to show it). Empty when none was missed or the router did
        not answer (asked again at its next heartbeat)."""
        last = self.last
        behind = last is not None and published > last
        if last is None or not (behind or self.holes):
            return []
        got = self._fetch(min(self.holes) - 1 if self.holes else last)
        if got is None:
            return []
        late = sorted((m for m in got if m.fill_no in self.holes), key=lambda m: m.fill_no)
        self.recovered += len(late)
        self.lost -= len(late)  # answered: what it did not give is gone for good
        self.holes.clear()
        if not behind:
            return late
        out = sorted((m for m in got if last < m.fill_no <= published), key=lambda m: m.fill_no)
        self.recovered += len(out)
        self.lost += published - last - len(out)
        self.last = published
        return late + out


def fetch_day(ask: Ask, upto: int, timeout_ms: int = 2000) -> Day | None:
    """The day's orders and the fills numbered up to ``upto``, or None."""
    orders = ask(wire.BrokerQuery(kind="orders"), timeout_ms)
    if not isinstance(orders, wire.BrokerReply) or not orders.ok:
        return None
    fills = fetch_fills(ask, upto, timeout_ms)
    return None if fills is None else Day(orders.working, fills)


SNAPSHOT_TRIES = 5  # a starting reader asks this often before it starts without one
RESTORE_RETRY_S = 1.0  # a starting reader's question asked again this often
UNREAD_ALERT_AFTER = 30  # waits for an unread position book before it is an ALERT


@dataclass
class UnreadWait:
    """A starting reader (risk, the engine, the webhook daemon) waiting for the router to
    read an account's position book it could not read at its own start (an expired
    session, a broker down): until it has, that account's positions are unconfirmed *for
    now*, and a reader that restored without them would be blind to them for the day (the
    simulator's seed 991: the router restarted in an expired session, and a restarted risk
    left every position out of its books). The reader asks again every
    ``RESTORE_RETRY_S`` and runs nothing meanwhile; this counts the waits and says them: a
    warning at the first, an ALERT once after ``alert_after`` (a session needs a person to
    log in again)."""

    warn: Callable[..., None]
    alert: Callable[..., None]
    what: str  # what waits: "intents", "strategies", "webhook alerts"
    alert_after: int = UNREAD_ALERT_AFTER
    waits: int = 0
    tries: int = 0  # questions the router did not answer (``settled``)

    def wait(self, snap: Snapshot) -> None:
        self.waits += 1
        accounts = sorted(snap.unread)
        if self.waits == 1:
            self.warn(f"the router has not read these accounts' position books yet: "
                      f"{self.what} wait, asking again", accounts=accounts,
                      every_s=RESTORE_RETRY_S)  # fmt: skip
        elif self.waits == self.alert_after:
            self.alert(f"ALERT: these accounts' position books are still unread by the "
                       f"router: {self.what} wait (log in to the broker again, or take the "
                       "account out of the configuration)", accounts=accounts,
                       waited_s=self.waits * RESTORE_RETRY_S)  # fmt: skip

    def settled(self, snap: Snapshot | None) -> bool:
        """For a reader that starts flat when the router does not answer (the engine, the
        webhook daemon): whether to restore from ``snap`` now, which is None once the
        router has not answered ``SNAPSHOT_TRIES`` times (a lost answer had started every
        strategy flat while the router held their positions: the simulator's seed 610);
        False: ask again in ``RESTORE_RETRY_S``."""
        if snap is None and self.tries + 1 < SNAPSHOT_TRIES:
            self.tries += 1
            return False
        if snap is not None and snap.unread:
            self.wait(snap)
            return False
        self.done()
        return True

    def done(self) -> None:
        """Read at last: said when it was waited for."""
        if self.waits:
            self.warn(f"position books read by the router: {self.what} go on",
                      waited_s=self.waits * RESTORE_RETRY_S)  # fmt: skip


def fetch_snapshot(ask: Ask, timeout_ms: int = 2000, everything: bool = False) -> Snapshot | None:
    """The router's per-strategy positions, or None if it does not answer in time. Those
    the broker did not confirm at the router's start are left out (named in
    ``unconfirmed``) unless ``everything`` (the reconciler compares them)."""
    reply = ask(wire.BrokerQuery(kind="strategy_positions"), timeout_ms)
    if not isinstance(reply, wire.BrokerReply) or not reply.ok:
        return None
    unconfirmed = frozenset(tuple(k.split("|")) for k in reply.unconfirmed)
    positions = [
        p
        for p in reply.snapshots
        if p.quantity
        and (everything or (p.account, p.exchange, p.symbol, p.product) not in unconfirmed)
    ]
    return Snapshot(
        positions, reply.last_fill_no, reply.working, unconfirmed, frozenset(reply.unread)
    )
