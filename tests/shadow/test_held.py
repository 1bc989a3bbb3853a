"""Live's bars held for a warm-up: the engine's record of them (``engine/warmlog.py``) and
the cause the day's shadow reads from it (``shadow/held.py``)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from mytrading.domain.refdata import IST
from mytrading.engine import warmlog
from mytrading.engine.warmlog import Handed
from mytrading.shadow.held import held_cause, parting

DAY = date(2026, 11, 27)
FUT = "NIFTY30DEC26FUT"


def at(hms: str) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    return int(datetime(2026, 11, 27, h, m, s, tzinfo=IST).timestamp() * 1e9)


def hold(
    strategy: str = "s",
    symbol: str = FUT,
    held: int = 3,
    first: str = "swapped",
    since: str = "09:17:00",
    last: str = "09:25:00",
    handed: str = "09:26:48",
) -> Handed:
    span = (at(since), at(last), first) if held else (0, 0, "")
    return Handed(strategy, "NFO", symbol, "1m", at(handed), 0, 0, held, *span)


def test_the_record_reads_back_skips_a_torn_line_and_keeps_ninety_days(tmp_path: Path) -> None:
    old = tmp_path / "warmups-2026-08-01.jsonl"
    old.write_text("")  # more than KEEP_DAYS before the day: removed at its first write
    recent = tmp_path / "warmups-2026-11-01.jsonl"
    recent.write_text("")
    a, b = hold(), hold(symbol="NIFTY", held=1, first="partial", last="09:17:00")
    warmlog.append(tmp_path, DAY.isoformat(), [a])
    warmlog.append(tmp_path, DAY.isoformat(), [b])
    assert warmlog.read(tmp_path, DAY) == [a, b]
    assert not old.exists() and recent.exists()
    with warmlog.path_of(tmp_path, DAY.isoformat()).open("a") as fh:
        fh.write('{"strategy": "s", "exch')  # a crash in the middle of a write
    assert warmlog.read(tmp_path, DAY) == [a, b]
    assert warmlog.read(tmp_path, date(2026, 11, 26)) == []  # no file: none kept


def test_only_a_hold_that_can_part_the_sides_is_a_cause() -> None:
    """Two bars or more (decided in one burst), or a first bar handed partial; not one
    bar swapped for the broker's copy (the same bar, decided late: slippage only)."""
    burst, partial = hold(), hold(symbol="NIFTY", held=1, first="partial", last="09:17:00")
    one, none = hold(held=1, last="09:17:00"), hold(held=0)
    got = parting([burst, one, none, partial, hold(strategy="t")])
    assert got == {"s": [burst, partial], "t": [hold(strategy="t")]}


def test_a_decision_on_a_held_bar_or_after_the_hold_until_the_sides_agree_is_put_to_it() -> None:
    holds = [hold()]
    said = ("live's NIFTY30DEC26FUT 1m bars from 09:17 held for a warm-up, 3 handed at once "
            "at 09:26:48")  # fmt: skip
    key = ("NFO", FUT)
    # the shadow's decision on the held 09:25 bar, the sides alike at the burst's first
    assert held_cause(holds, key, at("09:25:00"), at("09:26:48"), at("09:27:00")) == said
    # on a held bar, whenever the sides last held alike
    assert held_cause(holds, key, at("09:21:00"), at("09:40:00"), at("09:22:00")) == said
    # live's next decision after the burst, the sides apart since it
    assert held_cause(holds, key, at("09:29:00"), at("09:26:48"), at("09:30:12")) == said
    # the sides alike again after the hold: another cause, not this one
    assert held_cause(holds, key, at("09:29:00"), at("09:28:00"), at("09:30:12")) == ""
    # before the hold began
    assert held_cause(holds, key, at("09:15:00"), 0, at("09:16:00")) == ""
    partial = hold(symbol="NIFTY", held=1, first="partial", last="09:17:00", handed="09:18:24")
    assert held_cause([partial], key, at("09:17:00"), 0, at("09:19:00")) == (
        "live's NIFTY 1m bar of 09:17 handed partial at 09:18:24 (a warm-up's: the broker's "
        "whole copy did not come in time)"
    )
    # the decision's own instrument's hold first, though another's was handed later
    other = hold(symbol="BANKNIFTY", handed="09:28:00")
    assert held_cause([holds[0], other], key, at("09:25:00"), 0, at("09:27:00")) == said
    both = held_cause([holds[0], other], ("NFO", "X"), at("09:25:00"), 0, at("09:27:00"))
    assert both.startswith("live's BANKNIFTY")  # none of its own: the latest
    first_partial = hold(first="partial")
    assert held_cause([first_partial], key, at("09:25:00"), 0, at("09:27:00")).endswith(
        "(the first partial)"
    )


