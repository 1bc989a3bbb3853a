"""The wire and the bus: every message (``wire``), the sockets and endpoint map (``bus``,
``curve`` for CURVE between hosts), the bounded queue to a peer (``outbox``), what each
daemon declares it wants (``interest``), and a reader catching up on the router's fills
(``catchup``)."""
