"""The README is a front door and the docs hold the detail: every relative link in them
leads to a file that exists and, where it names a section, to a heading there; the README
stays short and says the warning and the licence; every benchmark script is named with its
command in the README and in docs/benchmarks.md."""

from __future__ import annotations

import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@functools.cache
def anchors(path: Path) -> set[str]:
    out: set[str] = set()
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_leads_somewhere() -> None:
    broken = []
    for page in pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not ours to check offline
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such section)")
    assert broken == []


def test_the_readme_is_a_front_door() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "can lose you money" in text and "without warranty" in text
    assert "[LICENSE](LICENSE)" in text and "Apache License 2.0" in text
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    run, test = text[text.index("```bash") :].splitlines()[1:3]  # the first block's lines
    assert run.startswith("python3 main.py run ") and test.startswith("python3 main.py test ")


def test_every_benchmark_is_named_with_its_command() -> None:
    readme = (ROOT / "README.md").read_text()
    figures = (ROOT / "docs" / "benchmarks.md").read_text()
    scripts = [p.name for p in sorted((ROOT / "bench").glob("*.py")) if p.name != "common.py"]
    missing = [s for s in scripts if f"bench/{s}" not in readme or f"bench/{s}" not in figures]
    assert missing == []
