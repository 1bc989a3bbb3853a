"""bench/backtest_profile.py puts each sample on the path its stack is on: the order path
under the order call, the queue drain, the broker's matching or the venue's events; the
data path under the generated bars; the bar path otherwise; and names the function a
sample was in without its line."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from mytrading.settings import PROJECT_ROOT


def profile() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "backtest_profile", PROJECT_ROOT / "bench" / "backtest_profile.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


LOOP = [
    "<module> (backtest.py:520)",
    "Backtest.run (mytrading/backtest/loop.py:304)",
    "Backtest._batch_one (mytrading/backtest/loop.py:393)",
]


def test_each_sample_goes_on_its_path() -> None:
    m = profile()
    fill = [*LOOP, "BacktestVenue.on_events (mytrading/backtest/venue.py:55)",
            "Ledger.apply (mytrading/domain/positions.py:33)"]  # fmt: skip
    order_call = [*LOOP, "StrategyRunner.on_closed_bar (mytrading/engine/runner.py:380)",
                  "SmaCrossover.on_bar (sma_crossover.py:70)",
                  "StrategyContext.order (mytrading/engine/context.py:287)"]  # fmt: skip
    drain = [*LOOP, "Backtest._drain (mytrading/backtest/loop.py:600)",
             "check (mytrading/risk/rules.py:402)"]  # fmt: skip
    data = [*LOOP, "Stream.next_start (mytrading/backtest/loop.py:120)",
            "walk (mytrading/sim/paths.py:104)"]  # fmt: skip
    bar = [*LOOP, "StrategyRunner.on_closed_bar (mytrading/engine/runner.py:380)",
           "SmaCrossover.on_bar (sma_crossover.py:70)"]  # fmt: skip
    assert [m.path_of(s) for s in (fill, order_call, drain, data, bar)] == [
        "order", "order", "order", "data", "bar",
    ]  # fmt: skip
    assert m.where(fill[-1]) == "Ledger.apply (positions.py)"
    assert m.where("f (/x/.venv/lib/python3.11/site-packages/numpy/_core/_methods.py:44)") == (
        "f (numpy/_core/_methods.py)"
    )


def test_the_compiled_profile_reads_perf_and_names_the_compiled_function() -> None:
    """``--compiled``: perf's samples (leaf first) read root first; each on the innermost
    compiled function, or on the Python it calls when interpreted code runs below it."""
    m = profile()
    text = (
        "\n"
        "\t    1234 _PyEval_EvalFrameDefault\n"
        "\t    1300 CPyDef_context___StrategyContext___on_bar\n"
        "\t    1400 CPyDef_loop___Backtest___run\n"
        "\t    1500 main\n"
        "\n"
        "\t    2234 PyDict_GetItem\n"
        "\t    2300 CPyDef_monitor___PostTrade___on_fill\n"
        "\t    2350 CPyDef_venue___BacktestVenue___on_events\n"
        "\t    2400 CPyDef_loop___Backtest___run\n"
        "\n"
        "\t    3000 CPyDef_loop___Stream___next_start\n"
        "\t    3100 CPyDef_loop___Backtest___run\n"
    )
    bar, fill, data = m.perf_stacks(text)
    assert bar[0] == "main" and bar[-1] == "_PyEval_EvalFrameDefault"
    assert [m.c_path_of(s) for s in (bar, fill, data)] == ["bar", "order", "data"]
    assert m.c_where(bar) == "Python called from context.StrategyContext.on_bar"
    assert m.c_where(fill) == "monitor.PostTrade.on_fill"
    assert m.c_where(data) == "loop.Stream.next_start"
