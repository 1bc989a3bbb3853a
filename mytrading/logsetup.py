"""structlog: JSON lines to ``logs/<daemon>.log``, readable lines on the console.

A redaction step removes anything that looks like a credential before either sink sees it,
so an API key can never reach a log file, whoever logs it.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from mytrading.refdata import IST

_SECRET_KEYS = ("apikey", "api_key", "password", "secret", "token")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for k in list(event):
        if any(s in k.lower() for s in _SECRET_KEYS):
            event[k] = "***"
    return event


def _timestamp(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    event["timestamp"] = datetime.now(IST).isoformat(timespec="microseconds")
    return event


def setup_logging(name: str, log_dir: Path, level: str = "INFO", console: bool = True) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _timestamp,
        _redact,
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

    fh = logging.FileHandler(log_dir / f"{name}.log", encoding="utf-8")
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
