"""The day's shadow for the end-of-day report: ``main.py backtest shadow --day D --json``
in a child process, which the monitor's loop starts and looks at without waiting.

The shadow is a backtest of the day over its recordings (2 s of CPU for the demo's
seven strategies, ``bench/shadow.py``): in the monitor's own process it would stop the
dashboard, the control API and every alert for as long. A child also reads the day as
anyone would from a shell, so the report's figures are the command's, to the paisa.

While the running feed holds the recording and has not yet copied the finished day to a
file of its own (the simulated market: at the next day's first ticks), the command exits
``SHADOW_LATER``; it is asked again every ``RETRY_S`` until ``timeout_s``. Whatever ends
the run (an answer, a refusal, the time up) is an ``Outcome``: the report is written
with it, the shadow's section saying why it is missing when it is.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

from mytrading.shadow import SHADOW_LATER

ROOT = Path(__file__).resolve().parents[2]
RETRY_S = 5.0
TIMEOUT_S = 300.0  # a desk's day of many strategies; the demo's takes about 2 s


@dataclass(frozen=True)
class Outcome:
    got: dict[str, Any] | None  # the command's JSON (``ShadowDay.to_json``)
    why_not: str = ""  # when ``got`` is None: what the command said, or the time up


class ShadowRun:
    """One day's shadow, run to an ``Outcome`` by calls to ``step`` from the loop."""

    def __init__(
        self,
        day: date,
        out_dir: Path,
        env: dict[str, str] | None = None,
        timeout_s: float = TIMEOUT_S,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.day = day
        self.out = out_dir / f"shadow-{day}.json"
        self.errors = out_dir / f"shadow-{day}.log"
        self.env = env
        self.retry_s = retry_s
        self.clock = clock
        self.deadline = clock() + timeout_s
        self.timeout_s = timeout_s
        self.tries = 0
        self._next_try = clock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    def argv(self) -> list[str]:
        return [sys.executable, str(ROOT / "main.py"), "backtest", "shadow",
                "--day", self.day.isoformat(), "--json"]  # fmt: skip

    def step(self) -> Outcome | None:
        """Start, look at or end the run; its ``Outcome`` once it is over, else None."""
        now = self.clock()
        if self._proc is None:
            if now >= self.deadline:
                return Outcome(None, self._late(self._said() or "the recording stayed held"))
            if now >= self._next_try:
                try:
                    self._start()
                except OSError as exc:  # no process could be made (no memory, no pids)
                    self.close()
                    return Outcome(None, f"the shadow's process could not start: {exc}")
            return None
        rc = self._proc.poll()
        if rc is None:
            if now < self.deadline:
                return None
            self.close()
            return Outcome(None, self._late("the shadow was still running"))
        self._close_files()
        self._proc = None
        if rc == 0:
            try:
                got = json.loads(self.out.read_text())
            except (OSError, ValueError) as exc:
                return Outcome(None, f"its answer could not be read ({exc})")
            return Outcome(got if isinstance(got, dict) else None, "" if isinstance(got, dict)
                           else "its answer was not an object")  # fmt: skip
        if rc == SHADOW_LATER:
            self._next_try = now + self.retry_s
            return None
        return Outcome(None, self._said() or f"the command exited {rc}")

    def _start(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._files = [self.out.open("wb"), self.errors.open("wb")]
        self.tries += 1
        self._proc = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=self._files[0],
            stderr=self._files[1],
            env=self.env,
            cwd=ROOT,
        )

    def _said(self) -> str:
        """The command's refusal (a console wraps it over lines), as one line; else its
        last line."""
        try:
            text = self.errors.read_text(errors="replace")
        except OSError:
            return ""
        _, refused, why = text.rpartition("shadow refused:")
        if refused:
            return " ".join(why.split())
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def _late(self, what: str) -> str:
        return f"not made within {self.timeout_s:.0f} s ({what}; {self.tries} tries)"

    def _close_files(self) -> None:
        for f in self._files:
            f.close()
        self._files = []

    def close(self) -> None:
        """End a run still going (the monitor stops, or the time is up)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
        self._proc = None
        self._close_files()
