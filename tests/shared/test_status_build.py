"""``main.py status`` says which build each daemon runs, from its own beat (issue 54)."""

from __future__ import annotations

import time

from mytrading import compiled
from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS
from mytrading.process.status import Seen, build_lines
from mytrading.settings import Settings

COMPILED = f"compiled ({len(compiled.MODULES)} modules, mypyc)"


def seen(name: str, **detail: object) -> Seen:
    st = wire.Status(name=name, pid=1, state="running", started_ns=0, uptime_s=1.0, msgs_in=0,
                     msgs_out=0, errors=0, gaps=0, lat_p50_us=0.0, lat_p99_us=0.0,
                     detail=detail)  # fmt: skip
    return Seen(st, time.monotonic())


def test_every_daemon_on_this_checkouts_build_is_one_line() -> None:
    now = compiled.sources()[:12]
    lines = build_lines({d: seen(d, build=COMPILED, build_of=now) for d in DAEMONS})
    assert lines == [f"build: every daemon: {COMPILED}",
                     f"build: a process started now: {compiled.build()}"]  # fmt: skip


def test_a_daemon_on_another_build_or_older_sources_is_named() -> None:
    now = compiled.sources()[:12]
    beats = {d: seen(d, build=COMPILED, build_of=now) for d in DAEMONS}
    beats["feed"] = seen("feed", build="interpreted (MT_PURE_PYTHON)", build_of=now)
    beats["router"] = seen("router", build=COMPILED, build_of="0123456789ab")
    del beats["signals"]  # no beat: not said
    lines = build_lines(beats)
    rest = ", ".join(d for d in DAEMONS if d not in ("feed", "router", "signals"))
    assert "build: feed: interpreted (MT_PURE_PYTHON)" in lines
    assert f"build: {rest}: {COMPILED}" in lines
    assert (f"build: router: {COMPILED} (sources 0123456789ab, the checkout's are now {now}: "
            "a restart runs the new ones)") in lines  # fmt: skip
    assert len(lines) == 4


def test_a_daemons_beat_carries_its_build(settings: Settings) -> None:
    """What the daemon's shell adds to every beat's detail (its sockets in the test's own
    directory)."""
    from mytrading.process.shell import ZmqHost

    host = ZmqHost("feed", settings, 1000, 1000)
    try:
        got = host.health()
    finally:
        host.pub.close()
        host.ctx.destroy(linger=0)
    assert got["build"] == compiled.build()
    assert got["build_of"] == compiled.sources()[:12] and len(got["build_of"]) == 12
