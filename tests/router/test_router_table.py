"""The router's two cores without a socket: the order table (journal first, then memory;
the broker-id index) and the books (positions, fill numbers, trade ids booked once)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from mytrading.messaging import wire
from mytrading.openalgo.broker import TradeEvent, broker_state
from mytrading.orders.state import IllegalMoveError, OrderState
from mytrading.orders.tracker import TrackedOrder
from mytrading.router.books import Books
from mytrading.router.journal import Journal, day_start_ns, read, rehearse
from mytrading.router.table import OrderTable
from tests.simhelpers import FUT, order

S = OrderState


def no_carry(rep: object) -> list[wire.PositionSnapshot]:
    raise AssertionError("same day: nothing is carried")


def table(path: Path) -> OrderTable:
    t = OrderTable(Journal(path))
    t.journal.open("2026-11-20", no_carry)
    return t


def sent(t: OrderTable, jo: TrackedOrder, broker_id: str) -> None:
    t.set(jo, S.SENT, attempt=1)
    t.at_broker(jo, broker_id)


def test_every_change_is_journaled_before_it_is_kept(tmp_path: Path) -> None:
    t = table(tmp_path / "j.bin")
    jo = t.add(order("a", 65))
    assert "s.a" in t and t.get("s.a") is jo and jo.state == "new"
    t.set(jo, S.SENT, attempt=1, sent_ns=7)
    t.at_broker(jo, "B1")
    t.report(jo, S.PARTIAL, 25, 100.0, "")
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
    t.set(went, S.SENT, attempt=1, sent_ns=7)
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
    sent(t, a, "B1")
    sent(t, b, "B1")  # another broker's id space: the same id is another order
    assert t.of_broker("main", "B1") is a and t.of_broker("second", "B1") is b
    assert t.working() == 2 and t.accounts_working() == {"main", "second"}
    t.report(a, S.COMPLETE, 65, 100.0, "")
    assert t.working() == 1 and t.accounts_working() == {"second"}
    assert t.get("s.a") is a  # still today's order, no longer working
    # ... and still found by its broker id for a while: a late update or fill finds it
    assert t.of_broker("main", "B1") is a
    t.journal.close()


def test_order_states_move_only_as_allowed(tmp_path: Path) -> None:
    """Our own code asking for a move no order can make is refused loudly; a broker's
    report of one is refused quietly (``report`` says False, nothing journaled)."""
    t = table(tmp_path / "j.bin")
    jo = t.add(order("a", 65))
    with pytest.raises(IllegalMoveError, match=r"s\.a: new cannot become open"):
        t.set(jo, S.OPEN)  # never sent: no broker can have opened it
    t.set(jo, S.SENT, attempt=1)
    t.at_broker(jo, "B1")
    assert t.report(jo, S.PARTIAL, 25, 100.0, "")
    assert t.report(jo, S.COMPLETE, 65, 100.0, "")
    appends = t.journal.appends
    assert not t.report(jo, S.OPEN, 65, 100.0, "")  # complete cannot reopen
    assert t.report(jo, S.COMPLETE, 65, 100.0, "")  # a repeat: nothing new to keep
    assert t.journal.appends == appends and jo.state == S.COMPLETE
    with pytest.raises(IllegalMoveError):
        t.set(jo, S.SENT)
    # a cancel that lost the race: the broker says complete after cancelled
    b = t.add(order("b", 65))
    t.set(b, S.SENT, attempt=1)
    t.at_broker(b, "B2")
    assert t.report(b, S.CANCELLED, 0, 0.0, "")
    assert t.report(b, S.COMPLETE, 65, 101.0, "") and t.of_broker("main", "B2") is b
    t.journal.close()
    assert read(tmp_path / "j.bin").orders["s.b"].state == S.COMPLETE


def test_a_broker_status_outside_openalgos_set_is_an_order_still_working() -> None:
    assert broker_state("validation pending", 0) == S.OPEN
    assert broker_state("open", 25) == S.PARTIAL and broker_state("open", 0) == S.OPEN
    assert broker_state("trigger pending", 0) == S.TRIGGER_PENDING
    assert broker_state("rejected", 0) == S.REJECTED
    assert OrderState.read("a newer release's state") == S.UNKNOWN  # never sent again


def test_an_amend_acts_only_on_a_working_order_of_its_own_account(tmp_path: Path) -> None:
    t = table(tmp_path / "j.bin")
    place = t.add(order("a", 65))
    assert t.target_of(place) == ""

    def cancel(oid: str, ref: str, account: str = "main") -> wire.Order:
        return msgspec.structs.replace(
            order(oid, 65), op="cancel", ref_order_id=ref, account=account
        )

    assert t.target_of(t.add(cancel("c1", "s.a"))) is None  # not at a broker yet
    sent(t, place, "B1")
    assert t.target_of(t.add(cancel("c2", "s.a"))) == "B1"
    assert t.target_of(t.add(cancel("c3", "s.a", "second"))) is None  # its id means nothing there
    assert t.target_of(t.add(cancel("c4", "s.nope"))) is None
    t.report(place, S.CANCELLED, 0, 0.0, "")
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


def test_a_new_day_drops_the_finished_orders_and_keeps_the_working(tmp_path: Path) -> None:
    t = table(tmp_path / "j.bin")
    a, b = t.add(order("a", 65)), t.add(order("b", 130))
    sent(t, a, "B1")
    sent(t, b, "B2")
    t.report(a, S.COMPLETE, 65, 100.0, "")
    # the new day's first order went out and filled before the roll (a soak found the
    # router dropping it: an order at the broker that no journal knew)
    since = day_start_ns("2026-12-21")
    c = t.add(order("c", 65))
    t.set(c, S.SENT, attempt=1, sent_ns=since + 60 * 10**9)
    t.at_broker(c, "B3")
    t.report(c, S.COMPLETE, 65, 100.0, "")
    # ... and one handed over before the night whose answer came after the day began (a
    # late broker at a demo's speed): the broker's book of the new day shows it
    now = [since - 10**9]
    t.market_ns = lambda: now[0]
    d = t.add(order("d", 65))
    t.set(d, S.SENT, attempt=1, sent_ns=since - 10**9)
    now[0] = since + 5 * 10**9
    t.at_broker(d, "B4")
    t.report(d, S.COMPLETE, 65, 100.0, "")
    assert d.done_ns == since + 5 * 10**9
    assert t.of_today(since) == {"s.c", "s.d"}
    assert t.roll(since) == 1
    assert t.get("s.a") is None and t.get("s.b") is b and t.get("s.c") is c
    assert t.get("s.d") is d
    assert t.of_broker("main", "B1") is None and t.of_broker("main", "B2") is b
    assert t.of_broker("main", "B3") is c  # a late update for it is still booked
    t.journal.close()


def test_a_positions_average_is_sent_unrounded() -> None:
    """A restarted risk, engine or signals daemon computes P&L from the snapshot's average:
    rounded to paise, 101 shares bought at three prices restarted 5 paise off the broker's
    cost (the simulator's seed 481)."""
    from mytrading.domain.positions import Ledger
    from mytrading.router.books import snapshots

    ledger: Ledger[tuple[str, str, str, str, str]] = Ledger()
    key = ("equity_momentum", "NSE", "HDFCBANK", "MIS", "main")
    for qty, price in ((50, 989.6), (30, 989.7), (21, 989.75)):
        ledger.apply(key, qty, price)
    (snap,) = snapshots(ledger)
    assert snap.avg_price == ledger.positions[key].avg != round(snap.avg_price, 2)
    assert snap.quantity * snap.avg_price == pytest.approx(50 * 989.6 + 30 * 989.7 + 21 * 989.75)


def test_a_rehearsal_frames_the_sent_record_and_writes_nothing(tmp_path: Path) -> None:
    """``journal.rehearse`` (the router's, while no order comes) does the encoding work of
    an order's ``sent`` record, the same bytes long, and leaves the journal as it was."""
    path = tmp_path / "j.bin"
    t = table(path)
    jo = t.add(order("a", 65))
    before = path.stat().st_size
    t.set(jo, S.SENT, attempt=1, sent_ns=5)
    written, appends = path.stat().st_size, t.journal.appends
    assert rehearse(jo) == written - before > 0
    assert path.stat().st_size == written and t.journal.appends == appends
    assert [r.state for r in read(path).orders.values()] == ["sent"]
