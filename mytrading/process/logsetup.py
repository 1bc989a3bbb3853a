"""structlog: JSON lines to ``logs/<daemon>.log``, readable lines on the console.

The file rotates by size (``MT_LOG_MAX_MB``, keeping ``MT_LOG_BACKUPS`` older files as
``<daemon>.log.1`` ...) and rotated files older than ``MT_LOG_KEEP_DAYS`` are deleted at
each rotation and each start: a daemon's logs never take more than
``MT_LOG_MAX_MB * (MT_LOG_BACKUPS + 1)``. One process writes each file, so Python's own
rotating handler is safe here.

A redaction step removes anything that looks like a credential before either sink sees it,
so an API key can never reach a log file, whoever logs it.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import structlog

from mytrading.domain.refdata import IST

_SECRET_KEYS = ("apikey", "api_key", "password", "secret", "token")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for k in list(event):
        if any(s in k.lower() for s in _SECRET_KEYS):
            event[k] = "***"
    return event


# keys structlog's console renderer reads as text of its own (a stack trace, a formatted
# exception): a field of ours under one of those names, not a string, broke the line with
# a logging error ("risk limits" carried the stack's limits as ``stack``)
_RESERVED = ("stack", "exception")


def _unreserve(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for k in _RESERVED:
        if k in event and not isinstance(event[k], str):
            event[f"{k}_value"] = event.pop(k)
    return event


def _timestamp(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    event["timestamp"] = datetime.now(IST).isoformat(timespec="microseconds")
    return event


class Rotation(NamedTuple):
    max_mb: float = 20.0
    backups: int = 5
    keep_days: float = 14.0


class AgedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotation by size, and rotated files past an age deleted."""

    def __init__(self, path: Path, max_bytes: int, backups: int, keep_days: float) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.keep_s = keep_days * 86400
        self.prune()

    def doRollover(self) -> None:  # noqa: N802 - logging's name
        super().doRollover()
        self.prune()

    def prune(self) -> int:
        """Delete rotated files older than the age kept; how many."""
        base = Path(self.baseFilename)
        cutoff = time.time() - self.keep_s
        gone = 0
        for old in base.parent.glob(base.name + ".*"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
                    gone += 1
            except OSError:
                continue
        return gone


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Errors only while the block runs (a backtest's risk refusals, in a notebook's cell or
    a sweep worker); the caller's structlog configuration comes back after, so a research
    call in a test process leaves the next test's log capture as it was."""
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    try:
        yield
    finally:
        structlog.configure(**before)


def setup_logging(
    name: str,
    log_dir: Path,
    level: str = "INFO",
    console: bool | None = None,
    rotation: Rotation | None = None,
) -> None:
    """JSON lines to ``<log_dir>/<name>.log`` (rotated), and a readable copy on stderr
    when ``console`` (default: only when not under supervisord, which would write every
    line a second time into ``<name>.console.log``; that file keeps what the process
    prints outside logging: a crash's traceback, faulthandler's dump)."""
    if console is None:
        console = os.environ.get("SUPERVISOR_ENABLED") != "1"
    rot = rotation or Rotation()
    log_dir.mkdir(parents=True, exist_ok=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _timestamp,
        _redact,
        _unreserve,
    ]
    structlog.configure(
        # filter_by_level first: a disabled call (an INFO per order at level WARNING) then
        # costs one level check instead of the whole chain; the hot path logs per order.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    # Transport chatter (a line per HTTP request, per websocket frame) only at DEBUG: an
    # operator tails these files for order actions and broker state changes.
    for chatty in ("httpx", "httpcore", "websocket", "urllib3", "aiohttp.access"):
        logging.getLogger(chatty).setLevel(level if level == "DEBUG" else "WARNING")
    # websocket-client logs every failed connection as an ERROR ("... - goodbye"): a
    # server still starting is no error. Our clients say it themselves, as a warning, and
    # an error once their retries are spent (openalgo/ws.py).
    if level != "DEBUG":
        logging.getLogger("websocket").setLevel("CRITICAL")

    fh = AgedRotatingFileHandler(
        log_dir / f"{name}.log", int(rot.max_mb * 2**20), rot.backups, rot.keep_days
    )
    fh.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root.addHandler(fh)
    if console:
        ch = logging.StreamHandler(sys.stderr)
        ch.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=shared,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.dev.ConsoleRenderer(
                        colors=sys.stderr.isatty(),
                        exception_formatter=structlog.dev.plain_traceback,
                    ),
                ],
            )
        )
        root.addHandler(ch)
    structlog.contextvars.bind_contextvars(daemon=name)
