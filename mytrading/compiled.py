"""The hot modules run as C: built with mypyc from the same typed source, used only while
they match it (issue 54).

The build (``MODULES``, compiled with mypyc from the project's own strict typing) lives in
``build/compiled/`` beside the project, with a manifest naming the digest of the sources
and the interpreter it was made from. ``python3 main.py run|start|test|backtest|...``
makes it when it is missing or stale (``ensure``: a minute and a half on 2 cores, once;
later runs pay a digest of 20 files), and ``python3 main.py compile`` makes it on demand.
A process imports the compiled modules when, at its first ``import mytrading`` (before
any module it compiles: a compiled module handed an interpreted copy of another's class
refuses it), the manifest's digest is that of the sources on disk now and
``MT_PURE_PYTHON`` is not set: an edited module, another Python, a failed or missing
build (no C compiler), and the same modules run interpreted, from the one source.
Nothing is copied into the package, so a checkout never holds a stale extension that
Python would prefer to the ``.py`` beside it.

The list is chosen by measurement (``bench/compiled.py``, ``bench/backtest.py`` under a
profile: the share of a backtest's own time each module takes), not by guess. A strategy
author's file stays plain Python and calls into the compiled API.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

# Imported by every process at its first ``import mytrading``: what a build needs
# (hashlib, json, importlib's machinery) is imported when there is one to use, so an
# interpreted process pays a dictionary read (10 ms of imports before).

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "compiled"
MANIFEST = "manifest.json"
FAILED = "compiled.failed"  # beside the build: the last failed build's digest and error
LOCK = "compiled.lock"  # beside the build: one build at a time (two commands started together)

# The backtest's and the live engine's bar and order paths (cProfile of bench/backtest.py,
# own time by module: the loop 7 %, the context 7, the runner 6, risk's core 5, the
# results 4, the indicator set 3, risk's rules, monitor, book and charges 1-3 each, the
# order tracker, the venue and its fill model, the book, positions, risk's orders; risk's
# charges, 5 us an order called from compiled code: ``bench/backtest_profile.py
# --compiled``). The strategy base's hot helpers (``engine/helpers.py``), not the base:
# mypyc 2.4.1 fails on its order helpers' ``**terms`` after defaulted parameters (an
# internal error building their text signature), and compiled code would read an
# author's class defaults from the instance's slot.
MODULES: tuple[str, ...] = (
    "mytrading.backtest.fills",
    "mytrading.backtest.loop",
    "mytrading.backtest.results",
    "mytrading.backtest.risk",
    "mytrading.backtest.venue",
    "mytrading.domain.bars",
    "mytrading.domain.positions",
    "mytrading.engine.context",
    "mytrading.engine.helpers",  # the strategy base's hot helpers (its interpreted rest: there)
    "mytrading.engine.indicator_set",
    "mytrading.engine.order_book",
    "mytrading.engine.runner",
    "mytrading.orders.tracker",
    "mytrading.risk.book",
    "mytrading.risk.charges",  # pickled as what made it (``ChargeTable.__reduce__``)
    "mytrading.risk.core",
    "mytrading.risk.monitor",
    "mytrading.risk.orders",
    "mytrading.risk.roll",  # its approval subclasses rules.Approval: compiled beside it
    "mytrading.risk.rules",
    "mytrading.router.table",  # its table is the order tracker's subclass
    "mytrading.sim.matching",
)

# mypyc reads the project's [tool.mypy] from pyproject.toml, whose notes (sections for
# modules not in this build) it takes for errors: it gets the settings it needs alone
MYPY_INI = "[mypy]\npython_version = 3.11\nignore_missing_imports = True\nplugins = pydantic.mypy\n"


def source_of(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def digest(modules: Sequence[str] | None = None) -> str:
    """What a build must have been made from: each module's source, and the interpreter
    (an extension is for one Python's ABI)."""
    import hashlib
    import sysconfig

    h = hashlib.sha256(f"{sys.version}|{sysconfig.get_config_var('EXT_SUFFIX')}".encode())
    for m in MODULES if modules is None else modules:
        h.update(m.encode() + b"\0" + source_of(m).read_bytes() + b"\0")
    return h.hexdigest()


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def pure_wanted() -> bool:
    return _flag("MT_PURE_PYTHON")


class _Finder:
    """Finds the modules of a current build among its extensions, ahead of the source (a
    meta path finder: ``find_spec`` is all ``sys.meta_path`` asks of one)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        f = self.files.get(fullname)
        if f is None:  # before any import here: importing is asking this finder again
            return None
        import importlib.machinery
        import importlib.util

        loader = importlib.machinery.ExtensionFileLoader(fullname, str(f))
        return importlib.util.spec_from_file_location(fullname, f, loader=loader)


NOT_BUILT = "interpreted (not built: python3 main.py compile)"
_state: dict[str, str] = {"build": NOT_BUILT, "digest": ""}


def _current(out: Path) -> dict[str, Path] | str:
    """The files of the build in ``out`` if it is of the sources on disk now, else why not."""
    import json

    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return NOT_BUILT
    now = digest()
    _state["digest"] = now  # the sources this process imports, whichever build runs them
    if manifest.get("modules") != list(MODULES) or manifest.get("digest") != now:
        return "interpreted (the compiled build is stale: python3 main.py compile)"
    files = {name: out / rel for name, rel in manifest["files"].items()}
    if not all(f.exists() for f in files.values()):
        return "interpreted (the compiled build is incomplete)"
    return files


def current(out: Path = OUT) -> bool:
    """A build of the sources on disk now is in ``out`` (whether or not this process uses
    it: one run with ``MT_PURE_PYTHON=1`` asks so of the other build)."""
    return not isinstance(_current(out), str)


def install(out: Path = OUT) -> str:
    """Use the build in ``out`` if it is of the sources on disk now; returns which build
    this process runs (also ``build()``)."""
    if pure_wanted():
        _state["build"] = "interpreted (MT_PURE_PYTHON)"
        return _state["build"]
    files = _current(out)
    if isinstance(files, str):
        _state["build"] = files
        return _state["build"]
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(files))
    _state["build"] = f"compiled ({len(MODULES)} modules, mypyc)"
    return _state["build"]


def auto_wanted() -> bool:
    """A command may build when the build is missing or stale: not where ``MT_AUTO_COMPILE=0``
    (the test suite's own processes: ``main.py test`` built it before pytest started, and a
    test must never wait a minute and a half on a compiler)."""
    return os.environ.get("MT_AUTO_COMPILE", "1").strip().lower() not in ("0", "false", "no")


def ensure(out: Path = OUT, say: Callable[[str], None] = print) -> str:
    """Make the build if it is missing or stale, then use it (``install``); returns which
    build this process runs. Called before a command imports any compiled module. A failed
    build (no C compiler, a module mypyc refuses) is said once and remembered for these
    sources: the stack runs interpreted and later commands do not try again until a source
    changes (``main.py compile`` always tries)."""
    if install(out).startswith("compiled") or pure_wanted() or not auto_wanted():
        return build()
    import fcntl
    import json

    want = digest()
    try:
        failed = json.loads((out.parent / FAILED).read_text())
    except (OSError, ValueError):
        failed = {}
    if failed.get("digest") == want:
        _state["build"] = f"interpreted (the build failed: {failed.get('error', '?')})"
        return build()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another command building: wait for its build
        if install(out).startswith("compiled"):
            return build()
        try:
            compile_modules(out=out, say=say)
        except (RuntimeError, ImportError, OSError) as exc:
            first = str(exc).strip().splitlines()
            error = " ".join(first[-1:]) or type(exc).__name__
            (out.parent / FAILED).write_text(json.dumps({"digest": want, "error": error}))
            say(f"not compiled, the stack runs interpreted ({error}); full error: "
                "python3 main.py compile")  # fmt: skip
            _state["build"] = f"interpreted (the build failed: {error})"
            return build()
    return install(out)


def build() -> str:
    """Which build this process runs: "compiled (N modules, mypyc)" or "interpreted
    (why)"."""
    return _state["build"]


def sources() -> str:
    """The digest of the compiled modules' sources this process runs (``digest``), as they
    were when it chose its build: a daemon whose figure is not the checkout's now runs
    other code than a restart would (started before a change, a pull or a rebuild). Read
    at a daemon's start (``ZmqHost``), not later: the files may change under it."""
    if not _state["digest"]:
        _state["digest"] = digest()
    return _state["digest"]


def compile_modules(
    modules: Sequence[str] = MODULES,
    out: Path = OUT,
    say: Callable[[str], None] = print,
) -> Path:
    """Build ``modules`` with mypyc into ``out`` (replacing what was there); the manifest is
    written last, so a build cut short is never taken for a current one. Raises
    ``RuntimeError`` with the compiler's last lines when it fails (no C compiler, a
    module mypyc refuses)."""
    import json
    import shutil
    import subprocess
    import tempfile
    import time

    want = digest(modules)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mt-mypyc-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "mypy.ini").write_text(MYPY_INI)
        paths = [str(source_of(m).relative_to(ROOT)) for m in modules]
        setup = (
            "import sys\n"
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            f"mods = mypycify({[*paths, '--config-file', str(tmp / 'mypy.ini')]!r},"
            f" opt_level='3', target_dir={str(tmp / 'c')!r})\n"
            "setup(name='mytrading-compiled', ext_modules=mods, script_args=sys.argv[1:])\n"
        )
        cmd = [sys.executable, "-c", setup, "build_ext", "--build-lib", str(tmp / "lib"),
               "--build-temp", str(tmp / "tmp")]  # fmt: skip
        say(f"compiling {len(modules)} modules with mypyc (a minute and a half on 2 cores) ...")
        got = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if got.returncode != 0:
            tail = "\n".join((got.stdout + got.stderr).strip().splitlines()[-15:])
            raise RuntimeError(f"mypyc failed:\n{tail}")
        files: dict[str, str] = {}
        # made beside the build and put in its place in two renames: a process starting
        # meanwhile finds the old build whole, the new one whole, or none (interpreted)
        new = out.with_name(f".{out.name}-new-{os.getpid()}")
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir(parents=True)
        for so in (tmp / "lib").rglob("*.so"):
            rel = so.relative_to(tmp / "lib")
            (new / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(so, new / rel)
            name = ".".join(rel.with_name(rel.name.split(".")[0]).parts)
            files[name] = str(rel)
        missing = [m for m in modules if m not in files]
        if missing:
            shutil.rmtree(new, ignore_errors=True)
            raise RuntimeError(f"mypyc built no extension for {missing}")
        manifest = {
            "digest": want,
            "modules": list(modules),
            "files": files,
            "python": sys.version.split()[0],
            "seconds": round(time.monotonic() - t0, 1),
        }
        (new / MANIFEST).write_text(json.dumps(manifest, indent=1))
        old = out.with_name(f".{out.name}-old-{os.getpid()}")
        if out.exists():
            out.rename(old)
        new.rename(out)
        shutil.rmtree(old, ignore_errors=True)
        (out.parent / FAILED).unlink(missing_ok=True)
    say(f"compiled {len(modules)} modules into {out} in {manifest['seconds']} s")
    return out
