"""Risk's start says its limits in one log line, readable on a console too."""

from __future__ import annotations

import pytest
import structlog

from mytrading.risk.daemon import logged_limits
from mytrading.risk.limits import LimitBook, Limits, StackLimits


def test_the_limits_line_renders_on_a_console() -> None:
    """structlog's console renderer takes a key named ``stack`` for a stack trace: the
    stack's limits there (a dict) broke the line with a logging error at every start of
    a risk daemon outside supervisord at INFO (seen under ``bench/scale.py``)."""
    limits = LimitBook(Limits(), {}, StackLimits()).as_dict()
    render = structlog.dev.ConsoleRenderer(colors=False)
    with pytest.raises(TypeError):  # the line as it was
        render(None, "info", {"event": "risk limits", **limits})
    got = logged_limits(limits)
    assert "stack" not in got and got["stack_limits"] == limits["stack"]
    text = render(None, "info", {"event": "risk limits", **got})
    assert text.startswith("risk limits") and "stack_limits=" in text, text
