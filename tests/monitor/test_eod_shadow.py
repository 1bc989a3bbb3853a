"""The end-of-day report's shadow: the child process the monitor runs and looks at
without waiting (``monitor/shadowrun.py``), the report's section, message lines and
waterfall (``monitor/eodshadow.py``), and the rolling gap between live and shadow."""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from mytrading.monitor import eodshadow
from mytrading.monitor.eod import render, summary
from mytrading.monitor.shadowrun import Outcome, ShadowRun
from mytrading.shadow import SHADOW_LATER

DAY = date(2026, 11, 20)
NS = 10**9


class ScriptRun(ShadowRun):
    """The run with a script of ours in the command's place (a real child process)."""

    script = ""

    def argv(self) -> list[str]:
        return [sys.executable, "-c", self.script]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def finish(run: ShadowRun, clock: Clock | None = None) -> Outcome:
    """Step the run until it is over (the bound is a fault's, not a timing)."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        got = run.step()
        if got is not None:
            return got
        time.sleep(0.02)
    raise AssertionError("the run never ended")


def test_a_held_recording_is_asked_again_until_the_answer(tmp_path: Path) -> None:
    tries = tmp_path / "tries"
    run = ScriptRun(DAY, tmp_path / "reports", retry_s=0.0)
    # the first two tries: "later" (the feed holds the recording, no copy yet); the third
    # answers
    run.script = (
        "import json, pathlib, sys\n"
        f"p = pathlib.Path({str(tries)!r}); n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        f"if n < 2: print('shadow refused: held by another process', file=sys.stderr); "
        f"sys.exit({SHADOW_LATER})\n"
        "print(json.dumps({'day': '2026-11-20', 'strategies': {}}))\n"
    )
    got = finish(run)
    assert got == Outcome({"day": "2026-11-20", "strategies": {}}) and run.tries == 3
    assert (tmp_path / "reports" / f"shadow-{DAY}.json").is_file()


def test_a_refusal_is_the_outcome_in_its_own_words(tmp_path: Path) -> None:
    run = ScriptRun(DAY, tmp_path)
    # a console wraps a long refusal over lines: said as one line
    run.script = ("import sys; print('shadow refused: no router journal of\\n2026-11-20 in "
                  "state/router', file=sys.stderr); sys.exit(2)")  # fmt: skip
    got = finish(run)
    assert got.got is None and got.why_not == "no router journal of 2026-11-20 in state/router"
    assert run.tries == 1  # a refusal is not asked again


def test_a_run_past_its_time_is_ended_and_said(tmp_path: Path) -> None:
    clock = Clock()
    run = ScriptRun(DAY, tmp_path, timeout_s=30, clock=clock)
    run.script = "import time; time.sleep(600)"
    assert run.step() is None and run._proc is not None  # started
    proc = run._proc
    assert run.step() is None  # running, in time
    clock.now = 31.0
    got = run.step()
    assert got is not None and got.got is None
    assert got.why_not == "not made within 30 s (the shadow was still running; 1 tries)"
    assert proc.poll() is not None  # killed, not left behind


def test_a_process_that_cannot_start_is_the_outcome(tmp_path: Path) -> None:
    run = ScriptRun(DAY, tmp_path / "not-a-dir-yet" / "x")
    run.argv = lambda: [str(tmp_path / "no-such-program")]  # type: ignore[method-assign]
    got = run.step()
    assert got is not None and got.got is None
    assert got.why_not.startswith("the shadow's process could not start: ")


def test_still_held_at_the_end_of_its_time(tmp_path: Path) -> None:
    clock = Clock()
    run = ScriptRun(DAY, tmp_path, timeout_s=30, retry_s=10, clock=clock)
    run.script = (
        f"import sys; print('shadow refused: held', file=sys.stderr); sys.exit({SHADOW_LATER})"
    )
    end = time.monotonic() + 60  # a fault's bound
    while not (run.tries == 2 and run._proc is None) and time.monotonic() < end:
        assert run.step() is None  # each try ends "later"
        if run._proc is None:
            clock.now += 10  # the next try is due
        time.sleep(0.02)
    assert run.tries == 2 and clock.now == 20
    clock.now = 40
    got = finish(run)
    assert got.got is None and got.why_not.startswith("not made within 30 s (held;")


SHADOW = {
    "day": "2026-11-20",
    "notes": ["read from the day's copy"],
    "operator": [{"at": "09:40:00", "target": "sma_crossover", "what": "pause", "reason": "x"}],
    "stack": {"bridge": {"shadow_net": 310.0, "operator": 0.0, "slippage": -420.0,
                         "live_only": 0.0, "shadow_only": -1130.0, "charges": -0.5,
                         "unexplained": 0.0, "live_net": -1240.5}},
    "strategies": {
        "sma_crossover": {
            "matched": 4, "live_only": 0, "shadow_only": 2,
            "line": "sma_crossover: live -1,240.50 vs shadow +310.00: slippage -420.00, 2 "
                    "shadow only, risk, live, refused it (max_orders_per_min), -1,130.00, "
                    "charges -0.50",
            "bridge": {"shadow_net": 310.0, "slippage": -420.0, "shadow_only": -1130.0,
                       "charges": -0.5, "live_net": -1240.5},
            "pairs": [
                {"kind": "matched", "live": {"decided_ns": 1}, "shadow": {"decided_ns": 1}},
                {"kind": "shadow_only", "moved": -565.0,
                 "why": "risk, live, refused it (max_orders_per_min)",
                 "shadow": {"decided_ns": 1_795_148_100_000_000_000, "action": "BUY",
                            "quantity": 65, "symbol": "NIFTY23NOV26FUT"}},
            ],
        },
    },
}  # fmt: skip


def test_the_section_lines_and_waterfall_carry_the_commands_figures() -> None:
    sec = eodshadow.section(Outcome(SHADOW))
    assert sec["made"] and sec["stack"]["live_net"] == -1240.5
    [row] = sec["strategies"]
    assert (row["matched"], row["live_only"], row["shadow_only"]) == (4, 0, 2)
    assert row["unmatched"] == [{"kind": "shadow_only", "at": "09:45:00", "action": "BUY",
                                 "quantity": 65, "symbol": "NIFTY23NOV26FUT", "moved": -565.0,
                                 "why": "risk, live, refused it (max_orders_per_min)"}]  # fmt: skip
    assert eodshadow.summary_lines(sec) == ["live against its shadow:", f"  {row['line']}"]
    # the waterfall: from the shadow's net, each cause that moved anything, to the live net
    steps = eodshadow.steps(sec["stack"])
    assert [s[0] for s in steps] == ["shadow net", "slippage", "shadow only", "charges",
                                     "live net"]  # fmt: skip
    assert steps[-2][2] == pytest.approx(steps[-1][2])  # the causes end at the live net
    svg = eodshadow.waterfall_svg(sec["stack"])
    assert svg.count("<rect") == 5 and "-1,130.00" in svg and "-1,240.50" in svg


def test_the_timeline_builds_the_difference_through_the_day_to_the_bridges_total() -> None:
    got = {
        "strategies": {
            "a": {"pairs": [
                {"kind": "matched", "moved": -12.5, "live": {"decided_ns": 3 * NS}},
                {"kind": "matched", "moved": 0.0, "live": {"decided_ns": 4 * NS}},  # none
                {"kind": "live_only", "moved": 40.0, "live": {"decided_ns": 9 * NS}},
            ]},
            "b": {"pairs": [{"kind": "shadow_only", "moved": -100.0,
                             "shadow": {"decided_ns": 5 * NS}}]},
        },
    }  # fmt: skip
    stack = {"shadow_net": 10.0, "slippage": -12.5, "live_only": 40.0,
             "shadow_only": -100.0, "charges": -3.25, "operator": 20.0, "unexplained": 0.0,
             "live_net": -45.75}  # fmt: skip
    steps = eodshadow.timeline(got, stack)
    assert [(x["ns"], x["cause"], x["moved"]) for x in steps] == [
        (3 * NS, "slippage", -12.5), (5 * NS, "shadow_only", -100.0),
        (9 * NS, "live_only", 40.0), (9 * NS, "operator", 20.0),
        (9 * NS, "charges", -3.25)]  # fmt: skip
    assert [x["at"] for x in steps][-2:] == ["close", "close"]
    assert sum(x["moved"] for x in steps) == pytest.approx(stack["live_net"] - stack["shadow_net"])
    svg = eodshadow.timeline_svg(steps)
    assert svg.count("<circle") == 5 and "shadow only -100.00" in svg


def test_the_report_says_why_a_shadow_is_missing() -> None:
    sec = eodshadow.section(Outcome(None, "no router journal of 2026-11-20"))
    assert sec == {"made": False, "why_not": "no router journal of 2026-11-20"}
    assert eodshadow.summary_lines(sec) == [
        "live against its shadow: none (no router journal of 2026-11-20)"
    ]
    report = {"day": "2026-11-20", "strategies": [], "needs": [], "drawdown_since": "09:15",
              "stack": {"trades": 0, "gross": 0, "charges": 0, "net": 0, "worst_drawdown": 0},
              "shadow": sec}  # fmt: skip
    assert "live against its shadow: none" in summary(report)
    assert "Not made: no router journal of 2026-11-20" in render(report)


def report_with(day: str, live: float, shadow: float) -> dict[str, object]:
    return {"day": day, "shadow": {"made": True, "strategies": [
        {"strategy": "s", "bridge": {"live_net": live, "shadow_net": shadow}}]}}  # fmt: skip


def test_the_gap_is_summed_over_the_window_of_reported_days(tmp_path: Path) -> None:
    for day, live, shadow in (
        ("2026-11-16", -9000.0, 0.0),  # outside a window of three
        ("2026-11-17", -1000.0, 500.0),
        ("2026-11-18", -1000.0, 500.0),
        ("2026-11-19", 0.0, 0.0),
        ("2026-11-23", -9000.0, 0.0),  # after the day asked about
    ):
        (tmp_path / f"eod-{day}.json").write_text(json.dumps(report_with(day, live, shadow)))
    (tmp_path / "eod-2026-11-20.json").write_text(
        json.dumps({"day": "2026-11-20", "shadow": {"made": False, "why_not": "x"}})
    )  # not counted
    [g] = eodshadow.gaps(tmp_path, DAY, 3, 2_999.0)
    assert (g.strategy, g.gap, g.days) == ("s", -3000.0, ["2026-11-17", "2026-11-18", "2026-11-19"])
    assert "live -2,000.00 vs its shadow +1,000.00 over 3 day(s)" in g.text()
    assert eodshadow.gaps(tmp_path, DAY, 3, 3_000.0) == []  # not more than the threshold
    assert [g.gap for g in eodshadow.gaps(tmp_path, DAY, 4, 2_999.0)] == [-12000.0]


def test_a_follower_accounts_part_of_a_line_is_a_line_of_its_own_in_the_report() -> None:
    """On a phone the strategy's line runs long: each follower's part goes beneath it
    (rendered and looked at: seed 7's sma_crossover and its follower ``second``)."""
    line = "s: live +1.00 vs shadow +1.00: no difference; follower second: 1 of 2 copied (1 x)"
    got = eodshadow._line_html(line)
    assert got == ("<li class='line'>s: live +1.00 vs shadow +1.00: no difference<ul "
                   "class='followers'><li class='follower'>follower second: 1 of 2 copied "
                   "(1 x)</li></ul></li>")  # fmt: skip
    assert eodshadow._line_html("s: <b>") == "<li class='line'>s: &lt;b&gt;</li>"
