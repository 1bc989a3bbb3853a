"""The signals daemon: webhook alerts (TradingView, Amibroker, ChartInk) to intents."""
