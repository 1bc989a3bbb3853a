"""Tests of mytrading/backtest."""
