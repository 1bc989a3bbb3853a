"""A field of ours under a name structlog's console renderer reserves for its own text
(``stack``, ``exception``) reaches both sinks instead of breaking the line
(``logsetup._unreserve``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import structlog

from mytrading.process.logsetup import setup_logging
from mytrading.risk.limits import LimitBook, Limits, StackLimits


def test_a_reserved_name_holding_data_is_logged_on_both_sinks(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Risk's start line carries the stack's limits as ``stack`` (a dict): the console
    renderer took it for a stack trace and every risk started outside supervisord at
    INFO printed a logging error instead of its limits (seen under ``bench/scale.py``)."""
    limits = LimitBook(Limits(), {}, StackLimits()).as_dict()
    render = structlog.dev.ConsoleRenderer(colors=False)
    with pytest.raises(TypeError):  # what the renderer does with it as it comes
        render(None, "info", {"event": "risk limits", **limits})
    before = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging("risk", tmp_path, console=True)
        structlog.get_logger("risk").info("risk limits", **limits, exception={"n": 1})
        for h in logging.getLogger().handlers:
            h.flush()
        err = capfd.readouterr().err
        assert "Logging error" not in err and "TypeError" not in err, err
        assert "risk limits" in err and "stack_value=" in err, err
        (line,) = (tmp_path / "risk.log").read_text().splitlines()
        got = json.loads(line)
        assert got["stack_value"] == limits["stack"] and got["exception_value"] == {"n": 1}
        assert "stack" not in got and "exception" not in got
        # a string is the renderer's own (a trace someone formatted): left as it is
        structlog.get_logger("risk").info("traced", stack="Stack (most recent call last)")
        assert "Stack (most recent call last)" in capfd.readouterr().err
    finally:
        for h in logging.getLogger().handlers:
            h.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**before)
