"""Finds the enabled ``BaseStrategy`` subclasses in the strategies directory.

Only the files that define an enabled strategy are imported. Which file that is comes
from reading each file's source (``ast``), not from running it: a strategy class declares
its name as a string literal (``name = "sma_crossover"``), and that is all the loader
needs. So a file someone is still writing, or an old experiment with a syntax error, can
sit in ``strategies/`` without stopping anything; only what ``MT_STRATEGIES`` names runs.

A builder file (``strategies/<name>.toml``, multi-leg options without Python,
``builder/``) declares the strategy its stem names; enabled, it is parsed into a
``BuilderStrategy`` subclass, and a file with a mistake is *broken* as a Python file that
does not import is.

An enabled strategy whose file fails to import is not fatal either: ``load`` reports it
with its traceback as *broken*, and the engine quarantines it while the others trade
(``engine/daemon.py``). ``config check`` and ``start`` treat a broken enabled strategy as a
configuration error (exit 2): nothing starts with one.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mytrading.builder.spec import SpecError
from mytrading.domain.names import RULE, bad_name
from mytrading.engine.strategy import BaseStrategy


class StrategyLoadError(Exception):
    """An enabled strategy that no file declares, a name two files declare, or a name
    that breaks the naming rule."""


@dataclass
class Loaded:
    """What ``load`` found: the enabled strategies' classes, the enabled strategies whose
    file did not import (name -> traceback), and files it could not read (path -> why),
    which matter only if they held an enabled strategy."""

    classes: list[type[BaseStrategy[Any]]] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)


def sibling(path: str | Path, stem: str) -> ModuleType:
    """The strategy module ``stem`` beside ``path`` (a strategy file), as ``load``
    imports it: a strategy that builds on another's class imports it this way, since
    ``strategies/`` is a directory of files, not a package."""
    name = f"mt_strategies.{stem}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    file = Path(path).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"{file}: not a strategy module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def declared(directory: Path) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Strategy name -> the files whose classes declare it (``name = "..."`` in a class
    body), read without running anything, and the builder files (``<name>.toml``, which
    declare their stem); and the files that could not be read."""
    names: dict[str, list[Path]] = {}
    unreadable: dict[str, str] = {}
    for path in sorted(directory.glob("*.toml")):
        if not path.name.startswith("_"):
            names.setdefault(path.stem, []).append(path)
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            found = _declared_in(path)
        except (SyntaxError, ValueError, OSError) as exc:
            unreadable[str(path)] = f"{type(exc).__name__}: {exc}"
            continue
        for value in found:
            names.setdefault(value, []).append(path)
    return names, unreadable


# file -> ((its size and modification time), the names its classes declare): a file read
# once while it is unchanged (an engine restarted in a simulation reads them again)
_DECLARED: dict[str, tuple[tuple[int, int], list[str]]] = {}


def _declared_in(path: Path) -> list[str]:
    st = path.stat()
    stamp = (st.st_size, st.st_mtime_ns)
    got = _DECLARED.get(str(path))
    if got is not None and got[0] == stamp:
        return got[1]
    tree = ast.parse(path.read_bytes(), filename=str(path))
    found = [
        value
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for stmt in node.body
        if (value := _name_literal(stmt))
    ]
    _DECLARED[str(path)] = (stamp, found)
    return found


def _name_literal(stmt: ast.stmt) -> str:
    """The string of ``name = "..."`` (or ``name: ... = "..."``) in a class body."""
    if isinstance(stmt, ast.Assign):
        named = any(isinstance(t, ast.Name) and t.id == "name" for t in stmt.targets)
    elif isinstance(stmt, ast.AnnAssign):
        named = isinstance(stmt.target, ast.Name) and stmt.target.id == "name"
    else:
        return ""
    value = stmt.value
    if named and isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return ""


