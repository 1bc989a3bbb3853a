"""The compiled build is used only while it is of the sources on disk, never with
``MT_PURE_PYTHON=1`` (``mytrading/compiled.py``); a command makes it when it is missing or
stale, once, and a failure is said and remembered. A real build (mypyc, a minute and a
half) is made by ``main.py test`` before the suite and measured by ``bench/compiled.py``;
these tests read its manifest as a process does, and stand a recorded compiler in for
mypyc."""

from __future__ import annotations

import json
import subprocess
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
    monkeypatch.delenv("MT_PURE_PYTHON", raising=False)
    monkeypatch.delenv("MT_AUTO_COMPILE", raising=False)
    before = list(sys.meta_path)
    # this process's own finder (a suite run against the build) out of the way meanwhile
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


def test_the_source_runs_where_the_build_is_declined(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MT_PURE_PYTHON", "1")
    assert compiled.install(tree) == "interpreted (MT_PURE_PYTHON)"
    assert not any(isinstance(f, compiled._Finder) for f in sys.meta_path)
    assert compiled.current(tree)  # there, and another process may use it


def test_a_build_cut_short_or_missing_runs_interpreted(tree: Path) -> None:
    (tree / "pkg" / "hot.cpython-311-x86_64-linux-gnu.so").unlink()
    assert compiled.install(tree) == "interpreted (the compiled build is incomplete)"
    (tree / compiled.MANIFEST).unlink()  # written last: no manifest, no build
    assert compiled.install(tree).startswith("interpreted (not built")


def test_the_finder_imports_nothing_while_asked_of_another_module() -> None:
    """A Python that has not loaded ``importlib.machinery`` before ``import mytrading``
    (the system one, outside the venv) imported it from inside the finder, which asked the
    finder again: a RecursionError instead of the import's own error."""
    code = (
        "import sys; from pathlib import Path; from mytrading import compiled\n"
        "for m in ('importlib.machinery', 'importlib.util'): sys.modules.pop(m, None)\n"
        "sys.meta_path.insert(0, compiled._Finder({'pkg.hot': Path('hot.so')}))\n"
        "import colorsys; print('imported', colorsys.__name__)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=compiled.ROOT, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "imported colorsys"


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


class Compiler:
    """Stands in for mypyc: records each build and writes what a build writes (a manifest
    of the sources now), or fails as a machine without a C compiler does."""

    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.builds = 0

    def __call__(
        self, modules: object = None, out: Path = compiled.OUT, say: object = None
    ) -> Path:
        self.builds += 1
        if self.fails:
            raise RuntimeError("mypyc failed:\nerror: command 'gcc' failed: No such file")
        manifest = json.loads((out / compiled.MANIFEST).read_text())
        manifest["digest"] = compiled.digest()
        (out / compiled.MANIFEST).write_text(json.dumps(manifest))
        return out


def test_a_stale_build_is_made_again_once_then_used(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (compiled.ROOT / "pkg" / "hot.py").write_text("X = 2\n")  # a compiled module edited
    mypyc = Compiler()
    monkeypatch.setattr(compiled, "compile_modules", mypyc)
    assert compiled.ensure(tree, say=lambda _: None) == "compiled (1 modules, mypyc)"
    assert compiled.ensure(tree, say=lambda _: None) == "compiled (1 modules, mypyc)"
    assert mypyc.builds == 1  # later commands pay a digest, not a build


def test_a_failed_build_is_said_once_and_not_tried_again_until_a_source_changes(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (compiled.ROOT / "pkg" / "hot.py").write_text("X = 2\n")
    mypyc = Compiler(fails=True)
    monkeypatch.setattr(compiled, "compile_modules", mypyc)
    said: list[str] = []
    got = compiled.ensure(tree, say=said.append)
    assert got == "interpreted (the build failed: error: command 'gcc' failed: No such file)"
    assert said and "not compiled, the stack runs interpreted" in said[0]
    assert not any(isinstance(f, compiled._Finder) for f in sys.meta_path)
    assert compiled.ensure(tree, say=said.append) == got and mypyc.builds == 1
    (compiled.ROOT / "pkg" / "hot.py").write_text("X = 3\n")  # the next edit tries again
    mypyc.fails = False
    assert compiled.ensure(tree, say=said.append) == "compiled (1 modules, mypyc)"
    assert mypyc.builds == 2


def test_two_commands_started_together_make_one_build(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second waits on the build's lock while the first builds, then finds the build
    current and uses it (``main.py run`` and ``main.py test`` typed in two terminals)."""
    import threading

    started, go = threading.Event(), threading.Event()

    class Slow(Compiler):
        entered = 0

        def __call__(self, modules: object = None, out: Path = compiled.OUT,
                     say: object = None) -> Path:  # fmt: skip
            self.entered += 1
            started.set()
            go.wait(10)
            return super().__call__(modules, out, say)

    (compiled.ROOT / "pkg" / "hot.py").write_text("X = 2\n")
    mypyc = Slow()
    monkeypatch.setattr(compiled, "compile_modules", mypyc)
    got: list[str] = []
    first = threading.Thread(target=lambda: got.append(compiled.ensure(tree, say=print)))
    second = threading.Thread(target=lambda: got.append(compiled.ensure(tree, say=print)))
    first.start()
    assert started.wait(10)
    second.start()
    second.join(0.3)
    assert second.is_alive() and mypyc.entered == 1  # waiting on the lock, not building
    go.set()
    first.join(10)
    second.join(10)
    assert got == ["compiled (1 modules, mypyc)"] * 2 and mypyc.entered == mypyc.builds == 1


@pytest.mark.parametrize("env", [{"MT_AUTO_COMPILE": "0"}, {"MT_PURE_PYTHON": "1"}])
def test_no_build_is_made_where_it_is_declined(
    tree: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    """The suite's own processes (MT_AUTO_COMPILE=0) and the interpreted build."""
    (compiled.ROOT / "pkg" / "hot.py").write_text("X = 2\n")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    mypyc = Compiler()
    monkeypatch.setattr(compiled, "compile_modules", mypyc)
    assert compiled.ensure(tree, say=lambda _: None).startswith("interpreted")
    assert mypyc.builds == 0


def test_the_suite_after_a_compiled_run_runs_what_it_skipped_interpreted() -> None:
    from mytrading.commands.stack import interpreted_pass

    built = "compiled (20 modules, mypyc)"
    assert interpreted_pass([], "interpreted (MT_PURE_PYTHON)") is None
    cmd = interpreted_pass(["-m", "not integration", "-n", "0"], built)
    assert cmd is not None and cmd[-2:] == ["-m", "interpreted_only and (not integration)"]
    assert interpreted_pass([], built)[-2:] == ["-m", "interpreted_only"]  # type: ignore[index]
    assert interpreted_pass(["tests/risk/test_risk_core.py"], built) is None  # its own tests
    assert interpreted_pass(["-k", "parity"], built) is None
