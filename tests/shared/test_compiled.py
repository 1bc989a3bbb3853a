"""The compiled build is used only while it is of the sources on disk, only where asked
(``MT_COMPILED=1``), never with ``MT_PURE_PYTHON=1`` (``mytrading/compiled.py``). A build
itself is made by ``main.py compile`` (mypyc, a minute and a half) and measured by
``bench/compiled.py``; these tests read its manifest as a process does."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mytrading import compiled

MODS = ("pkg.hot",)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project with one module and a build of it (its extension an empty stand-in:
    nothing is imported through it here)."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "hot.py").write_text("X = 1\n")
    out = tmp_path / "build" / "compiled"
    (out / "pkg").mkdir(parents=True)
    (out / "pkg" / "hot.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    monkeypatch.setattr(compiled, "ROOT", tmp_path)
    monkeypatch.setattr(compiled, "MODULES", MODS)
    monkeypatch.setitem(compiled._state, "build", compiled.build())  # put back after
    manifest = {"digest": compiled.digest(MODS), "modules": list(MODS),
                "files": {"pkg.hot": "pkg/hot.cpython-311-x86_64-linux-gnu.so"}}  # fmt: skip
    (out / compiled.MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setenv("MT_COMPILED", "1")
    monkeypatch.delenv("MT_PURE_PYTHON", raising=False)
    before = list(sys.meta_path)
    # this process's own finder (a suite run with MT_COMPILED=1) out of the way meanwhile
    sys.meta_path[:] = [f for f in before if not isinstance(f, compiled._Finder)]
    yield out
    sys.meta_path[:] = before  # the test's finder never outlives it


def test_a_current_build_is_found_ahead_of_the_source(tree: Path) -> None:
    assert compiled.install(tree) == "compiled (1 modules, mypyc)"
    finder = sys.meta_path[0]
    spec = finder.find_spec("pkg.hot", None)  # type: ignore[call-arg]
    assert spec is not None and str(spec.origin).endswith(".so")
    assert finder.find_spec("pkg.cold", None) is None  # type: ignore[call-arg]
    compiled.install(tree)
    assert sum(isinstance(f, compiled._Finder) for f in sys.meta_path) == 1  # once


def test_an_edited_source_runs_interpreted(tree: Path) -> None:
    (compiled.ROOT / "pkg" / "hot.py").write_text("X = 2\n")
    assert compiled.install(tree).startswith("interpreted (the compiled build is stale")
    assert not any(isinstance(f, compiled._Finder) for f in sys.meta_path)


def test_a_build_of_another_list_of_modules_runs_interpreted(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module taken off the list (risk's charges, once) is not run from an old build."""
    (compiled.ROOT / "pkg" / "cold.py").write_text("Y = 1\n")
    monkeypatch.setattr(compiled, "MODULES", (*MODS, "pkg.cold"))
    assert compiled.install(tree).startswith("interpreted (the compiled build is stale")


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"MT_PURE_PYTHON": "1"}, "interpreted (MT_PURE_PYTHON)"),
        ({"MT_COMPILED": ""}, "interpreted (the compiled build is opt-in: MT_COMPILED=1)"),
    ],
)
def test_the_source_runs_where_the_build_is_not_asked_for(
    tree: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], said: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert compiled.install(tree) == said
    assert not any(isinstance(f, compiled._Finder) for f in sys.meta_path)


def test_a_build_cut_short_or_missing_runs_interpreted(tree: Path) -> None:
    (tree / "pkg" / "hot.cpython-311-x86_64-linux-gnu.so").unlink()
    assert compiled.install(tree) == "interpreted (the compiled build is incomplete)"
    (tree / compiled.MANIFEST).unlink()  # written last: no manifest, no build
    assert compiled.install(tree).startswith("interpreted (not built")


def test_another_python_is_another_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    here = compiled.digest()
    monkeypatch.setattr(sys, "version", "3.12.0 (other)")
    assert compiled.digest() != here


def test_the_compile_command_says_a_failure_and_pure_removes_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mytrading.commands.main import app

    def no_compiler(*_a: object, **_k: object) -> Path:
        raise RuntimeError("mypyc failed:\nerror: command 'gcc' failed")

    monkeypatch.setattr(compiled, "compile_modules", no_compiler)
    got = CliRunner().invoke(app, ["compile"])
    assert got.exit_code == 1
    assert "not compiled, the stack runs interpreted: mypyc failed" in got.output
    out = tmp_path / "build" / "compiled"
    out.mkdir(parents=True)
    (out / compiled.MANIFEST).write_text("{}")
    monkeypatch.setattr(compiled, "OUT", out)
    got = CliRunner().invoke(app, ["compile", "--pure"])
    assert got.exit_code == 0 and not out.exists(), got.output
