"""docs/architecture.md follows one order hop by hop naming modules and functions
(``path.py:Class.method``); each one named must exist, so the walk stays true as code
moves. Its map of the packages names every package and top-level module of the tree."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
NAMED = re.compile(r"`((?:mytrading|strategies)/[\w/]+\.py):([\w.]+)`")


@functools.cache
def defined(path: Path) -> set[str]:
    """Every function and class of a module by its qualified name (``Class.method``)."""
    out: set[str] = set()

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + child.name
                out.add(name)
                walk(child, name + ".")

    walk(ast.parse(path.read_text()), "")
    return out


def hop_section() -> str:
    text = DOC.read_text()
    start = text.index("## One order, hop by hop")
    return text[start : text.index("\n## ", start + 1)]


def test_every_function_the_order_walk_names_exists() -> None:
    named = NAMED.findall(hop_section())
    assert len(named) >= 30  # the walk is there, out and back
    missing = [
        f"{path}:{name}"
        for path, name in named
        if not (ROOT / path).exists() or name not in defined(ROOT / path)
    ]
    assert missing == []


def test_the_package_map_names_the_tree() -> None:
    text = DOC.read_text()
    start = text.index("## The layout at a glance")
    block = text[start : text.index("```", text.index("```", start) + 3)]
    pkg = ROOT / "mytrading"
    tree = sorted(
        [p.name + "/" for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
        + [p.name for p in pkg.glob("*.py") if p.name != "__init__.py"]
    )
    unnamed = [n for n in tree if not re.search(rf"(?<![\w/]){re.escape(n)}", block)]
    assert unnamed == []
