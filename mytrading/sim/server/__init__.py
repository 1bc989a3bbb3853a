"""The OpenAlgo-compatible server on the simulated exchange: REST (``rest.py``, request
schemas in ``schemas.py``), WebSocket (``ws.py``), and the ``simserver`` program
(``main.py``)."""
