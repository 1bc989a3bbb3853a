"""The command layer's thread (the Telegram bot's): a failure while it reads the bus is
logged and the thread goes on; one it cannot go on from answers every waiting and later
command with the reason, so the bot never waits for ever."""

from __future__ import annotations

from pathlib import Path

import pytest

from mytrading.control.actions import Answer, Caller, Control
from mytrading.control.stackthread import StackThread
from mytrading.messaging import wire


class _View:
    def __init__(self, fail: list[BaseException]) -> None:
        self.fail = fail  # raised by the next refreshes, one each

    def daemons(self) -> dict[str, wire.Status]:
        return {}

    def positions(self) -> list[wire.PositionSnapshot]:
        return []

    def fills(self) -> list[wire.Fill] | None:
        return []

    def send(self, cmd: wire.Command) -> bool:
        return False

    def refresh(self, seconds: float) -> None:
        if self.fail:
            raise self.fail.pop(0)


def _ask(stack: StackThread) -> Answer:
    return stack.submit(Caller("telegram:1", "telegram"), Control.status).result(timeout=10)


def test_a_failed_read_of_the_bus_is_logged_and_the_thread_goes_on(tmp_path: Path) -> None:
    stack = StackThread(lambda: _View([OSError("a socket went away")]),
                        tmp_path / "control.sqlite", lambda: [])  # fmt: skip
    stack.start()
    try:
        assert _ask(stack).text == "no daemon is running"  # answered
        assert stack.errors == 1
    finally:
        stack.stop()


def test_a_thread_that_ends_answers_every_command_with_why(tmp_path: Path) -> None:
    stack = StackThread(lambda: _View([SystemExit("a library gave up")]),
                        tmp_path / "control.sqlite", lambda: [])  # fmt: skip
    stack.start()
    stack._thread.join(10)
    assert not stack._thread.is_alive()
    with pytest.raises(RuntimeError, match="the command thread has stopped"):
        _ask(stack)  # at once, not a wait for ever
