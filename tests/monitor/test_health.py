"""A process's health figures: what a heartbeat carries, and the memory-growth flag."""

from __future__ import annotations

import gc
import time

from mytrading.process.health import GROWTH_MB, TREND_POINTS, ProcessHealth


def test_a_sample_measures_this_process_and_starts_the_interval_again() -> None:
    h = ProcessHealth()
    try:
        h.lag(0.08)
        h.lag(0.01)
        gc.collect()
        end = time.process_time() + 0.05
        while time.process_time() < end:  # some CPU to be seen
            pass
        s = h.sample()
        assert s["rss_mb"] > 10 and s["fds"] > 2 and s["cpu_pct"] > 0
        assert s["loop_lag_max_ms"] == 80.0 and s["loop_lag_over_50ms"] == 1
        assert s["gc_pauses"] >= 1 and s["gc_pause_max_ms"] > 0
        again = h.sample()
        assert again["loop_lag_max_ms"] == 0.0 and again["gc_pauses"] == 0
    finally:
        h.close()
    assert h._on_gc not in gc.callbacks


def test_memory_growing_for_an_hour_is_flagged_and_a_cache_filling_once_is_not() -> None:
    h = ProcessHealth()
    h.close()
    step = 2 * GROWTH_MB / TREND_POINTS
    h.rss_points.extend(100 + i * step for i in range(TREND_POINTS))
    assert not h.rss_growing()  # less than an hour of points
    h.rss_points.append(100 + TREND_POINTS * step)
    assert h.rss_growing()
    h.rss_points.clear()
    h.rss_points.extend([100.0] * 5 + [400.0] * (TREND_POINTS - 4))  # one jump, then flat
    assert not h.rss_growing()
    h.rss_points.clear()
    h.rss_points.extend(100 + i * 0.1 for i in range(TREND_POINTS + 1))  # +6 MB: noise
    assert not h.rss_growing()
