"""The simulated venue: a market (``market.py`` generated, ``replay.py`` recorded), the
exchange and its fill model (``matching.py``, ``exchange.py``), and the
OpenAlgo-compatible server on top (``server/``). Daemons reach it only through
OpenAlgo's protocol: over HTTP and WebSocket from the ``simserver`` program, or in
process through ``local.py`` (the same requests and replies, no sockets)."""
