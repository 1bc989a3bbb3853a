"""Risk: the only path from an intent to the router. ``engine.py`` is the socket-free core
(pre-trade rules in ``rules.py``, the orders in ``orders.py``, post-trade in
``monitor.py`` and ``exits.py``); ``daemon.py`` runs it on the bus, the backtest in
process."""
