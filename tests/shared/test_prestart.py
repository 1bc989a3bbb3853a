"""A daemon's collector is off while it starts and on once its set-up is done, with
rich hidden from structlog meanwhile (``process/prestart.py``)."""

from __future__ import annotations

import json
import subprocess
import sys

from mytrading.settings import PROJECT_ROOT

# in a process of its own: settled() collects the whole heap, seconds in a test worker's
_PROBE = """
import gc, json, sys, weakref
from mytrading.process.prestart import lean, settled

class Node:
    other = None  # the member of the cycle it points to

lean()
off = not gc.isenabled()
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle: only the collector frees it
gone = weakref.ref(a)
del a, b
kept = gone() is not None
try:
    import rich  # noqa: F401
    hidden = False
except ImportError:
    hidden = True
settled()
print(json.dumps({"off": off, "kept": kept, "rich_hidden": hidden, "freed": gone() is None,
                  "on": gc.isenabled(), "frozen": gc.get_freeze_count() > 0}))
"""


def test_lean_then_settled_collects_and_turns_the_collector_back_on() -> None:
    got = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {
        "off": True,  # while the daemon starts
        "kept": True,  # a cycle stays while it is off
        "rich_hidden": True,
        "freed": True,  # settled's collection frees it
        "on": True,
        "frozen": True,  # what start built is out of later collections
    }
