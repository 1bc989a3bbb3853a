"""Backtests: the live engine's runner and risk's core over historical bars (or ticks) with
a simulated broker, in one process (``engine.py``); the bars (``data.py``,
``download.py``), results, metrics and reports (``results.py``, ``metrics.py``,
``report.py``, ``store.py``) and parameter sweeps (``sweep.py``). ``docs/backtesting.md``."""
