"""The soak's order check can fail: a broker order no journal accounts for is a
duplicate, a broker id the journal holds that the broker does not is lost, an order still
unknown is pending with the row its adoption will take; orders of the day a roll took out
of the running journal are read from its copy of that day."""

from __future__ import annotations

import importlib.util
import json
from datetime import date
from pathlib import Path
from types import ModuleType, SimpleNamespace

from mytrading.router.journal import Journal, Record, day_start_ns
from mytrading.router.recovery import carried
from mytrading.settings import PROJECT_ROOT
from tests.simhelpers import FUT, order


def soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", PROJECT_ROOT / "bench" / "soak.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def broker_row(oid: str, qty: int) -> str:
    return json.dumps({"k": "order", "orderid": oid, "symbol": FUT, "action": "BUY",
                       "quantity": qty, "status": "complete"})  # fmt: skip


def test_the_check_finds_duplicates_losses_and_pending(tmp_path: Path) -> None:
    s = SimpleNamespace(state_dir=tmp_path)
    (tmp_path / "sim").mkdir()
    day = date(2026, 12, 21)
    at = day_start_ns("2026-12-21") + 10 * 3600 * 10**9
    j = Journal(tmp_path / "venues" / "v" / "router" / "journal.bin")
    j.open("2026-12-18", carried)
    j.append(Record("order", 1, order_id="s.old", state="new", order=order("old", 65)))
    j.append(Record("order", 2, order_id="s.old", state="complete", broker_id="26121800000001"))
    assert j.roll("2026-12-21", carried)
    for n, (oid, qty) in enumerate((("a", 65), ("b", 130), ("c", 195), ("u", 260)), start=3):
        j.append(Record("order", n, order_id=f"s.{oid}", state="new", order=order(oid, qty)))
        j.append(Record("order", n + 10, order_id=f"s.{oid}", state="sent", sent_ns=at))
    j.append(Record("order", 30, order_id="s.a", state="complete", broker_id="26122100000001"))
    j.append(Record("order", 31, order_id="s.b", state="complete", broker_id="26122100000002"))
    j.append(Record("order", 32, order_id="s.c", state="complete", broker_id="26122100000099"))
    j.append(Record("order", 33, order_id="s.u", state="unknown"))
    assert j.roll("2026-12-22", carried)  # the 21st's finished orders leave the journal
    j.close()
    rows = [
        broker_row("26121800000001", 65),
        broker_row("26122100000001", 65),
        broker_row("26122100000002", 130),
        broker_row("26122100000003", 260),  # the unknown order's: its adoption's
        broker_row("26122100000004", 65),  # nobody's: sent twice, or unjournaled
    ]
    (tmp_path / "sim" / "books.jsonl").write_text("\n".join(rows) + "\n{torn")
    m = soak()
    orders, dup, lost, pending, what = m.journal_check(s, day)
    assert (orders, dup, lost, pending) == (4, 1, 1, 1), what
    assert "26122100000004" in what[0] and "26122100000099" in what[1] and "s.u" in what[2]
    # the 18th, read from its copy: one order, accounted for
    assert m.journal_check(s, date(2026, 12, 18))[:4] == (1, 0, 0, 0)


def test_a_roll_while_the_check_reads_hides_no_order(tmp_path: Path) -> None:
    """The stack runs on while the soak checks a day: the router rolls the journal (keeps
    the day's copy, rewrites the journal without the day's finished orders) between the
    check's listing of the copies and its read of the journal. The check reads again and
    finds the day's orders in the new copy (it reported them as duplicates: seen twice)."""
    s = SimpleNamespace(state_dir=tmp_path)
    j = Journal(tmp_path / "venues" / "v" / "router" / "journal.bin")
    j.open("2026-12-18", carried)
    assert j.roll("2026-12-21", carried)  # a copy of the 18th: listed, read first
    j.append(Record("order", 1, order_id="s.a", state="new", order=order("a", 65)))
    j.append(Record("order", 2, order_id="s.a", state="complete", broker_id="26122100000001"))
    m = soak()
    reads: list[Path] = []
    real_read = m.read

    def read_then_roll(path: Path) -> object:
        got = real_read(path)
        reads.append(path)
        if len(reads) == 1:  # the router rolls right after the check's first file (the
            # 18th's copy), before it reads the journal
            assert j.roll("2026-12-22", carried)
        return got

    m.read = read_then_roll
    try:
        orders = m.journal_orders(s)
    finally:
        j.close()
    assert "s.a" in orders, "the 21st's order hidden by the roll"
    assert orders["s.a"].broker_id == "26122100000001"
