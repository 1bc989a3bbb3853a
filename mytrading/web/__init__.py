"""What every HTTP server of the stack shares: its thread (``thread``), its door checks
(``guard``: loopback, Host, tokens) and its shedding of slow clients (``shed``)."""
