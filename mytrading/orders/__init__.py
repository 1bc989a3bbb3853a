"""An order's life, in one place: its states and the moves between them (``state``), and
the tracker every book of orders is built on (``tracker``): the router's table, the
backtest's venue, the engine's and the signals daemon's books of split orders. A broker's
statuses are mapped to these states in one place, ``openalgo/broker.py``."""
