"""The simulated account's books on disk, so the simulator remembers like a real broker.

A real broker still shows the day's orders, trades, positions and funds after our stack
(or its own server) restarts; a simulator that forgot them would have the reconciler
report a mismatch for every position of the first run. So the simulated exchange writes
each change to ``<state>/sim/books.jsonl`` as it happens and reads the file back at
start:

* ``day``: the simulated trading day the file belongs to, the account's capital at the
  start of that day, and the order and trade counters (ids never repeat);
* ``pos``: a position carried into the day (quantity and average price);
* ``order``: an order's whole state after a change (the last line of an id wins);
* ``trade``: one execution, in the order it happened (positions and realized P&L are
  rebuilt by replaying them, with the same ledger arithmetic as when they happened).

Each line is written and flushed before the answer that reports it leaves the server,
so a killed server loses nothing it told anyone about (the page cache outlives the
process; a power loss is not something a simulator needs to survive). A torn last line is
ignored. At start the file is compacted; on a later simulated day than the file's it
rolls like a broker's books do overnight: working orders and open positions carry over,
yesterday's realized P&L settles into the capital, the order and trade books start empty.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import structlog

from mytrading.domain.positions import Ledger

BOOKS_DIR = "sim"
BOOKS_FILE = "books.jsonl"
log = structlog.get_logger("simserver.books")


@dataclass
class Books:
    """What the file holds, replayed."""

    day: str
    capital: float
    order_seq: int = 0
    trade_seq: int = 0
    carried: list[dict[str, Any]] = field(default_factory=list)  # pos records
    # settled delivery shares (exchange, symbol, qty, avg): CNC buys move here at the
    # overnight roll (T+1), CNC sells of earlier days come out of them
    holdings: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # orderid -> last state
    trades: list[dict[str, Any]] = field(default_factory=list)


class BookStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / BOOKS_DIR / BOOKS_FILE
        self._fh: Any = None
        self.torn_lines = 0
        self.write_errors = 0
        self.set_aside: Path | None = None  # an unreadable file, kept under another name

    def read(self) -> Books | None:
        """The books in the file, or None when there is none (a fresh account)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        books: Books | None = None
        for line in raw.splitlines():
            try:
                rec = msgspec.json.decode(line)
            except msgspec.DecodeError:
                self.torn_lines += 1  # a write cut short by a crash: only ever the last
                continue
            kind = rec.pop("k", "")
            if kind == "day":
                books = Books(rec["day"], rec["capital"], rec["order_seq"], rec["trade_seq"])
            elif books is None:
                continue
            elif kind == "pos":
                books.carried.append(rec)
            elif kind == "hold":
                books.holdings.append(rec)
            elif kind == "order":
                books.orders[rec["orderid"]] = rec
            elif kind == "trade":
                books.trades.append(rec)
        if books is None and raw.strip():
            # Not ours to overwrite: keep it for a human, and start a fresh account.
            self.set_aside = self.path.with_name(f"{self.path.name}.unreadable-{os.getpid()}")
            os.replace(self.path, self.set_aside)
        return books

    def rewrite(self, books: Books) -> None:
        """Replace the file with ``books`` (atomically) and keep it open for appends."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        lines = [
            {
                "k": "day",
                "day": books.day,
                "capital": books.capital,
                "order_seq": books.order_seq,
                "trade_seq": books.trade_seq,
            }
        ]
        lines += [{"k": "pos", **p} for p in books.carried]
        lines += [{"k": "hold", **h} for h in books.holdings]
        lines += [{"k": "order", **o} for o in books.orders.values()]
        lines += [{"k": "trade", **t} for t in books.trades]
        with open(tmp, "wb") as fh:
            fh.write(b"".join(msgspec.json.encode(r) + b"\n" for r in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the server's life

    def order(self, row: dict[str, Any]) -> None:
        self._append({"k": "order", **row})

    def trade(self, row: dict[str, Any]) -> None:
        self._append({"k": "trade", **row})

    def _append(self, rec: dict[str, Any]) -> None:
        """One line, flushed. A failing write (a full disk) is logged and counted and the
        server goes on: the books in memory stay right and answer every request; only a
        restart would then forget that change."""
        if self._fh is None:
            return
        try:
            self._fh.write(msgspec.json.encode(rec) + b"\n")
            self._fh.flush()
        except (OSError, ValueError) as exc:  # ValueError: the file was closed under us
            self.write_errors += 1
            log.error(
                "books not written", path=str(self.path), error=str(exc), errors=self.write_errors
            )

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


def counters(b: Books) -> tuple[int, int]:
    """The highest order and trade numbers used so far (ids end in a running number:
    sandbox order ids in 8 digits, trade ids ``T<orderid>-<n>``), so none is reused."""
    orders = [int(oid[-8:]) for oid in b.orders if oid[-8:].isdigit()]
    trades = [
        int(t["tradeid"].rsplit("-", 1)[1])
        for t in b.trades
        if not t.get("settlement") and "-" in t["tradeid"]  # a settlement's id is not numbered
    ]
    return max([b.order_seq, *orders]), max([b.trade_seq, *trades])


def replay(b: Books, *ledgers: Ledger[Any]) -> None:
    """The day's positions into each ledger: those carried in, then every trade, with the
    arithmetic the trades had when they happened."""
    for ledger in ledgers:
        for p in b.carried:
            ledger.set_qty((p["exchange"], p["symbol"], p["product"]), p["qty"], p["avg"])
        for t in b.trades:
            signed = t["quantity"] if t["action"] == "BUY" else -t["quantity"]
            ledger.apply((t["exchange"], t["symbol"], t["product"]), signed, t["price"])


def rolled(b: Books, today: str) -> Books:
    """The books of ``b``'s day as a broker opens them on a later day: working orders and
    open F&O and intraday positions carried, the day's delivery (CNC) trades settled into
    the holdings (T+1), the realized P&L settled into the capital, no trades."""
    ledger: Ledger[tuple[str, str, str]] = Ledger()
    replay(b, ledger)
    order_seq, trade_seq = counters(b)
    held = {(h["exchange"], h["symbol"]): (h["qty"], h["avg"]) for h in b.holdings}
    for (ex, sym, prod), p in ledger.positions.items():
        if prod != "CNC" or not p.qty:
            continue
        q0, a0 = held.get((ex, sym), (0, 0.0))
        q = q0 + p.qty
        avg = (q0 * a0 + p.qty * p.avg) / q if p.qty > 0 and q else a0  # a sale keeps it
        held[(ex, sym)] = (q, avg)
    return Books(
        day=today,
        capital=b.capital + sum(p.realized for p in ledger.positions.values()),
        order_seq=order_seq,
        trade_seq=trade_seq,
        carried=[
            {"exchange": ex, "symbol": sym, "product": prod, "qty": p.qty, "avg": p.avg}
            for (ex, sym, prod), p in ledger.positions.items()
            if p.qty and prod != "CNC"
        ],
        holdings=[
            {"exchange": ex, "symbol": sym, "qty": q, "avg": round(a, 4)}
            for (ex, sym), (q, a) in sorted(held.items())
            if q > 0
        ],
        orders={
            oid: o for oid, o in b.orders.items() if o["status"] in ("open", "trigger pending")
        },
    )
