"""The router's write-ahead journal and its send queue, as units (the crash tests with
real processes are in test_journal_crash.py)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from mytrading.messaging import wire
from mytrading.router.journal import Journal, Record, read
from mytrading.router.throttle import Throttle
from tests.simhelpers import order

FUT = "NIFTY23NOV26FUT"


def fill(no: int, oid: str, qty: int, price: float) -> wire.Fill:
    return wire.Fill(
        fill_no=no,
        fill_id=f"{oid}-{qty}",
        order_id=oid,
        broker_order_id="b-" + oid,
        strategy="s",
        exchange="NFO",
        symbol=FUT,
        product="MIS",
        action="BUY",
        quantity=qty,
        price=price,
        exch_ns=1,
    )


def no_carry(rep: object) -> list[wire.PositionSnapshot]:
    raise AssertionError("same day: nothing is carried")


def test_replay_gives_each_order_its_last_state(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.bin")
    assert j.open("2026-11-20", no_carry).orders == {}
    j.append(Record("order", 1, order_id="a", state="new", order=order("a", 65)), sync=False)
    j.append(Record("order", 2, order_id="a", state="sent", attempt=1, sent_ns=5))
    j.append(Record("order", 3, order_id="a", state="open", broker_id="b-a", attempt=1))
    j.append(Record("fill", 4, order_id="a", fill=fill(1, "a", 65, 100.0)))
    j.append(Record("order", 5, order_id="a", state="complete", filled=65, avg=100.0))
    j.append(Record("order", 6, order_id="b", state="new", order=order("b", 130)))
    j.append(Record("order", 7, order_id="b", state="sent", attempt=1, sent_ns=9))
    j.close()
    rep = read(tmp_path / "j.bin")
    a, b = rep.orders["a"], rep.orders["b"]
    assert (a.state, a.broker_id, a.filled, a.avg, a.sent_ns, a.final) == (
        "complete",
        "b-a",
        65,
        100.0,
        5,
        True,
    )
    assert (b.state, b.broker_id, b.order.quantity, b.sent_ns, b.final) == (
        "sent",
        "",
        130,
        9,
        False,
    )
    assert [f.fill_no for f in rep.fills] == [1] and rep.torn_bytes == 0
    # Compaction at the next open keeps the same picture in fewer records.
    rep2 = Journal(tmp_path / "j.bin").open("2026-11-20", no_carry)
    assert {k: (v.state, v.broker_id, v.sent_ns) for k, v in rep2.orders.items()} == {
        "a": ("complete", "b-a", 5),
        "b": ("sent", "", 9),
    }
    assert rep2.last_fill_no == 1


def test_a_torn_last_record_is_cut_and_appending_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    j = Journal(path)
    j.open("2026-11-20", no_carry)
    j.append(Record("order", 1, order_id="a", state="new", order=order("a", 65)))
    j.append(Record("order", 2, order_id="a", state="sent", attempt=1))
    j.close()
    whole = path.read_bytes()
    for cut in (1, 5, 9, 20):  # a crash in the middle of the last write, at several places
        path.write_bytes(whole[:-cut])
        rep = read(path)
        assert rep.orders["a"].state == "new" and rep.torn_bytes > 0
    j = Journal(path)
    assert j.open("2026-11-20", no_carry).torn_bytes > 0
    j.append(Record("order", 3, order_id="a", state="rejected", reason="x"))
    j.close()
    rep = read(path)
    assert rep.orders["a"].state == "rejected" and rep.torn_bytes == 0


def test_a_flipped_bit_in_the_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    j = Journal(path)
    j.open("2026-11-20", no_carry)
    j.append(Record("order", 1, order_id="a", state="new", order=order("a", 65)))
    size = path.stat().st_size
    j.append(Record("order", 2, order_id="a", state="sent", attempt=1))
    j.close()
    data = bytearray(path.read_bytes())
    data[size + 12] ^= 0x40
    path.write_bytes(bytes(data))
    rep = read(path)
    assert rep.orders["a"].state == "new" and rep.torn_bytes == len(data) - size
    assert rep.damaged == []  # nothing good after it: a torn tail, not damage


def test_a_flipped_byte_mid_file_loses_one_record_and_keeps_the_rest(tmp_path: Path) -> None:
    """Resync on the next good frame: every record whose checksum holds is replayed; the
    order whose first record was lost survives as an orphan (its later changes), to be
    settled against the broker; the damaged file is kept aside, and the compacted file
    replays the same picture."""
    path = tmp_path / "j.bin"
    j = Journal(path)
    j.open("2026-11-20", no_carry)
    offsets = {}
    for k in "abcde":
        offsets[k] = path.stat().st_size
        j.append(Record("order", 1, order_id=k, state="new", order=order(k, 65)))
        j.append(Record("order", 2, order_id=k, state="sent", attempt=1, sent_ns=7))
        j.append(Record("order", 3, order_id=k, state="open", broker_id=f"b-{k}", attempt=1))
    j.append(Record("fill", 4, order_id="e", fill=fill(1, "e", 65, 101.0)))
    j.close()
    data = bytearray(path.read_bytes())
    data[offsets["b"] + 20] ^= 0xFF  # inside b's first record (its order)
    path.write_bytes(bytes(data))
    rep = read(path)
    assert sorted(rep.orders) == ["a", "c", "d", "e"]  # every other order, whole
    assert all(rep.orders[k].state == "open" for k in "acde")
    assert list(rep.orphans) == ["b"] and rep.orphans["b"].broker_id == "b-b"
    assert len(rep.damaged) == 1 and rep.damaged[0][0] == offsets["b"]
    assert rep.torn_bytes == 0 and [f.fill_no for f in rep.fills] == [1]
    rep2 = Journal(path).open("2026-11-20", no_carry)
    assert rep2.kept_at and Path(rep2.kept_at).read_bytes() == bytes(data)
    assert oct(Path(rep2.kept_at).stat().st_mode & 0o777) == "0o600"
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # compaction keeps it private
    rep3 = read(path)  # compacted: the same picture, the orphan kept for settling
    assert sorted(rep3.orders) == ["a", "c", "d", "e"] and list(rep3.orphans) == ["b"]
    assert rep3.damaged == []


def test_a_new_day_keeps_open_orders_and_carries_positions(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.bin")
    j.open("2026-11-19", no_carry)
    j.append(Record("order", 1, order_id="a", state="complete", order=order("a", 65), filled=65))
    j.append(Record("fill", 2, order_id="a", fill=fill(7, "a", 65, 100.0)))
    linked = msgspec.structs.replace(
        order("b", 65), link=wire.OrderLink(protective=True, oco="s.c")
    )  # the engine's links ride along
    j.append(Record("order", 3, order_id="b", state="open", order=linked, broker_id="x"))
    j.close()
    carried = wire.PositionSnapshot(
        strategy="s",
        exchange="NFO",
        symbol=FUT,
        product="MIS",
        quantity=65,
        avg_price=100.0,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        ltp=0.0,
    )
    seen = []

    def carry(rep: object) -> list[wire.PositionSnapshot]:
        seen.append(rep)
        return [carried]

    rep = Journal(tmp_path / "j.bin").open("2026-11-20", carry)
    assert list(rep.orders) == ["b"] and rep.fills == [] and rep.carried == [carried]
    assert rep.last_fill_no == 7 and rep.day == "2026-11-20" and len(seen) == 1
    again = read(tmp_path / "j.bin")  # what the rolled file says on its own
    assert list(again.orders) == ["b"] and again.carried == [carried] and again.last_fill_no == 7
    assert again.orders["b"].order.link == wire.OrderLink(protective=True, oco="s.c")


def test_appends_are_flushed_only_when_asked(tmp_path: Path, monkeypatch: object) -> None:
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd)))  # type: ignore[attr-defined]
    j = Journal(tmp_path / "j.bin")
    j.open("2026-11-20", no_carry)
    j.append(Record("order", 1, order_id="a", state="new", order=order("a", 65)), sync=False)
    assert calls == [] and j.dirty
    j.append(Record("order", 2, order_id="a", state="sent"))
    assert len(calls) == 1 and not j.dirty
    j.sync()
    assert len(calls) == 1  # nothing new to flush


def test_throttle_keeps_the_rate_and_puts_exits_first() -> None:
    t = Throttle({"order": 10.0, "smart": 1.0}, now=0.0)
    for i in range(12):
        t.push(f"e{i}", "order", exit_=False)
    t.push("x", "order", exit_=True)
    got = []
    while (item := t.pop_ready(0.0)) is not None:
        got.append(item.key)
    assert got == ["x", *[f"e{i}" for i in range(9)]]  # ten in the first second
    assert t.next_in(0.5) == 0.5 and t.pop_ready(0.99) is None  # never 11 in any second
    assert t.pop_ready(1.0).key == "e9"  # type: ignore[union-attr]
    t.pause("order", 1.0, 1.5)  # a 429 with retry_after 1.5
    assert t.pop_ready(2.0) is None and t.next_in(2.0) == 0.5
    assert t.pop_ready(2.5).key == "e10"  # type: ignore[union-attr]
    t.push("s1", "smart", exit_=False)
    t.push("s2", "smart", exit_=False)
    assert t.pop_ready(2.5).key == "e11" and t.pop_ready(2.5).key == "s1"  # type: ignore[union-attr]
    assert t.pop_ready(3.0) is None and t.pop_ready(3.5).key == "s2"  # type: ignore[union-attr]


def test_a_retry_waiting_for_its_backoff_does_not_hold_up_the_queue() -> None:
    t = Throttle({"order": 10.0}, now=0.0)
    t.push("late", "order", exit_=True, due=5.0)
    t.push("now", "order", exit_=False)
    assert t.pop_ready(0.0).key == "now"  # type: ignore[union-attr]
    assert t.pop_ready(1.0) is None and t.next_in(1.0) == 4.0
    assert t.pop_ready(5.0).key == "late"  # type: ignore[union-attr]
    assert t.next_in(5.0) is None


def test_a_batch_counts_from_when_its_last_request_went() -> None:
    t = Throttle({"order": 2.0}, now=0.0)
    for i in range(3):
        t.push(f"o{i}", "order", exit_=False)
    assert t.pop_ready(0.0).key == "o0" and t.pop_ready(0.0).key == "o1"  # type: ignore[union-attr]
    t.restamp("order", 2, 0.3)  # the two HTTP calls ended at 0.3 s
    assert t.pop_ready(1.0) is None and t.next_in(1.0) == pytest.approx(0.3)
    assert t.pop_ready(1.3).key == "o2"  # type: ignore[union-attr]
