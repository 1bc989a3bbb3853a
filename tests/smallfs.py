"""A small file system to fill for the disk-full tests: a tmpfs mounted where the test
says (root only; the caller skips otherwise), a filler file that takes every free byte,
and its removal (space returns)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_fs(at: Path, size: str = "4m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``at`` (created); skip the test where mounting is not
    allowed (not root, or a container without the capability)."""
    at.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(at)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {r.stderr.strip()}")
    try:
        yield at
    finally:
        subprocess.run(["umount", "-l", str(at)], capture_output=True)


def fill_up(at: Path) -> Path:
    """Take every free byte of ``at``'s file system with one file; returns it."""
    filler = at / "filler"
    chunk = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError:
                break
        while True:  # the last partial block
            try:
                os.write(fd, b"\0" * 512)
            except OSError:
                break
    finally:
        os.close(fd)
    return filler
