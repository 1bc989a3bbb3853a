"""mytrading: a trading stack for Indian markets through OpenAlgo (README.md).

``wire`` (``mytrading/messaging/wire.py``: ``Bar``, ``Tick``, ``Fill``, ``OrderUpdate``...)
is what a strategy's hooks are handed, so an author imports it from here as ever:
``from mytrading import wire``."""

from mytrading import compiled

compiled.install()  # before any module it compiles is imported (mytrading/compiled.py)

from mytrading.messaging import wire as wire  # noqa: E402
