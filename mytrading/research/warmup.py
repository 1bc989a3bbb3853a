"""What warm-up a strategy asks, read without running it: its ``on_start`` on a runner
with no data (``StrategyRunner.start(warm=False)``), the subscriptions' ``warmup`` counts
read back. On the first day of the run, with the parameters given."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from mytrading.backtest.session import Prepared
from mytrading.domain.bars import DAILY, TIMEFRAMES
from mytrading.domain.refdata import IST
from mytrading.engine.runner import StrategyRunner

NS = 1_000_000_000
SESSION_MINUTES = 375


def session_bars(tf: str) -> int:
    """Bars of ``tf`` in a full session (the last one short)."""
    if tf == DAILY:
        return 1
    return math.ceil(SESSION_MINUTES * 60 / TIMEFRAMES[tf])


def declared_warmups(p: Prepared, combo: dict[str, Any]) -> dict[tuple[str, str, str], int]:
    """(exchange, symbol, timeframe) -> warm-up bars asked, by every strategy of the run
    with ``combo`` over its parameters."""
    hours = p.refdata.calendar.hours("NFO", p.spec.start)
    opens = datetime.combine(p.spec.start, hours[0] if hours else datetime.min.time(), IST)
    t = int(opens.timestamp()) * NS
    runner = StrategyRunner(
        p.refdata,
        lambda: t,
        lambda: opens,
        lambda _intent: None,
        lambda _ex, _sym: None,
        run_id="probe",
        history=lambda *_a: [],
        mode="backtest",
        time_hooks=False,
    )
    for cls, params in p.spec.strategies:
        mine = {k: v for k, v in combo.items() if k in cls.Params.model_fields}
        runner.add(cls, {**params, **mine})
    runner.start(warm=False)
    out: dict[tuple[str, str, str], int] = {}
    for w in runner.warmups.values():
        key = (w.exchange, w.symbol, w.tf)
        out[key] = max(out.get(key, 0), w.count)
    return out
