"""``python -m mytrading.sim.server``: the OpenAlgo-compatible server on its own."""

from mytrading.sim.server.main import main

main()
