"""The journal when the disk refuses it: on a real full file system (a small tmpfs) and by
a refused flush; nothing raises, nothing written is lost, the file never holds a record
after a gap, and everything held is on the disk once space returns."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mytrading.router.journal import Journal, Record, read
from tests.router.test_journal import fill, no_carry
from tests.simhelpers import order
from tests.smallfs import fill_up, small_fs


def _orders(j: Journal, start: int, n: int) -> None:
    for i in range(start, start + n):
        oid = f"o{i}"
        j.append(Record("order", i, order_id=oid, state="new", order=order(oid, 65)))
        j.append(Record("fill", i, order_id=oid, fill=fill(i, oid, 65, 100.0)), sync=False)


def test_a_full_file_system_holds_records_and_writes_them_when_space_returns(
    tmp_path: Path,
) -> None:
    with small_fs(tmp_path / "fs", "1m") as fs:
        j = Journal(fs / "journal.bin")
        j.open("2026-11-20", no_carry)
        _orders(j, 1, 20)
        assert j.fault == ""
        filler = fill_up(fs)
        _orders(j, 21, 200)  # the disk refuses: held, nothing raised
        assert "No space left on device" in j.fault and j.held_bytes > 0
        assert j.faults == 1
        assert not j.recover()  # still full: still held, still faulted
        assert j.fault and j.held_bytes > 0
        on_disk = read(fs / "journal.bin")
        assert not on_disk.damaged and len(on_disk.fills) < 220  # the rest is in memory
        filler.unlink()
        assert j.recover() and j.fault == "" and j.held_bytes == 0
        _orders(j, 221, 5)
        j.close()
        rep = read(fs / "journal.bin")
        assert not rep.damaged and rep.torn_bytes == 0
        assert [f.fill_no for f in rep.fills] == list(range(1, 226))
        assert len(rep.orders) == 225


def test_a_refused_flush_rewrites_what_it_may_have_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal(tmp_path / "journal.bin")
    j.open("2026-11-20", no_carry)
    _orders(j, 1, 3)
    real = os.fdatasync

    def eio(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", eio)
    _orders(j, 4, 3)  # written to the page cache, its flush refused
    assert "Input/output error" in j.fault
    assert not j.recover()
    monkeypatch.setattr(os, "fdatasync", real)
    assert j.recover()
    j.close()
    rep = read(tmp_path / "journal.bin")
    assert [f.fill_no for f in rep.fills] == [1, 2, 3, 4, 5, 6] and not rep.damaged
