"""A stuck hook is contained (``engine/watchdog.py``): a ``while True``, a 30 s sleep and a
network read without a timeout are each interrupted at the soft deadline and their
strategy quarantined while another keeps trading; a hook the signal cannot stop (it
catches ``BaseException``) ends its process at the hard deadline, leaving the evidence
that names it; a ``kill -9`` blames nobody."""

from __future__ import annotations

import mmap
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mytrading.domain.refdata import RefData
from mytrading.engine.strategy import BaseStrategy
from mytrading.engine.watchdog import HookDeadline, mark_stuck, stuck_at_last_exit, stuck_today
from mytrading.messaging import wire
from tests.engine.test_strategy_runner import FUT, LOT, Healthy, Rig


class Spins(BaseStrategy):
    name = "spins"

    def on_start(self) -> None:
        self.subscribe_ticks("NFO", FUT)

    def on_tick(self, tick: wire.Tick) -> None:
        n = 0
        while True:  # swallowing Exception does not keep it alive
            try:  # noqa: SIM105 - the pattern a strategy author writes
                n += 1
            except Exception:
                pass


class Sleeps(Spins):
    name = "sleeps"

    def on_tick(self, tick: wire.Tick) -> None:
        time.sleep(30)


class Waits(Spins):
    name = "waits"

    def on_tick(self, tick: wire.Tick) -> None:
        a, b = socket.socketpair()  # a read nobody answers, no timeout
        try:
            a.recv(1)
        finally:
            a.close()
            b.close()


@pytest.fixture
def timed(refdata: RefData, tmp_path: Path) -> Iterator[tuple[Rig, HookDeadline]]:
    """A runner whose hooks run under a 0.3 s soft deadline (closed after the test)."""
    rig = Rig(refdata)
    deadline = HookDeadline(tmp_path, 0.3, 30.0)
    rig.runner.deadline = deadline
    try:
        yield rig, deadline
    finally:
        deadline.close()


@pytest.mark.parametrize("stuck", [Spins, Sleeps, Waits])
def test_a_stuck_hook_is_interrupted_and_the_others_trade(
    refdata: RefData, tmp_path: Path, stuck: type[BaseStrategy]
) -> None:
    rig = Rig(refdata)
    deadline = HookDeadline(tmp_path, 0.3, 30.0)
    rig.runner.deadline = deadline
    try:
        rig.runner.add(stuck, {})
        rig.runner.add(Healthy, {})
        rig.runner.start()
        t0 = time.monotonic()
        for i in range(4):
            rig.tick(rig.clock.at(10, 0, i), 100.0)
        took = time.monotonic() - t0
    finally:
        deadline.close()
    assert took < 2.0  # one interruption (0.3 s), then its hooks are off
    stats = rig.runner.stats()
    assert "hook was stuck" in stats[stuck.name]["quarantined"], stats[stuck.name]
    assert "ran over 0.3s" in stats[stuck.name]["last_error"]
    assert sum(1 for i in rig.sent if i.strategy == "healthy") == 4  # kept trading
    assert deadline.timeouts == 1 and stats["healthy"]["quarantined"] == ""
    assert rig.sent[0].quantity == LOT
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL  # closed: nothing left armed


class SlowOnFill(Healthy):
    """Buys once; its ``on_fill`` and ``on_order_update`` hang."""

    name = "slow_on_fill"

    def on_tick(self, tick: wire.Tick) -> None:
        if not self.context.open_orders and not self.position("NFO", FUT):
            self.buy("NFO", FUT, LOT)

    def on_fill(self, fill: wire.Fill) -> None:
        time.sleep(30)

    def on_order_update(self, update: wire.OrderUpdate) -> None:
        time.sleep(30)


