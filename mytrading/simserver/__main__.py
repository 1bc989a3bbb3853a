"""``python -m mytrading.simserver``: the OpenAlgo-compatible server on its own."""

from mytrading.simserver.main import main

main()
