"""The journal rolls to a new trading day while the router runs (``Journal.roll``), as a
start on that day would: a router up for weeks keeps a journal one day long."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from mytrading.router.journal import Journal, Record, day_start_ns, prune_aside, read
from mytrading.router.recovery import carried
from tests.router.test_journal import fill
from tests.simhelpers import order


def test_a_running_journal_rolls_to_the_next_day(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.bin")
    j.open("2026-12-18", carried)
    j.append(Record("order", 1, order_id="s.a", state="new", order=order("a", 65)))
    j.append(Record("order", 2, order_id="s.a", state="complete", broker_id="1", filled=65))
    j.append(Record("fill", 3, order_id="s.a", fill=fill(1, "s.a", 65, 100.0)))
    j.append(Record("order", 4, order_id="s.b", state="new", order=order("b", 130)))
    j.append(Record("order", 5, order_id="s.b", state="open", broker_id="2"))
    # the next day's first order, sent and filled before the roll came round to it
    new_day = day_start_ns("2026-12-21") + 30 * 10**9
    j.append(Record("order", 6, order_id="s.c", state="new", order=order("c", 65)))
    j.append(Record("order", 7, order_id="s.c", state="sent", sent_ns=new_day))
    j.append(Record("order", 8, order_id="s.c", state="complete", broker_id="3", filled=65))
    early = msgspec.structs.replace(fill(2, "s.c", 65, 99.0), exch_ns=new_day + 10**9)
    j.append(Record("fill", 9, order_id="s.c", fill=early))
    before = (tmp_path / "journal.bin").stat().st_size
    assert not j.roll("2026-12-18", carried)  # the same day: nothing to do
    assert j.roll("2026-12-21", carried)
    rep = read(tmp_path / "journal.bin")
    assert rep.day == "2026-12-21" and rep.fills == [early] and rep.base_fill_no == 2
    assert list(rep.orders) == ["s.b", "s.c"]  # the working order, and the new day's
    assert [(c.symbol, c.quantity) for c in rep.carried] == [(order("a", 65).symbol, 65)]
    # appends go on in the rolled file; a start the same day replays the same
    j.append(Record("fill", 10, order_id="s.b", fill=fill(3, "s.b", 130, 101.0)))
    j.close()
    rep = read(tmp_path / "journal.bin")
    assert [f.fill_no for f in rep.fills] == [2, 3] and rep.last_fill_no == 3
    assert (tmp_path / "journal.bin").stat().st_size < before + 400
    j2 = Journal(tmp_path / "journal.bin")
    again = j2.open("2026-12-21", carried)
    j2.close()
    assert again.day == "2026-12-21" and [c.quantity for c in again.carried] == [65]


def test_a_roll_keeps_the_orders_the_router_saw_finish_since_the_day_began(
    tmp_path: Path,
) -> None:
    """Handed over before the night, answered after the day began (a late broker at a
    demo's speed): the router names it in ``keep`` and the rolled file still has it."""
    j = Journal(tmp_path / "journal.bin")
    j.open("2026-12-18", carried)
    j.append(Record("order", 1, order_id="s.x", state="new", order=order("x", 65)))
    j.append(Record("order", 2, order_id="s.x", state="sent", sent_ns=1))
    j.append(Record("order", 3, order_id="s.x", state="complete", broker_id="9", filled=65))
    assert j.roll("2026-12-21", carried, keep={"s.x"})
    j.close()
    assert list(read(tmp_path / "journal.bin").orders) == ["s.x"]


def test_each_day_rolled_away_is_kept_whole_for_an_audit(tmp_path: Path) -> None:
    """What a roll drops from the journal (the day's finished orders and fills) is kept
    in ``journal.bin.day-<day>``, at a roll while running and at a start on a later day;
    the retention deletes such copies by age like the other kept-aside ones."""
    path = tmp_path / "journal.bin"
    j = Journal(path)
    j.open("2026-12-18", carried)
    j.append(Record("order", 1, order_id="s.a", state="new", order=order("a", 65)))
    j.append(Record("order", 2, order_id="s.a", state="complete", broker_id="1", filled=65))
    j.append(Record("fill", 3, order_id="s.a", fill=fill(1, "s.a", 65, 100.0)))
    assert j.roll("2026-12-21", carried)
    day = read(tmp_path / "journal.bin.day-2026-12-18")
    assert day.day == "2026-12-18" and list(day.orders) == ["s.a"]
    assert day.orders["s.a"].broker_id == "1" and [f.fill_no for f in day.fills] == [1]
    assert "s.a" not in read(path).orders  # gone from the running journal only
    j.append(Record("order", 4, order_id="s.b", state="new", order=order("b", 65)))
    j.append(Record("order", 5, order_id="s.b", state="rejected", broker_id="2"))
    j.close()
    # the router down over the night: its start on the 22nd keeps the 21st
    j2 = Journal(path)
    j2.open("2026-12-22", carried)
    j2.close()
    assert list(read(tmp_path / "journal.bin.day-2026-12-21").orders) == ["s.b"]
    assert oct((tmp_path / "journal.bin.day-2026-12-21").stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob("*.tmp"))
    old = tmp_path / "journal.bin.day-2026-12-18"
    os.utime(old, (0, 0))
    assert prune_aside(path, 30) == ["journal.bin.day-2026-12-18"]
    assert (tmp_path / "journal.bin.day-2026-12-21").exists()


def test_a_roll_the_disk_refuses_leaves_no_half_copy(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    j = Journal(path)
    j.open("2026-12-18", carried)
    j.append(Record("order", 1, order_id="s.a", state="new", order=order("a", 65)))
    (tmp_path / "journal.bin.day-2026-12-18.tmp").mkdir()  # the copy cannot be written
    try:
        j.roll("2026-12-21", carried)
    except OSError:
        pass
    else:
        raise AssertionError("the roll went on without its copy of the day")
    assert read(path).day == "2026-12-18" and "s.a" in read(path).orders  # not rolled
    assert not (tmp_path / "journal.bin.day-2026-12-18").exists()
    (tmp_path / "journal.bin.day-2026-12-18.tmp").rmdir()
    assert j.roll("2026-12-21", carried)  # the next try, the disk willing
    assert "s.a" in read(tmp_path / "journal.bin.day-2026-12-18").orders
    j.close()
