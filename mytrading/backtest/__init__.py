"""Backtest mode (issue 13), being built: so far the metrics (``metrics.py``)."""
