"""The build a test's own process does not run, for the golden tests that compare the two
(issue 54: the same results compiled and interpreted)."""

from __future__ import annotations

import os

import pytest

from mytrading import compiled


def other_build() -> tuple[str, dict[str, str]]:
    """The name of the build this process does not run and the environment that runs it in
    a child process. Without a current compiled build there is no other: skipped, or a
    failure where ``REQUIRE_COMPILED`` is set (CI)."""
    if compiled.build().startswith("compiled"):
        return "interpreted", {"MT_PURE_PYTHON": "1"}
    if compiled.current():
        return "compiled", {"MT_PURE_PYTHON": ""}
    why = f"no compiled build to compare with: {compiled.build()}"
    if os.environ.get("REQUIRE_COMPILED"):
        pytest.fail(why)
    pytest.skip(why)
