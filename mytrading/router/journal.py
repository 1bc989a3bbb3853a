"""The router's write-ahead order journal.

Every order is written here, and flushed to the disk, before the broker hears of it; every
change of its state and every fill is written before anyone else hears of it. After a
crash the router replays the file and knows, for each order, the last thing it was sure
of. OpenAlgo orders carry no client id, so this file is the only memory of what the
stack may have sent (docs/openalgo.md §2).

Format: a sequence of frames ``<u32 length><u32 crc32><msgpack record>``. A crash in the
middle of a write leaves a torn last frame: bytes at the end with no good frame after
them, cut before anything new is appended. Damage anywhere else (a flipped byte, a bad
sector) is not the end of the file: replay resynchronises on the next offset where a
whole frame's length, checksum and record hold, and goes on, so one bad frame costs one
record, not every record after it. The damaged file is kept aside, the lost byte ranges
are reported, and the router settles what it can no longer account for against the
broker's books (``router/recovery.py``). Each append is one ``write`` and one
``fdatasync`` (about 0.2 ms here), so several records written together cost one flush.

A disk that refuses a write (full, read-only, failing) does not lose what the router
knows: the records it refused stay in memory, after the last bytes known good, and are
written again in order once it accepts them (``recover``); meanwhile ``fault`` says why,
and the router sends nothing (``router/daemon.py``): an order is never sent unjournaled.

At start the router compacts the file: each order once with its latest state, and the
fills. On the first start of a new trading day it keeps only the orders not yet final and
turns yesterday's fills into the positions carried into the day, so the journal stays
bounded. The new file is renamed over the old one: a crash leaves one or the other.
Before a day is rolled away (at a start or while the router runs) the file as it stands
is copied to ``journal.bin.day-<that day>``: every order and fill of the day, for an
audit or a dispute, kept for ``MT_JOURNAL_ASIDE_KEEP_DAYS`` like the other copies
(``prune_aside``; ``read`` takes them as it takes the journal).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import errno
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Literal

import msgspec

from mytrading import hosttime
from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.orders.state import OrderState
from mytrading.orders.tracker import TrackedOrder

VERSION = 1  # the journal's layout this release writes (``Record.version``)
HEADER = struct.Struct("<II")
MAX_RECORD = 1 << 20


# Record's default average price. msgspec leaves a field out when its value *is* the
# default object (identity, not equality, for a float): a zero average written as this very
# object is left out, as it was before ``TrackedOrder`` (whose own 0.0 is another object)
# moved to ``orders/tracker.py``; 13 bytes a record on a nearly full disk.
NO_AVG = 0.0


class Record(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """One journal entry: an order's state change, a fill, or a carried position."""

    kind: Literal["order", "fill", "carry", "day"]
    ts_ns: int
    order_id: str = ""
    state: str = ""
    order: wire.Order | None = None  # on the first record of an order
    broker_id: str = ""
    filled: int = 0
    avg: float = NO_AVG
    reason: str = ""
    attempt: int = 0
    sent_ns: int = 0  # wall time the order was handed to the broker
    fill: wire.Fill | None = None
    carry: wire.PositionSnapshot | None = None
    day: str = ""  # kind "day": the trading date (ISO) the file belongs to
    fill_no: int = 0  # kind "day": the last fill number of earlier days (numbers never restart)
    # kind "day": each account's identity (venue.Route.identity) its records belong to
    accounts: dict[str, str] = msgspec.field(default_factory=dict)
    # kind "day": the file's layout (``VERSION``); 0 in files written before versions (1)
    version: int = 0


