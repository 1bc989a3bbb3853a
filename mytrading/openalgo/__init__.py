"""Where mytrading meets OpenAlgo: everything that speaks its protocol and nothing else.

``rest.py`` (orders, account and quotes over one kept-alive connection), ``replies.py``
(reply normalisation and failure classification), ``orders.py`` (the router's broker
adapter on top of them), ``broker.py`` (the adapter interface and its events),
``ws.py`` (the WebSocket: market data and order updates, with failover) and
``history.py`` (past bars). It imports no daemon; every daemon that talks to a broker
imports it (docs/openalgo.md is the reference for every field and quirk it relies on)."""
