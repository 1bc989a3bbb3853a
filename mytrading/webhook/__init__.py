"""Signals from outside (TradingView, Amibroker, ChartInk) as webhook strategies: what a
request must pass (``gate.py``), alert formats (``alerts.py``), intents from alerts
(``intents.py``), the strategies and their audit (``store.py``). ``docs/webhooks.md``."""
