"""The supervisord event listener speaks the real protocol and logs only what matters."""

from __future__ import annotations

import io
import json
from pathlib import Path

from mytrading.process.crashwatch import serve


def event(name: str, payload: str) -> str:
    header = "ver:3.0 server:supervisor serial:1 pool:crashwatch poolserial:1"
    return f"{header} eventname:{name} len:{len(payload)}\n{payload}"


def test_crashes_are_logged_and_every_event_acknowledged(tmp_path: Path) -> None:
    stdin = io.StringIO(
        event(
            "PROCESS_STATE_RUNNING",
            "processname:router groupname:router from_state:STARTING pid:11",
        )
        + event(
            "PROCESS_STATE_EXITED",
            "processname:router groupname:router from_state:RUNNING expected:0 pid:11",
        )
        + event(
            "PROCESS_STATE_EXITED",
            "processname:feed groupname:feed from_state:STOPPING expected:1 pid:12",
        )
        + event("PROCESS_STATE_FATAL", "processname:engine groupname:engine from_state:BACKOFF")
    )
    stdout = io.StringIO()
    log = tmp_path / "crashes.log"
    serve(stdin, stdout, log)
    # READY before each event, a result after each, READY again at the end of input.
    assert stdout.getvalue() == "READY\nRESULT 2\nOK" * 4 + "READY\n"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["event"], r["process"], r["pid"]) for r in rows] == [
        ("exited", "router", 11),
        ("fatal", "engine", None),
    ]
    assert rows[0]["from_state"] == "RUNNING" and rows[0]["time"].endswith("+05:30")


def test_the_wake_up_writes_until_supervisord_is_gone() -> None:
    import os
    import threading

    from mytrading.process.crashwatch import wake

    r, w = os.pipe()
    writer = os.fdopen(w, "wb", buffering=0)
    t = threading.Thread(target=wake, args=(writer, 0.01), daemon=True)
    t.start()
    first = os.read(r, 1)
    assert first == b"."  # activity on the pipe supervisord polls
    os.close(r)  # supervisord is gone: the next write fails and the thread ends
    t.join(timeout=2)
    assert not t.is_alive()
