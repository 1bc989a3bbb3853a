"""One copy per checkout (the lock), the parent watch, and a status view whose output dies."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mytrading.commands.stack import _Output
from mytrading.process import instance
from mytrading.settings import PROJECT_ROOT

HOLD = """
import sys, time
from pathlib import Path
from mytrading.process import instance
lock = instance.acquire(Path(sys.argv[1]), "router")
print("held", flush=True)
time.sleep(600)
"""


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path: Path) -> None:
    path = instance.lock_path(tmp_path, "router")
    assert instance.holder(path) is None  # no file yet
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE
    )
    try:
        assert p.stdout is not None and p.stdout.readline() == b"held\n"
        assert instance.holder(path) == p.pid
        assert instance.holders(tmp_path, ("router", "risk")) == {"router": p.pid}
        with pytest.raises(instance.AlreadyRunningError) as exc:
            instance.acquire(tmp_path, "router")
        assert exc.value.pid == p.pid and f"pid {p.pid}" in str(exc.value)
        assert instance.holder(path) == p.pid  # asking took nothing from the holder
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    # kill -9 leaves the file behind, and it blocks nothing: the kernel dropped the lock.
    assert path.exists() and instance.holder(path) is None
    lock = instance.acquire(tmp_path, "router")
    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()


def test_the_parent_watch() -> None:
    assert not instance.parent_gone(os.getppid())
    assert instance.parent_gone(os.getppid() + 1)  # re-parented
    assert instance.parent_gone(1)  # the parent had died before we could ask


def test_a_status_view_whose_pipe_is_gone_reports_it_once_and_goes_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r, w = os.pipe()
    os.close(r)  # the reader (a `| tee` killed by Ctrl-C) is gone
    out_stream = io.TextIOWrapper(os.fdopen(w, "wb", buffering=0), write_through=True)
    monkeypatch.setattr(sys, "stdout", out_stream)
    monkeypatch.setattr(sys, "stderr", out_stream)
    out = _Output()
    assert out.write("view\n") is False and out.dead
    assert out.write("stopping ...\n") is False  # no second error, no traceback
    out_stream.write("the exit flush lands in /dev/null\n")  # the fd now points there
    out_stream.close()
