"""The router's two cores without a socket: the order table (journal first, then memory;
the broker-id index) and the books (positions, fill numbers, trade ids booked once)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from mytrading import wire
from mytrading.openalgo.broker import TradeEvent
from mytrading.router.books import Books
from mytrading.router.journal import Journal, read
from mytrading.router.table import OrderTable
from tests.simhelpers import FUT, order


def no_carry(rep: object) -> list[wire.PositionSnapshot]:
    raise AssertionError("same day: nothing is carried")


def table(path: Path) -> OrderTable:
    t = OrderTable(Journal(path))
    t.journal.open("2026-11-20", no_carry)
    return t


def test_every_change_is_journaled_before_it_is_kept(tmp_path: Path) -> None:
    t = table(tmp_path / "j.bin")
    jo = t.add(order("a", 65))
    assert "s.a" in t and t.get("s.a") is jo and jo.state == "new"
    t.set(jo, "sent", attempt=1, sent_ns=7)
    t.at_broker(jo, "B1")
    t.changed(jo, "partial", 25, 100.0, "")
    t.journal.close()
    replayed = read(tmp_path / "j.bin").orders["s.a"]
    assert (replayed.state, replayed.broker_id, replayed.filled, replayed.sent_ns) == (
        "partial",
        "B1",
        25,
        7,
    )
    assert replayed.order == order("a", 65)  # the first record holds the whole order


def test_a_read_is_journaled_at_its_end_the_sent_with_their_order_the_rest_as_new(
    tmp_path: Path,
) -> None:
    """An order read off the pipe costs no write of its own: the one that goes has one
    record (its ``sent``, with the whole order); the ones that wait are journaled ``new``
    together at the end of the read, and a restart refuses them (never sent)."""
    t = table(tmp_path / "j.bin")
    went, waits = t.add(order("a", 65)), t.add(order("b", 130))
    assert t.journal.appends == 0  # nothing written while the read goes on
    t.set(went, "sent", attempt=1, sent_ns=7)
    t.journal_unsent()
    assert t.journal.appends == 2  # the sent one, then every waiting one in one write
    t.journal_unsent()
    assert t.journal.appends == 2  # nothing left to journal
    t.journal.close()
    rep = read(tmp_path / "j.bin").orders
    assert (rep["s.a"].state, rep["s.a"].order, rep["s.a"].sent_ns) == ("sent", order("a", 65), 7)
    assert (rep["s.b"].state, rep["s.b"].order) == ("new", order("b", 130))
    assert waits.state == "new"


def test_broker_ids_find_orders_per_account_until_they_are_final(tmp_path: Path) -> None:
    t = table(tmp_path / "j.bin")
    a = t.add(order("a", 65))
    b = t.add(msgspec.structs.replace(order("b", 65), account="second"))
    t.at_broker(a, "B1")
    t.at_broker(b, "B1")  # another broker's id space: the same id is another order
    assert t.of_broker("main", "B1") is a and t.of_broker("second", "B1") is b
    assert t.working() == 2 and t.accounts_working() == {"main", "second"}
    t.changed(a, "complete", 65, 100.0, "")
    assert t.of_broker("main", "B1") is None and t.working() == 1
    assert t.get("s.a") is a  # still today's order, just no longer indexed
    t.journal.close()


def test_an_amend_acts_only_on_a_working_order_of_its_own_account(tmp_path: Path) -> None:
    t = table(tmp_path / "j.bin")
    place = t.add(order("a", 65))
    assert t.target_of(place) == ""

    def cancel(oid: str, ref: str, account: str = "main") -> wire.Order:
        return msgspec.structs.replace(
            order(oid, 65), op="cancel", ref_order_id=ref, account=account
        )

    assert t.target_of(t.add(cancel("c1", "s.a"))) is None  # not at a broker yet
    t.at_broker(place, "B1")
    assert t.target_of(t.add(cancel("c2", "s.a"))) == "B1"
    assert t.target_of(t.add(cancel("c3", "s.a", "second"))) is None  # its id means nothing there
    assert t.target_of(t.add(cancel("c4", "s.nope"))) is None
    t.changed(place, "cancelled", 0, 0.0, "")
    assert t.target_of(t.add(cancel("c5", "s.a"))) is None  # final
    t.journal.close()


def test_books_number_fills_book_each_trade_once_and_watch_new_symbols() -> None:
    watched: list[tuple[str, str]] = []
    books = Books(lambda ex, sym: watched.append((ex, sym)))
    o = order("a", 130)
    first = books.next_fill(o, TradeEvent("B1", "T1", 65, 100.0, 1))
    books.book(first)
    second = books.next_fill(o, TradeEvent("B1", "T2", 65, 102.0, 2))
    books.book(second)
    assert (first.fill_no, second.fill_no) == (1, 2)
    assert books.seen("main", "T1") and not books.seen("second", "T1")
    assert watched == [("NFO", FUT)]  # once, when first held
    books.mark(
        wire.Tick(
            exchange="NFO",
            symbol=FUT,
            ltp=110.0,
            bid=110.0,
            ask=110.0,
            bid_qty=0,
            ask_qty=0,
            volume=0,
        )
    )
    (snap,) = books.snapshots()
    assert (snap.quantity, snap.avg_price, snap.unrealized_pnl) == (130, 101.0, 1170.0)
    assert books.net_by_account() == {("main", "NFO", FUT, "NRML"): 130}
    assert [f.fill_no for f in books.since(1)] == [2]