def load(directory: Path, enabled: list[str]) -> Loaded:
    """Import the files of the enabled strategies and return their classes in the order
    asked. Raises ``StrategyLoadError`` for what no running could fix (a name no file
    declares, a name in two files, a bad name); a file that fails to import is reported
    in ``broken`` with its traceback."""
    for name in enabled:
        why = bad_name(name)
        if why:
            raise StrategyLoadError(f"MT_STRATEGIES: {why}")
    where, unreadable = declared(directory)
    for name, paths in sorted(where.items()):
        why = bad_name(name)
        if why:  # read, not run: a bad name is said even in a file nobody enabled
            raise StrategyLoadError(f"{paths[0]}: declares a strategy named {why}")
    out = Loaded(unreadable=unreadable)
    for name in enabled:
        paths = where.get(name, [])
        if len(paths) > 1:
            raise StrategyLoadError(
                f"two files declare a strategy named {name!r}: {', '.join(map(str, paths))}"
            )
        if not paths:
            hint = (
                f"; files that could not be read: {', '.join(sorted(unreadable))}"
                if unreadable
                else ""
            )
            raise StrategyLoadError(
                f"MT_STRATEGIES names {name!r}, which no file in {directory} declares "
                f'(a strategy class sets name = "{name}"){hint}; declared: {sorted(where)}'
            )
        path = paths[0]
        if path.suffix == ".toml":
            try:
                out.classes.append(_builder(name, path))
            except SpecError as exc:
                out.broken[name] = str(exc)
            continue
        try:
            module = _import(path)
        except Exception as exc:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            out.broken[name] = f"{path}: " + "".join(lines[-6:]).strip()
            continue
        cls = _find(module, name)
        if cls is None:
            out.broken[name] = (
                f"{path}: no BaseStrategy subclass named {name!r} in it (the name is declared "
                "on a class that is not a strategy)"
            )
            continue
        out.classes.append(cls)
    return out


def _builder(name: str, path: Path) -> type[BaseStrategy[Any]]:
    """The strategy class of a builder file (``builder/``), or ``SpecError`` naming the
    lines at fault."""
    from mytrading.builder.spec import parse
    from mytrading.builder.strategy import make_class

    return make_class(name, parse(path), path)


def _import(path: Path) -> ModuleType:
    mod_name = f"mt_strategies.{path.stem}"
    module = sys.modules.get(mod_name)
    if module is not None and getattr(module, "__file__", None) == str(path):
        return module  # a file of another directory with the same name is imported anew
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]
        raise
    return module


def _find(module: ModuleType, name: str) -> type[BaseStrategy[Any]] | None:
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if (
            issubclass(obj, BaseStrategy)
            and obj is not BaseStrategy
            and obj.name == name
            and obj.__module__ == module.__name__
        ):
            return obj
    return None


def check(directory: Path, enabled: list[str]) -> list[type[BaseStrategy[Any]]]:
    """For ``config check`` and ``start``: the enabled classes, or ``StrategyLoadError``
    naming every broken one with its traceback (nothing starts with one)."""
    got = load(directory, enabled)
    if got.broken:
        raise StrategyLoadError(
            "\n".join(f"strategy {n} does not load: {tb}" for n, tb in got.broken.items())
        )
    return got.classes


def placeholder(name: str) -> type[BaseStrategy[Any]]:
    """A strategy of ``name`` that does nothing: it stands in for one whose file does not
    load, so the engine still keeps that strategy's books (positions, working orders,
    bracket exits) while it is quarantined."""
    return type(f"Broken_{name}", (BaseStrategy,), {"name": name, "__module__": __name__})


def discover(directory: Path, names: list[str] | None = None) -> dict[str, type[BaseStrategy[Any]]]:
    """Name -> class for ``names`` (default: every strategy the directory declares),
    imported; ``StrategyLoadError`` if one does not load. For backtests and tools that
    run strategies in their own process (the engine uses ``load``)."""
    if names is None:
        names = sorted(declared(directory)[0])
    return {c.name: c for c in check(directory, list(names))}


__all__ = [
    "RULE",
    "Loaded",
    "StrategyLoadError",
    "check",
    "declared",
    "discover",
    "load",
    "placeholder",
    "sibling",
]
