"""The soak's short form (``bench/soak.py --sessions 3``): the demo stack over three
sessions (a weekend crossed), a random daemon killed with SIGKILL in each; no error line,
no reconciler mismatch, no order at the broker the journal does not account for, none
lost. The ten-session run and its RSS goal are the benchmark's (README)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from mytrading.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_three_sessions_with_a_kill_each_lose_nothing() -> None:
    r = subprocess.run(
        # from a Thursday: three sessions cross the weekend whether or not a slow start
        # costs the first day, and none is the morning after a Tuesday expiry (at 1200x a
        # builder strategy can still close a leg settled at the expiry close the evening
        # before: a known race, README "what is left", not what this test is about)
        [sys.executable, str(PROJECT_ROOT / "bench" / "soak.py"), "--sessions", "3",
         "--speed", "1200", "--seed", "11", "--start", "2026-12-17T09:15"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
    last = out.strip().splitlines()[-1]
    m = re.fullmatch(
        r"soak: sessions (\d+) errors (\d+) mismatches (\d+) duplicates (\d+) lost (\d+) "
        r"rss_growth_pct (-?[\d.]+)",
        last,
    )
    assert m is not None, last
    sessions, errors, mismatches, duplicates, lost = map(int, m.groups()[:5])
    assert sessions == 3, out[-3000:]
    assert (errors, mismatches, duplicates, lost) == (0, 0, 0, 0), out[-6000:]
    kills = re.findall(r"killed (\w+) at", out)
    assert len(kills) == 3  # a daemon killed in each session
    # every session traded (a day the stack was not up and warmed up for by noon, at
    # 1200x a loaded machine's slow start, is printed before session 1 and not counted)
    orders = [int(n) for n in re.findall(r"== session \d+: .*\norders at the broker (\d+)", out)]
    assert len(orders) == 3 and all(n > 0 for n in orders), out[-6000:]