def test_a_fill_is_booked_whole_before_its_hook_can_be_stuck(
    timed: tuple[Rig, HookDeadline],
) -> None:
    """The engine's books of a fill and an update are done before the author's hook runs
    under the deadline: a hook interrupted there leaves the position, the fill count and
    the open orders right, and the quarantined strategy's later fills are booked too."""
    rig, deadline = timed
    strat = rig.runner.add(SlowOnFill, {})
    rig.runner.start()
    rig.tick(rig.clock.at(10, 0), 100.0)
    (intent,) = rig.sent
    t0 = time.monotonic()
    rig.fill(intent, LOT // 2, 100.0, final=False)  # stuck in on_fill: quarantined
    rig.fill(intent, LOT - LOT // 2, 101.0)  # hooks off; booked, the order done
    took = time.monotonic() - t0
    assert took < 2.0 and deadline.timeouts == 1
    st = rig.runner.stats()["slow_on_fill"]
    assert "hook was stuck" in st["quarantined"]
    assert st["fills"] == 2 and st["positions"] == {f"NFO:{FUT}": LOT}
    assert st["open_orders"] == 0 and strat.position("NFO", FUT) == LOT


def test_slow_bookkeeping_is_never_taken_for_a_stuck_hook(
    timed: tuple[Rig, HookDeadline], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline times the author's code only: the engine's own booking of a fill, slow
    on a loaded machine (here 0.5 s against a 0.3 s deadline), is not interrupted half
    done and blames no strategy."""
    rig, deadline = timed
    strat = rig.runner.add(Healthy, {})
    rig.runner.start()
    rig.tick(rig.clock.at(10, 0), 100.0)
    intent = rig.sent[0]
    ledger = strat.context.ledger
    apply = ledger.apply

    def slow_apply(*a: object) -> None:
        time.sleep(0.5)
        apply(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "apply", slow_apply)
    rig.fill(intent, LOT, 100.0)
    st = rig.runner.stats()["healthy"]
    assert deadline.timeouts == 0 and st["quarantined"] == ""
    assert st["fills"] == 1 and st["positions"] == {f"NFO:{FUT}": LOT} and st["hook_errors"] == 0


_UNSTOPPABLE = """
import sys, time
from pathlib import Path
from mytrading.engine.watchdog import HookDeadline
d = HookDeadline(Path(sys.argv[1]), 0.2, 1.0)
d.arm("greedy", "bar")
while True:
    try:
        time.sleep(0.05)
    except BaseException:  # swallows even the timeout: only the process's end stops it
        pass
"""


def test_an_unstoppable_hook_ends_its_process_and_is_named(tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_UNSTOPPABLE), str(tmp_path)], timeout=30
    )
    assert r.returncode != 0 and time.monotonic() - t0 < 10
    found = stuck_at_last_exit(tmp_path)
    assert found is not None and found[:2] == ("greedy", "bar")
    assert "time.sleep" in found[2] or "line" in found[2]  # every thread's traceback
    assert stuck_at_last_exit(tmp_path) is None  # read once
    mark_stuck(tmp_path, "2026-11-20", "greedy", "stuck")
    assert stuck_today(tmp_path, "2026-11-20") == {"greedy": "stuck"}
    assert stuck_today(tmp_path, "2026-11-21") == {}  # a new day tries it again


def test_a_kill_inside_a_hook_blames_nobody(tmp_path: Path) -> None:
    code = (
        "import sys, time\nfrom pathlib import Path\n"
        "from mytrading.engine.watchdog import HookDeadline\n"
        "d = HookDeadline(Path(sys.argv[1]), 5, 10)\nd.arm('innocent', 'tick')\n"
        "print('armed', flush=True)\ntime.sleep(30)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline().strip() == b"armed"
    p.kill()
    p.wait(timeout=10)
    assert stuck_at_last_exit(tmp_path) is None


class Hog(Spins):
    name = "hog"

    def on_start(self) -> None:
        super().on_start()
        self.kept: list[mmap.mmap] = []

    def on_tick(self, tick: wire.Tick) -> None:
        self.kept.append(resident(HOG_CHUNK))  # 20 MiB a tick, never let go


HOG_CHUNK = 20 * 2**20


def resident(size: int) -> mmap.mmap:
    """``size`` bytes certainly resident: a mapping of its own (not heap memory the
    allocator may hand back from what an earlier test freed, which adds nothing to the
    RSS), every page written (a zero page need not be resident until written), and given
    back to the system when dropped."""
    m = mmap.mmap(-1, size)
    for offset in range(0, size, mmap.PAGESIZE):
        m[offset] = 1
    return m


def test_memory_is_attributed_to_the_hook_that_grew_it_and_released(
    refdata: RefData,
) -> None:
    from mytrading.engine.watchdog import rss_bytes

    rig = Rig(refdata)
    rig.runner.add(Hog, {})
    rig.runner.add(Healthy, {})
    rig.runner.start()
    rig.runner.mem_probe = rss_bytes
    for i in range(3):
        rig.tick(rig.clock.at(10, 0, i), 100.0)
    rig.runner.mem_probe = None
    grew = {n: h.mem_grew for n, h in rig.runner.health.items()}
    # three chunks certainly resident: 60 MiB, less what else the process gave back meanwhile
    assert grew["hog"] >= 3 * HOG_CHUNK - 8 * 2**20 and grew["healthy"] < 5 * 2**20, grew
    before = rss_bytes()
    rig.runner.quarantine("hog", "memory")
    rig.runner.release("hog")
    assert not hasattr(rig.runner.strategies["hog"], "kept")  # what it allocated is gone
    assert rss_bytes() < before - 3 * HOG_CHUNK + 10 * 2**20  # ... back to the system
    assert rig.runner.strategies["hog"].context is rig.runner.contexts["hog"]  # books kept
