"""What a daemon does before its own imports, to start in less CPU.

A stack start is ten Python processes, and every restart, every ``main.py start`` and
every process test pays for them: about 0.7 CPU-s of imports and set-up each before this,
2 s for the simulator. Two things in that were pure waste for a daemon:

* **The cyclic garbage collector** walked the growing heap of modules, classes and
  config objects again and again while they were being made, all of which live as long
  as the process. It is off until the daemon's set-up is done (``settled``), when one
  collection runs and what is alive is frozen out of later ones (``gc.freeze``: the p99
  pauses it removed are in ``process/shell.py``).
* **rich**, which structlog imports (console tracebacks, pretty-printing) whenever it is
  installed: 0.1 s of every start. A daemon's log is JSON in its file; under supervisord it
  renders nothing for a console, and by hand its console lines are plain. The CLI, which
  prints tables with rich, does not call ``begin``; the engine keeps it (an author's
  strategy may import it).

Measured: ``import mytrading.process.shell, mytrading.router.daemon``, 0.68 CPU-s, 0.53
with both (four runs each, ``/usr/bin/time``). Only the standard library here.
"""

from __future__ import annotations

import gc
import sys

from mytrading.process.startguard import gate


def lean(hide_rich: bool = True) -> None:
    """The collector off and (``hide_rich``) rich hidden from structlog, for the imports
    that follow."""
    gc.disable()
    if hide_rich:
        sys.modules.setdefault("rich", None)  # type: ignore[arg-type]  # "import rich" fails


def begin(name: str, hide_rich: bool = True) -> None:
    """A daemon's first call: ``gate`` (a daemon that keeps failing at start exits at
    once), then ``lean``. The engine keeps rich: it runs authors' strategies, which may
    import it."""
    gate(name)
    lean(hide_rich)


def settled() -> None:
    """Set-up done: collect once, freeze what is alive (it lives as long as the process,
    so no full collection need walk it), and turn the collector back on."""
    gc.collect()
    gc.freeze()
    gc.enable()
