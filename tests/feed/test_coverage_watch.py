"""The feed's coverage is said once each way: a warning when it falls, an error only once
it has stayed under 90 % for COVERAGE_ERROR_AFTER_S (a busy host holds quotes back for
seconds without anything being wrong), and its return."""

from __future__ import annotations

from mytrading.feed.daemon import COVERAGE_ERROR_AFTER_S, CoverageWatch


def test_a_dip_is_a_warning_a_lasting_gap_an_error_each_said_once() -> None:
    w = CoverageWatch()
    assert w.judge(0, 16, uptime=2.0, now=100.0) == ""  # just started: nothing fresh yet
    assert w.judge(0, 16, uptime=6.0, now=104.0) == "low"
    assert w.judge(2, 16, uptime=9.0, now=107.0) == ""
    assert w.judge(16, 16, uptime=10.0, now=108.0) == "restored" and not w.alert
    assert w.judge(10, 16, uptime=11.0, now=109.0) == "low"
    assert w.judge(10, 16, uptime=20.0, now=109.0 + COVERAGE_ERROR_AFTER_S - 0.1) == ""
    assert w.judge(10, 16, uptime=30.0, now=109.0 + COVERAGE_ERROR_AFTER_S) == "error"
    assert w.alert and w.low_for(109.0 + COVERAGE_ERROR_AFTER_S) == COVERAGE_ERROR_AFTER_S
    assert w.judge(10, 16, uptime=40.0, now=200.0) == ""  # said once
    assert w.judge(15, 16, uptime=41.0, now=201.0) == "restored" and not w.alert
    assert w.judge(0, 0, uptime=50.0, now=210.0) == ""  # nothing subscribed
