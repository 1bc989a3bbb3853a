"""Percentiles of the daemons' own latency samples, with the standard library.

The figures are numpy's default percentiles (linear interpolation between the closest
ranks: ``statistics.quantiles(..., method="inclusive")``), without numpy's import: 0.1 to
0.2 s of CPU at each start of a daemon that has no other use for numpy (router, feed,
reconciler), paid again at every restart and in every process test.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection


def p50_p99(values: Collection[float]) -> tuple[float, float]:
    """The median and the 99th percentile; (0, 0) when there is none."""
    if len(values) > 1:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return cuts[49], cuts[98]
    if values:
        only = next(iter(values))
        return only, only
    return 0.0, 0.0
