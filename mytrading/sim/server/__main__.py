"""``python -m mytrading.sim.server``: the OpenAlgo-compatible server on its own."""

from mytrading.process.prestart import lean

lean()  # first: the collector off until set-up is done (process/prestart.py)

from mytrading.sim.server.main import main  # noqa: E402

main()
