"""A supervisord event listener: every process crash, restart and give-up, as JSON lines.

supervisord sends it only the ``PROCESS_STATE`` events it records (``supervisord.conf``):
each ``EXITED`` that was not expected (a ``kill -9``, an uncaught exception) and each
``FATAL`` (supervisord gave up restarting) is appended to ``logs/crashes.log`` with the
process name, pid, from-state and the time in IST. Operators tail that one file for what
needs a human.

It also keeps supervisord's restarts prompt. supervisord's loop sleeps in ``poll`` for up
to a second and wakes only on file activity: SIGCHLD does not wake it (Python retries an
interrupted ``poll``), so it reaps a dead process at the next activity and starts the new
one at the activity after that, up to 2 s after the death on a quiet stack. Before the
logs were quieted, the router's line per HTTP request was the activity that woke it (a
median of 0.4 to 0.6 s from ``kill -9`` to the new process's first heartbeat); with them at
DEBUG the median was 1.1 to 1.6 s, with respawns 2 s after the kill. So this listener
writes a byte to its stderr (a pipe supervisord reads and discards) every ``WAKE_S``:
supervisord then wakes ten times a second, at a cost of well under 1 % of a core.

Protocol: http://supervisord.org/events.html (``READY``, a header line, a payload of
``len`` bytes, then ``RESULT 2\\nOK``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from mytrading.domain.refdata import IST

WAKE_S = 0.1

WATCHED = ("PROCESS_STATE_EXITED", "PROCESS_STATE_FATAL", "PROCESS_STATE_BACKOFF")


def parse(line: str) -> dict[str, str]:
    """``key:value key:value`` (supervisord's header and payload format)."""
    return dict(tok.split(":", 1) for tok in line.split() if ":" in tok)


def record(header: dict[str, str], payload: dict[str, str]) -> dict[str, object] | None:
    """The crash-log entry for an event, or None for one that needs no attention."""
    event = header.get("eventname", "")
    if event not in WATCHED:
        return None
    if event == "PROCESS_STATE_EXITED" and payload.get("expected") == "1":
        return None
    return {
        "time": datetime.now(IST).isoformat(),
        "event": event.removeprefix("PROCESS_STATE_").lower(),
        "process": payload.get("processname", "?"),
        "pid": int(payload["pid"]) if payload.get("pid", "").isdigit() else None,
        "from_state": payload.get("from_state", ""),
    }


def serve(stdin: TextIO, stdout: TextIO, log_path: Path) -> None:
    while True:
        stdout.write("READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return  # supervisord is gone
        header = parse(line)
        body = stdin.read(int(header.get("len", "0")))
        entry = record(header, parse(body.split("\n", 1)[0]))
        if entry is not None:
            with open(log_path, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
        stdout.write("RESULT 2\nOK")
        stdout.flush()


def wake(stream: BinaryIO, every_s: float = WAKE_S) -> None:
    """Give supervisord's loop file activity every ``every_s`` (see the module's doc)."""
    while True:
        try:
            stream.write(b".")
            stream.flush()
        except OSError:
            return  # supervisord is gone
        time.sleep(every_s)


def main() -> None:
    log_dir = Path(os.environ.get("MT_LOG_DIR", "logs"))
    log_dir.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=wake, args=(sys.stderr.buffer,), daemon=True).start()
    serve(sys.stdin, sys.stdout, log_dir / "crashes.log")


if __name__ == "__main__":
    main()
