"""Shared fixtures: real reference data from config/, settings isolated in a temp dir."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mytrading import compiled
from mytrading.domain.refdata import RefData, load_refdata
from mytrading.settings import PROJECT_ROOT, Settings, load_settings
from tests.procs import temp_vars

# A test that reads the interpreter's own workings (a profile of Python frames, a method
# patched on a class) proves the source; the compiled build runs the same source as C,
# where neither exists. Such a test runs in the interpreted build only: skipped in a
# compiled run, which `main.py test` follows with a run of these alone under
# MT_PURE_PYTHON=1 (`-m interpreted_only`).
interpreted_only = pytest.mark.interpreted_only

# The suite's own processes (a stack a test starts through main.py) never build: `main.py
# test` made the build before pytest started, and a test must not wait on a compiler.
os.environ["MT_AUTO_COMPILE"] = "0"


@pytest.fixture(scope="session")
def refdata() -> RefData:
    return load_refdata(PROJECT_ROOT / "config")


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Every test leaves the worker's environment as it found it: a test that set
    ``MT_SIM_START`` for its in-process helpers once leaked it into every later test of
    the same xdist worker, and live's refusal of a simulated clock then masked the
    refusals those tests were about (CI of ccd7fe0)."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def tmp_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """MT_* variables that keep logs, sockets and state inside this test's temp dir."""
    # The pid keeps two test runs on one machine (a CI clone beside a working copy) from
    # meeting on the same sockets or the same supervisord; short: ipc socket paths are
    # limited to ~107 bytes.
    env = temp_vars(tmp_path, f"/tmp/mt-{os.getpid()}-{tmp_path.name[-14:]}")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield env


@pytest.fixture
def settings(tmp_env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
def sim_broker(tmp_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A simulator server with fault injection, and the MT_* variables that point a
    router (or any daemon) at it on the same market clock."""
    from tests.simhelpers import KEY, WS_URL, start_server

    anchor = str(time.time_ns())
    proc, host = start_server(
        {"MT_LOG_DIR": tmp_env["MT_LOG_DIR"], "MT_STATE_DIR": tmp_env["MT_STATE_DIR"] + "-sim"},
        MT_SIM_FAULTS="true",
        MT_CLOCK_ANCHOR_NS=anchor,
    )
    env = {
        **tmp_env,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
        "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "1",
        "MT_CLOCK_ANCHOR_NS": anchor,
        "MT_OPENALGO_POLL_S": "0.3",
    }
    yield host, env
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


# The longest tests first: xdist hands tests out in collection order, and a two-minute
# test collected last leaves the other worker idle at the end (the full suite measured
# 669 s against its 10 minutes). Measured with --durations on the 2-core VM, 2026-11-25.
# Only the dozen longest: every test of 10 s or more first (tried 2026-11-26) ran the
# heaviest stacks side by side and was slower (606 s against 603 s).
LONGEST_FIRST = (
    "test_two_hundred_seeded_days_hold_every_invariant",
    "test_stack_trades_reconciles_and_stops_clean",
    "test_a_recorded_paper_session_replays_to_the_same_orders_and_fills",
    "test_kill_9_each_daemon_during_order_flow",
    "test_crash_loop_second_copies_and_a_killed_supervisord",
    "test_each_planted_bug_is_caught_by_its_invariant_and_only_with_it",
    "test_warming_up_many_instruments_under_openalgos_pacing",
    "test_two_hosts_trade_over_curve_and_a_forger_gets_nowhere",
    "test_square_off_at_its_time_and_after_a_restart_past_it_once",
    "test_a_lost_terminal_then_a_dead_pipe_leave_nothing_and_a_second_run_reconciles",
    "test_every_example_strategy_trades_in_the_demo",
    "test_options_held_into_expiry_are_settled_by_broker_router_and_reconciler",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if compiled.build().startswith("compiled"):
        skip = pytest.mark.skip(
            reason="reads Python frames or patches a compiled class: run with MT_PURE_PYTHON=1"
        )
        for it in items:
            if it.get_closest_marker("interpreted_only"):
                it.add_marker(skip)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda it: rank.get(getattr(it, "originalname", it.name), len(rank)))