def begun(since: str, began: str, symbol: str = FUT, asked: int = 0) -> Handed:
    """A hold's record as it began (``engine/warmup.py hold``)."""
    return Handed("s", "NFO", symbol, "1m", at(began), 0, asked, 0, at(since), 0, "", begun=True)


def test_a_hold_an_engine_kill_cut_short_names_the_bars_it_held() -> None:
    """Seed 11 at 240x: the first live NIFTY bar (09:17) waited for the broker's copy (5 s
    of wall time, twenty market minutes) with every later bar behind it, and the engine
    was killed before the wait ended: only the record written as the hold began is on
    disk. Every bar from 09:17 until the restarted engine's warm-up (09:40:29) was held;
    a hold that ended in a line handed is that line's, not an open one."""
    cut = begun("09:17:00", "09:18:12")
    after = hold(held=0, handed="09:40:29")  # the restarted engine's warm-up
    ended = begun("09:41:00", "09:42:00")
    handed = hold(held=3, since="09:41:00", last="09:45:00", handed="09:46:00")
    got = parting([after, cut, ended, handed])["s"]
    assert [(h.begun, h.first_ns, h.last_ns) for h in got] == [
        (True, at("09:17:00"), at("09:40:29")), (False, at("09:41:00"), at("09:45:00")),
    ]  # fmt: skip
    key = ("NFO", FUT)
    said = ("live's NIFTY30DEC26FUT 1m bars from 09:17 held for the broker's copy of the "
            "first from 09:18:12, never handed: the engine ended first")  # fmt: skip
    # the shadow decided on the 09:17 bar at 09:19: live held it
    assert held_cause(got[:1], key, at("09:17:00"), 0, at("09:19:00")) == said
    assert held_cause(got[:1], key, at("09:33:00"), 0, at("09:35:00")) == said
    assert held_cause(got[:1], key, at("09:41:00"), 0, at("09:43:00")) == ""  # after it
    assert held_cause(got[:1], key, at("09:15:00"), 0, at("09:16:00")) == ""  # before it
    # one with no later record of its instrument holds to the day's end
    (alone,) = parting([begun("14:50:00", "14:51:00", asked=50)])["s"]
    assert alone.holds(at("15:20:00")) and "held for a warm-up from 14:51:00" in held_cause(
        [alone], key, at("15:20:00"), 0, at("15:22:00"))  # fmt: skip


def test_a_record_the_disk_refuses_is_kept_to_try_again_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's second's write (``EngineDaemon._keep_warmups``): refused, the records
    wait for the next try (the newest ``KEPT_MAX``); written, they are gone from memory."""
    blocked = tmp_path / "engine"
    blocked.write_text("")  # a file where the directory should be: every write refused
    monkeypatch.setattr(warmlog, "KEPT_MAX", 2)
    handed = [hold(handed="09:26:48"), hold(handed="09:26:49"), hold(handed="09:26:50")]
    error = warmlog.keep(blocked, DAY.isoformat(), handed)
    assert error and len(handed) == 2 and handed[-1].at_ns == at("09:26:50")
    blocked.unlink()
    blocked.mkdir()
    assert warmlog.keep(blocked, DAY.isoformat(), handed) == "" and handed == []
    assert [h.at_ns for h in warmlog.read(blocked, DAY)] == [at("09:26:49"), at("09:26:50")]
    assert warmlog.keep(blocked, DAY.isoformat(), []) == ""
