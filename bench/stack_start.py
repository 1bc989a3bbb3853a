#!/usr/bin/env python3
"""What a stack costs to start, and to keep running: the CPU seconds each process of a
test-sized stack used from ``main.py start`` to ``--settle`` seconds later, then its share
of a core over the next ``--window`` seconds (issue 52: the suite's process tests start such
stacks, single daemons and servers many dozens of times).

The stack is the process tests' (``tests/procs.py`` ``stack_env``): the simulator server
at 60x market speed, the indices only, one strategy, everything in a temp dir; the CPU is
read from ``/proc/<pid>/stat`` of every process that carries the stack's run directory.

    .venv/bin/python bench/stack_start.py [--settle 8] [--window 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mytrading.commands.stack import bytecode_kept  # noqa: E402
from tests.procs import stack_vars, temp_vars  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def stack_env(base: Path) -> dict[str, str]:
    """The process tests' stack (``tests/procs.py``: ``tmp_env`` and ``stack_env``) under
    ``base``, with the bytecode cache on, as ``main.py test`` runs it."""
    env = bytecode_kept(os.environ)
    return {**env, **stack_vars(temp_vars(base, f"/tmp/mt-bench-{os.getpid()}"))}


def processes(run_dir: str) -> dict[int, tuple[str, float]]:
    """pid -> (what it runs, CPU seconds so far) of every process of this stack."""
    out: dict[int, tuple[str, float]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if run_dir.encode() not in Path(f"/proc/{pid}/environ").read_bytes():
                continue
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone, or not ours to read
            continue
        name = next((a.decode() for a in argv[2:3]), "?") if b"-m" in argv else argv[0].decode()
        out[int(pid)] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settle", type=float, default=8.0)
    ap.add_argument("--window", type=float, default=30.0)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mt-stack-start-"))
    env = stack_env(base)
    cli = [sys.executable, str(ROOT / "main.py")]
    try:
        t0 = time.perf_counter()
        r = subprocess.run([*cli, "start"], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr, file=sys.stderr)
            return 1
        print(f"main.py start returned in {time.perf_counter() - t0:.1f} s")
        time.sleep(args.settle)
        first = processes(env["MT_RUN_DIR"])
        t1 = time.perf_counter()
        time.sleep(args.window)
        second = processes(env["MT_RUN_DIR"])
        dt = time.perf_counter() - t1
        print(f"{'process':<28} {'CPU-s to start':>15} {'cores running':>14}")
        for pid, (name, cpu) in sorted(first.items(), key=lambda kv: kv[1][0]):
            later = second.get(pid, (name, cpu))[1]
            print(f"{name:<28} {cpu:>15.2f} {(later - cpu) / dt:>14.3f}")
        start_cpu = sum(c for _, c in first.values())
        running = sum(second.get(p, (n, c))[1] - c for p, (n, c) in first.items()) / dt
        print(f"{'the stack':<28} {start_cpu:>15.2f} {running:>14.3f}")
        print(f"(CPU-s to start: used from start to {args.settle:g} s after; cores running: "
              f"over the next {args.window:g} s)")  # fmt: skip
        return 0
    finally:
        subprocess.run([*cli, "stop"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
