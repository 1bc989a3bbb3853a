"""A strategy's table in ``config/strategies.toml``, changed by the command layer: turned on
or off (``enabled``) or given new parameters, each change checked as ``config check``
checks it before a byte is written, and written so that a restart keeps it.

The file is edited with tomlkit, so the operator's comments and layout stay; it is
replaced whole (a temporary file beside it, then a rename), so a reader never sees half
of it and a crash leaves the old file or the new one.

Every change is a read-modify-write under an exclusive lock (``flock`` on a lock file
beside it: the file itself is replaced at each write), so the command line, the HTTP
API and the Telegram bot, each its own process, never lose one another's change. A
change that must reach the running stack (``change``) is written and handed over under
the same lock, and put back as it was when the hand-over fails: "nothing was changed"
is then true of the file as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import tomlkit
from pydantic import ValidationError

from mytrading.domain.errors import problems
from mytrading.settings import NOT_PARAMS, Settings

# ``mytrading.engine.loader`` is imported where a strategy is read, not here: it brings the
# strategy base and its indicators (numba, pandas, TA-Lib), 1.1 s of the monitor's start
# (it serves the control API) for a command an operator gives now and then.


class StrategyFile:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.config_dir / "strategies.toml"

    def names(self) -> list[str]:
        """Every strategy a file in ``strategies/`` declares."""
        from mytrading.engine.loader import declared

        return sorted(declared(self.settings.strategies_dir)[0])

    def problem(self, name: str, changes: dict[str, Any] | None = None) -> str:
        """Why the strategy, with ``changes`` to its parameters, would not load ("" when
        it would): the class found and its parameters validated, as ``config check``
        does; a parameter ``MT_STRATEGY_PARAMS`` sets (it wins over the file) refused."""
        from mytrading.engine.loader import StrategyLoadError, check

        s = self.settings
        if name not in self.names():
            return f"no strategy {name!r} in strategies/; there are: {', '.join(self.names())}"
        try:
            cls = check(s.strategies_dir, [name])[0]
        except StrategyLoadError as exc:
            return str(exc)
        changes = changes or {}
        bad = sorted(set(changes) & NOT_PARAMS)
        if bad:
            return f"{', '.join(bad)}: not a parameter (the schedule is edited in the file)"
        pinned = sorted(set(changes) & set(s.strategy_params.get(name, {})))
        if pinned:
            return (
                f"{', '.join(pinned)}: set by MT_STRATEGY_PARAMS, which wins over "
                "config/strategies.toml: change it there"
            )
        try:
            cls.Params(**{**s.params_for(name), **changes})
        except ValidationError as exc:
            return problems(exc, "params")
        return ""

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The file's lock, held by one writer at a time across processes."""
        lock = self.path.parent / f".lock-{self.path.name}"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # the lock goes with the descriptor

    def write(
        self, name: str, enabled: bool | None = None, params: dict[str, Any] | None = None
    ) -> None:
        """Set ``enabled`` and/or parameters in the strategy's table (made if missing)."""
        with self.locked():
            self._write(name, enabled, params)

    def change(
        self,
        name: str,
        send: Callable[[], bool],
        enabled: bool | None = None,
        params: dict[str, Any] | None = None,
    ) -> bool:
        """``write``, then ``send`` (the command that makes the stack take it up), both under
        the lock; when ``send`` says it could not hand the command over (or raises), the
        file is put back byte for byte. Returns what ``send`` returned."""
        with self.locked():
            before = self.path.read_bytes() if self.path.exists() else None
            self._write(name, enabled, params)
            sent = False
            try:
                sent = send()
            finally:
                if not sent:
                    self._restore(before)
            return sent

    def _restore(self, before: bytes | None) -> None:
        if before is None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        self._replace(before.decode())

    def _write(self, name: str, enabled: bool | None, params: dict[str, Any] | None) -> None:
        doc = tomlkit.parse(self.path.read_text()) if self.path.exists() else tomlkit.document()
        table = doc.get(name)
        if table is None:
            table = tomlkit.table()
            doc[name] = table
        if enabled is not None:
            table["enabled"] = enabled
        for k, v in (params or {}).items():
            table[k] = v
        self._replace(tomlkit.dumps(doc))

    def _replace(self, text: str) -> None:
        """The file replaced whole: a temporary file beside it, flushed, then renamed."""
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
        fd, tmp = tempfile.mkstemp(prefix=".strategies.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def parse_values(pairs: list[str]) -> dict[str, Any] | str:
    """``KEY=VALUE`` words (a command line's, a chat message's) as parameters, each value
    read as a TOML value (``8``, ``2.5``, ``true``, ``"NIFTY"``; a bare word is a
    string), or what is wrong with them."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq or not key or not raw:
            return f"{pair!r}: give KEY=VALUE (e.g. fast=8)"
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw  # a bare word: a string
    return out
