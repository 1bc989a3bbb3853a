"""Signals from outside (TradingView, Amibroker, ChartInk) as webhook strategies (issue 14)."""
