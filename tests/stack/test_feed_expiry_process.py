"""Over an expiry: a contract past its expiry day is neither subscribed nor counted in the
feed's coverage, though a daemon still declares it (found by the soak: after a Tuesday
expiry the feed counted the expired weekly options as stale, 59/111 fresh, an error
every expiry day)."""

from __future__ import annotations

import signal

import pytest
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher
from mytrading.messaging.interest import entry
from mytrading.settings import Settings
from tests.procs import Watcher, spawn


@pytest.mark.integration
def test_expired_contracts_are_not_subscribed_or_counted(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    # 2026-11-24 is a holiday: the 23rd's weekly NIFTY options expired; the next session
    # is the 25th. One of them and a live future are declared.
    expired, live = "NIFTY23NOV2624000CE", "NIFTY29DEC26FUT"
    env = {**tmp_env, "MT_SIM_START": "2026-11-25T10:00", "MT_SIM_SPEED": "1"}
    w = Watcher(settings, ("sys.status.",))
    ctx = zmq.Context()
    asks = Pusher(ctx, settings.endpoints()["pipe.interest"], "chain", "interest")
    feed = spawn("feed", env)
    try:
        w.wait(lambda: "feed" in w.status, 30, "the feed")
        before = w.status["feed"].detail["instruments"]
        msg = wire.Interest(wants=[entry("NFO", expired), entry("NFO", live)])
        # the pipe is IMMEDIATE: a send before it has connected to the feed says False
        w.wait(lambda: asks.send(msg), 5, "the interest sent")
        w.wait(lambda: w.status["feed"].detail["instruments"] == before + 1, 20, "the live one")
        w.pump(6.0)
        d = w.status["feed"].detail
        assert d["instruments"] == before + 1  # the expired one left out
        fresh, total = d["coverage"].split()[0].split("/")
        assert int(total) == before + 1 and int(fresh) == int(total), d["coverage"]
    finally:
        asks.close()
        ctx.term()
        feed.send_signal(signal.SIGTERM)
        feed.wait(timeout=15)
        w.close()
