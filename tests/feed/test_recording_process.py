"""The feed, running, lets its recording go once it has had nothing to write for
``MT_RECORD_IDLE_S`` (after the close of a real market: ticks stop until the next open),
and says so on its heartbeat: a reader in another process (the day's shadow, ``main.py
data``) opens the file while the stack runs. The simulator's clock jumps from the close to
the next open, so its ticks never stop: here it lists no instrument (no underlying, no
stock), and the feed has nothing to write. ``tests/shared/test_recording_release.py``
proves the writer's side with ticks: let go, held by a reader, what came meanwhile written
once it lets go, none lost."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from mytrading.settings import load_settings
from tests.procs import Watcher, spawn
from tests.shared.test_recording_release import reader


@pytest.mark.integration
def test_the_running_feed_lets_the_recording_go_after_the_close(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        **tmp_env,
        "MT_SIM_UNDERLYINGS": "",  # with MT_SIM_STOCKS "" (tmp_env's): nothing trades
        "MT_RECORD_IDLE_S": "2",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    w = Watcher(load_settings(), ("sys.status.",))
    feed = spawn("feed", env)
    try:
        w.wait(lambda: w.status.get("feed") is not None, 30, "the feed's heartbeat")
        w.wait(lambda: w.status["feed"].detail.get("recording_open") is False, 30,
               "the idle recording let go")  # fmt: skip
        with reader(Path(env["MT_RECORD_DB"])) as seen:  # opened while the feed runs
            assert seen == 0 == w.status["feed"].detail["recorded_ticks"]
        w.pump(1.5)  # a heartbeat or so: the feed runs on, the file still free
        assert feed.poll() is None and w.status["feed"].detail["record_errors"] == 0
    finally:
        feed.send_signal(signal.SIGTERM)
        assert feed.wait(timeout=10) == 0
        w.close()