@dataclass
class Replay:
    orders: dict[str, TrackedOrder] = field(default_factory=dict)
    fills: list[wire.Fill] = field(default_factory=list)
    carried: list[wire.PositionSnapshot] = field(default_factory=list)
    records: int = 0
    torn_bytes: int = 0  # bytes after the last good frame (a write cut by a crash)
    good_bytes: int = 0
    day: str = ""
    base_fill_no: int = 0
    # byte ranges that held no good frame, with good frames after them (not a torn tail)
    damaged: list[tuple[int, int]] = field(default_factory=list)
    kept_at: str = ""  # where the damaged file was copied before compaction
    # changes of orders whose first record (the order itself) was lost: by order id, the
    # latest state, broker id and fills they say; settled against the broker's books
    orphans: dict[str, TrackedOrder] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # identities the file was kept for
    new_file: bool = False  # there was no journal: a venue with no state here yet
    # accounts whose records were not restored because the account is another one now:
    # account -> "was <identity>, now <identity>"
    set_aside: dict[str, str] = field(default_factory=dict)
    version: int = VERSION  # the layout the file was written in

    @property
    def damaged_bytes(self) -> int:
        return sum(b - a for a, b in self.damaged)

    @property
    def last_fill_no(self) -> int:
        return max([self.base_fill_no, *(f.fill_no for f in self.fills)])

    def apply(self, r: Record) -> None:
        self.records += 1
        if r.kind == "day":
            self.day, self.base_fill_no, self.accounts = r.day, r.fill_no, dict(r.accounts)
            self.version = r.version or 1
            return
        if r.kind == "fill" and r.fill is not None:
            self.fills.append(r.fill)
            return
        if r.kind == "carry" and r.carry is not None:
            self.carried.append(r.carry)
            return
        jo = self.orders.get(r.order_id)
        if jo is None:
            if r.order is None:
                # Its first record is gone (damage): keep what the change says, to settle
                # against the broker. (A compaction writes every order whole.)
                jo = self.orphans.get(r.order_id)
                if jo is None:
                    jo = self.orphans[r.order_id] = TrackedOrder(_ORPHAN, OrderState.read(r.state))
            else:
                jo = self.orders[r.order_id] = TrackedOrder(r.order, OrderState.read(r.state))
                self.orphans.pop(r.order_id, None)
        elif r.order is not None:
            jo.order = r.order  # a modify changed its price or quantity
        jo.state = OrderState.read(r.state)
        jo.broker_id = r.broker_id or jo.broker_id
        jo.filled = max(jo.filled, r.filled)
        jo.avg = r.avg or jo.avg
        jo.reason = r.reason or jo.reason
        jo.attempt = max(jo.attempt, r.attempt)
        jo.sent_ns = r.sent_ns or jo.sent_ns


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Record)
# The stand-in order of an orphan (its real one was in a lost record): never sent.
_ORPHAN = wire.Order(
    order_id="",
    intent_id="",
    strategy="",
    exchange="",
    symbol="",
    action="BUY",
    quantity=0,
    pricetype="MARKET",
    product="MIS",
    price=0.0,
    trigger_price=0.0,
    approved_by="",
)


def rehearse(jo: TrackedOrder) -> int:
    """The bytes an order's ``sent`` record would take, worked out as ``append`` would
    (the record, its encoding, its frame) and written nowhere: the router runs it while no
    order comes, so the next order's journal write finds that code warm (on this VM a
    ``sent`` record's write took 62 us after 100 ms without orders, 44-54 us so rehearsed)."""
    return len(frame(order_record(jo.order.order_id, jo, jo.order, hosttime.time_ns())))


def frame(r: Record) -> bytes:
    body = _enc.encode(r)
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def _frame_at(data: bytes, pos: int) -> tuple[Record, int] | None:
    """The record of a whole, good frame at ``pos`` and the offset after it, or None."""
    if pos + HEADER.size > len(data):
        return None
    size, crc = HEADER.unpack_from(data, pos)
    end = pos + HEADER.size + size
    if size > MAX_RECORD or end > len(data):
        return None
    body = data[pos + HEADER.size : end]
    if zlib.crc32(body) != crc:
        return None
    try:
        return _dec.decode(body), end
    except msgspec.DecodeError:
        return None


def read(path: Path) -> Replay:
    """Replay a journal file; a missing file is an empty journal. A bad frame is skipped
    by resynchronising on the next good one (``damaged``); bad bytes with no good frame
    after them are a torn tail (``torn_bytes``)."""
    rep = Replay()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        rep.new_file = True
        return rep
    pos = good_end = 0
    bad_from: int | None = None
    while pos + HEADER.size <= len(data):
        got = _frame_at(data, pos)
        if got is None:
            if bad_from is None:
                bad_from = pos
            pos += 1
            continue
        if bad_from is not None:
            rep.damaged.append((bad_from, pos))
            bad_from = None
        rec, pos = got
        rep.apply(rec)
        good_end = pos
    rep.good_bytes = good_end
    rep.torn_bytes = len(data) - good_end
    return rep


class Journal:
    """Append-only, flushed on every append (``fsync=False`` only for benchmarks of the
    rest of the path).

    Every byte written since the last good flush is also kept here (``_tail``), so that a
    write or flush the disk refuses (``ENOSPC``, ``EROFS``, ``EIO``) costs nothing: the
    file is cut back to its last flushed size and the tail written again by ``recover``.
    While ``fault`` is set, appends only join the tail: no write is tried until
    ``recover`` succeeds, so the file never holds a record after a gap."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self.appends = 0
        self.dirty = False
        self.flush_us: collections.deque[float] = collections.deque(maxlen=4096)  # fdatasync
        self.last_flush_us = 0.0  # the latest sync's fdatasync (0.0: nothing to flush)
        self.fault = ""  # why the disk refused the latest write or flush ("": it did not)
        self.fault_since = 0.0  # wall time of the fault's first refusal (0.0: none)
        self.faults = 0  # how many times it has refused
        self._fd = -1
        self._tail: list[bytes] = []  # written (or refused) since the last good flush
        self._tail_bytes = 0
        self._flushed_size = 0  # the file's size at the last good flush
        # the disk's write: ``os.write``, or a simulated disk that fills (simulation)
        self.write: Callable[[int, bytes], int] = os.write

    @property
    def held_bytes(self) -> int:
        """Bytes kept in memory that the disk does not hold yet (while ``fault``)."""
        return self._tail_bytes if self.fault else 0

    def open(
        self,
        today: str,
        carry: Callable[[Replay], list[wire.PositionSnapshot]],
        accounts: dict[str, str] | None = None,
    ) -> Replay:
        """Replay the file, cut a torn tail, compact (rolling to ``today`` if the file is
        from an earlier day: ``carry`` turns its replay into the positions carried), and
        open it for appending. Returns the replay as compacted.

        ``accounts``: each account's identity now (``venue.Route.identity``). Records of an
        account the file was kept for under another identity (another broker account,
        another host) are not restored: they belong to a venue this is not. The file is
        kept aside whole for a human either way."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rep = read(self.path)
        if rep.version > VERSION:
            from mytrading.stores.schema import SchemaError

            raise SchemaError(
                f"{self.path} was written by a newer release (journal layout {rep.version}; "
                f"this one reads up to {VERSION}): upgrade mytrading, or restore a backup"
            )
        if rep.damaged:  # kept as it was, for a human, before compaction rewrites it
            rep.kept_at = self._keep_aside("damaged")
        if accounts is not None:
            changed = {
                a: f"was {was}, now {accounts[a]}"
                for a, was in rep.accounts.items()
                if a in accounts and was != accounts[a]
            }
            if changed:
                aside = self._keep_aside("accounts")
                _drop_accounts(rep, set(changed))
                rep.set_aside = {
                    a: f"{why} (records kept in {aside})" for a, why in changed.items()
                }
            rep.accounts = {**rep.accounts, **accounts}
        if rep.day and rep.day != today:
            self._keep_day(rep.day)
            rep = _rolled(rep, today, carry)
        rep.day = today
        self._compact(rep)
        self._reopen()
        return rep

    def _reopen(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._flushed_size = os.fstat(self._fd).st_size

    def roll(
        self,
        today: str,
        carry: Callable[[Replay], list[wire.PositionSnapshot]],
        keep: frozenset[str] | set[str] = frozenset(),
    ) -> bool:
        """A new trading day while the router runs: the file rewritten as a start on
        ``today`` would rewrite it (the orders still working, the positions carried), so
        that weeks without a restart stay one day long. False (nothing done) while the
        disk refuses writes, or when the file is already of ``today``; ``OSError`` when the
        rewrite fails (the old file stands and is appended to as before)."""
        if self.fault:
            return False
        self.sync()
        if self.fault:
            return False
        rep = read(self.path)
        if rep.day == today or rep.damaged:
            return False  # a damaged file is for a start's recovery to settle, not this
        rolled = _rolled(rep, today, carry, keep)
        if rep.day:
            self._keep_day(rep.day)  # OSError: not rolled; tried again (the old file stands)
        self._compact(rolled)  # OSError: the old file stands, appends go on after it
        os.close(self._fd)
        self._reopen()
        return True

    def _keep_day(self, day: str) -> str:
        """The whole file of ``day`` as it stands, kept before the roll rewrites it (a
        second roll of the same day, after a restart that found it unrolled, gets its own
        name: neither copy is lost)."""
        aside = self.path.with_name(f"{self.path.name}.day-{day}")
        if aside.exists():
            aside = aside.with_name(f"{aside.name}-{hosttime.now(IST).strftime('%H%M%S')}")
        tmp = aside.with_name(aside.name + ".tmp")
        try:
            shutil.copyfile(self.path, tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, aside)  # never a half copy under the day's name
        except OSError:
            with contextlib.suppress(OSError):  # a full disk: nothing half-written is left
                tmp.unlink(missing_ok=True)
            raise
        return str(aside)

    def _keep_aside(self, why: str) -> str:
        aside = self.path.with_name(
            f"{self.path.name}.{why}-{hosttime.now(IST).strftime('%Y%m%dT%H%M%S')}"
        )
        shutil.copy2(self.path, aside)
        os.chmod(aside, 0o600)
        return str(aside)

    def _compact(self, rep: Replay) -> None:
        tmp = self.path.with_suffix(".compact")
        records = [
            Record(
                "day", 0, day=rep.day, fill_no=rep.base_fill_no, accounts=rep.accounts,
                version=VERSION,
            )
        ]  # fmt: skip
        records += [Record("carry", 0, carry=c) for c in rep.carried]
        # each order whole; an orphan (its first record lost) as a change, until settled
        records += [order_record(oid, jo, jo.order) for oid, jo in rep.orders.items()]
        records += [order_record(oid, jo, None) for oid, jo in rep.orphans.items()]
        records += [Record("fill", 0, order_id=f.order_id, fill=f) for f in rep.fills]
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(b"".join(frame(r) for r in records))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            tmp.unlink(missing_ok=True)  # the old file stands; nothing half-written is left
            raise
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def append(self, *records: Record, sync: bool = True) -> None:
        """Write the records in one go; with ``sync`` (the default) they are on the disk
        when this returns, unless ``fault`` is set after it: then they are held in memory
        (``recover``). Unsynced records survive a crash of the process (they are in the page
        cache), not of the machine; the next synced append covers them too."""
        data = b"".join(frame(r) for r in records)
        self.appends += 1
        self._tail.append(data)
        self._tail_bytes += len(data)
        if self.fault:
            return
        try:
            if self.write(self._fd, data) < len(data):  # a short write: the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            self._refused("write", exc)
            return
        self.dirty = True
        if sync:
            self.sync()

    def sync(self) -> None:
        self.last_flush_us = 0.0
        if self.fault:
            return
        if self.dirty and self.fsync:
            t0 = hosttime.perf_counter_ns()
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                self._refused("flush", exc)
                return
            self.last_flush_us = (hosttime.perf_counter_ns() - t0) / 1000
            self.flush_us.append(self.last_flush_us)
        self.dirty = False
        self._flushed_size += self._tail_bytes
        self._tail.clear()
        self._tail_bytes = 0

    def _refused(self, what: str, exc: OSError) -> None:
        if not self.fault:
            self.fault_since = hosttime.time()
        self.fault = f"journal {what} refused: {exc.strerror or exc} ({self.path})"
        self.faults += 1
        self.dirty = False

    def recover(self) -> bool:
        """After a refusal: cut the file back to its last good flush, write what was held
        and flush it. True when the disk took it all (``fault`` is then cleared)."""
        if not self.fault:
            return True
        try:
            os.ftruncate(self._fd, self._flushed_size)
            data = b"".join(self._tail)
            written = 0
            while written < len(data):  # O_APPEND: each write goes at the end
                written += self.write(self._fd, data[written:])
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError:
            return False
        self.fault, self.fault_since = "", 0.0
        self._flushed_size += self._tail_bytes
        self._tail.clear()
        self._tail_bytes = 0
        return True

    def close(self) -> None:
        if self._fd >= 0:
            if self.fault:
                self.recover()  # a last try: what it could not write, recovery reads back
            os.close(self._fd)
            self._fd = -1


def prune_aside(path: Path, keep_days: float) -> list[str]:
    """Retention: copies of ``path`` kept aside for a human (``.damaged-<time>``,
    ``.accounts-<time>``, each day's ``.day-<day>``) older than ``keep_days`` are
    deleted; their names."""
    cutoff = hosttime.time() - keep_days * 86400
    gone: list[str] = []
    for f in path.parent.glob(path.name + ".*-*"):
        try:
            if f.stat().st_mtime < cutoff:
                f.unlink()
                gone.append(f.name)
        except OSError:
            continue
    return sorted(gone)


def _rolled(
    rep: Replay,
    today: str,
    carry: Callable[[Replay], list[wire.PositionSnapshot]],
    keep: frozenset[str] | set[str] = frozenset(),
) -> Replay:
    """``rep`` of an earlier day as ``today`` begins: the positions the earlier day ends
    with carried, the orders not final kept, fill numbers going on. What already belongs
    to ``today`` (a router that sent the day's first orders before it rolled, or died
    between those and the roll) stays as it is: its orders, final or not, and its fills,
    by the market time they were sent and traded, and the orders named in ``keep`` (those
    the running router saw finish since the day began)."""
    since = day_start_ns(today)
    earlier = copy.copy(rep)
    earlier.fills = [f for f in rep.fills if f.exch_ns < since]
    rolled = Replay(
        day=today,
        carried=carry(earlier),
        torn_bytes=rep.torn_bytes,
        base_fill_no=rep.last_fill_no,
        damaged=rep.damaged,
        kept_at=rep.kept_at,
        orphans=rep.orphans,
        accounts=rep.accounts,
        set_aside=rep.set_aside,
    )
    rolled.orders = {
        k: v for k, v in rep.orders.items() if not v.final or v.sent_ns >= since or k in keep
    }
    rolled.fills = [f for f in rep.fills if f.exch_ns >= since]
    return rolled


def day_start_ns(day: str) -> int:
    """Midnight IST of ``day`` (YYYY-MM-DD) in market-clock ns: what is of that day."""
    return int(datetime.combine(date.fromisoformat(day), dtime(0), IST).timestamp()) * 10**9


def _drop_accounts(rep: Replay, accounts: set[str]) -> None:
    """Leave the records of ``accounts`` out of the replay (fill numbers go on from the
    highest one the file held: readers skip numbers they have seen)."""
    rep.base_fill_no = rep.last_fill_no
    rep.orders = {k: v for k, v in rep.orders.items() if v.order.account not in accounts}
    rep.fills = [f for f in rep.fills if f.account not in accounts]
    rep.carried = [c for c in rep.carried if c.account not in accounts]


def order_record(
    order_id: str, jo: TrackedOrder, order: wire.Order | None, ts_ns: int = 0
) -> Record:
    """A record of all the journal knows of an order now (the order itself too, unless
    ``order`` is None: a change of it)."""
    return Record(
        "order",
        ts_ns,
        order_id=order_id,
        state=jo.state.value,
        order=order,
        broker_id=jo.broker_id,
        filled=jo.filled,
        avg=jo.avg or NO_AVG,
        reason=jo.reason,
        attempt=jo.attempt,
        sent_ns=jo.sent_ns,
    )
