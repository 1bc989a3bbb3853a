"""The package layout is the architecture: these rules keep it so.

* A daemon package (``engine``, ``feed``, ``risk``, ``router``, ``reconciler``,
  ``signals``) imports no other daemon package: what two daemons share lives in a shared
  module.
* ``mytrading/openalgo`` (the broker boundary) and ``mytrading/sim`` (the simulated
  venue) import no daemon package.
* No daemon package imports ``mytrading.sim``: daemons reach the simulated venue through
  OpenAlgo's protocol only (``mytrading/venue.py`` builds the in-process one).
* ``mytrading/openalgo`` does not import ``mytrading.sim``: the live boundary never loads
  the simulator.
* ``mytrading/backtest`` runs the daemons' logic (the engine's runner, risk's rules), never
  a daemon (no ``<daemon>.daemon`` module, no bus); nothing live imports the backtest.
* No two modules import each other, directly or through others: each dependency goes
  one way.
* The router and the reconciler speak to a broker only through the adapter's Protocol and
  its reports (``mytrading/openalgo/broker.py``): nothing else of ``mytrading/openalgo``
  (the REST client, the replies' parsing, the WebSocket client), which ``venue.py``
  builds for them.
* Identifiers are split only in ``mytrading/domain/ids.py``: no module takes an order id, a
  book or a roll leg apart by hand.

Imports are read from the source with ``ast``, all of them (inside functions and under
``TYPE_CHECKING`` too), so a lazy import cannot slip past.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mytrading.messaging.bus import DAEMONS
from mytrading.settings import PROJECT_ROOT

PKG = PROJECT_ROOT / "mytrading"


def imported_modules(path: Path, root: Path = PROJECT_ROOT) -> set[str]:
    """Every ``mytrading...`` module ``path`` (under ``root``) imports, by dotted name."""
    tree = ast.parse(path.read_text(), str(path))
    here = path.relative_to(root).with_suffix("").parts
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's package upwards
                base = ".".join(here[: len(here) - node.level])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # "from pkg import module"
    return {m for m in out if m == "mytrading" or m.startswith("mytrading.")}


def top(module: str) -> str:
    """``mytrading.router.lanes`` -> ``router``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(packages: list[str], forbidden: set[str], root: Path = PROJECT_ROOT) -> list[str]:
    bad = []
    for pkg in packages:
        for f in sorted((root / "mytrading" / pkg).rglob("*.py")):
            for m in sorted(imported_modules(f, root)):
                if top(m) in forbidden - {pkg}:
                    bad.append(f"{f.relative_to(root)} imports {m}")
    return bad


def test_the_daemon_packages_are_the_bus_daemons() -> None:
    """The rules below name every daemon package: a new daemon is covered by them."""
    packages = {p.name for p in PKG.iterdir() if (p / "__main__.py").exists()}
    # control runs the Telegram bot: a supervised program but no bus daemon (it publishes
    # nothing; it reads heartbeats and hands risk commands, as the command line does)
    assert packages == {*DAEMONS, "control"}


def test_no_daemon_imports_another_daemon() -> None:
    assert violations(list(DAEMONS), set(DAEMONS)) == []


@pytest.mark.parametrize("pkg", ["openalgo", "sim"])
def test_the_venue_packages_import_no_daemon(pkg: str) -> None:
    assert violations([pkg], set(DAEMONS)) == []


def test_daemons_reach_the_simulator_only_through_the_protocol() -> None:
    assert violations(list(DAEMONS), {"sim"}) == []


def test_the_broker_boundary_never_loads_the_simulator() -> None:
    assert violations(["openalgo"], {"sim"}) == []


def test_the_router_and_reconciler_see_only_the_brokers_protocol_and_reports() -> None:
    bad = [
        f"{f.relative_to(PROJECT_ROOT)} imports {m}"
        for pkg in ("router", "reconciler")
        for f in sorted((PKG / pkg).rglob("*.py"))
        for m in imported_modules(f)
        if top(m) == "openalgo" and not m.startswith("mytrading.openalgo.broker")
    ]
    assert bad == []


def test_no_mixins_where_order_state_lives() -> None:
    """The router and the engine compose their parts (each given what it works on) rather
    than inherit them: no class there has more than one base (``Generic[P]``, a type's
    parameter, is not a part: ``BaseStrategy(StrategyHelpers, Generic[P])``)."""

    def parts(node: ast.ClassDef) -> list[ast.expr]:
        return [
            b
            for b in node.bases
            if not (isinstance(b, ast.Subscript) and ast.unparse(b.value) == "Generic")
        ]

    bad = []
    for pkg in ("router", "engine"):
        for f in sorted((PKG / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.ClassDef) and len(parts(node)) > 1:
                    bad.append(f"{f.relative_to(PROJECT_ROOT)}: {node.name}")
    assert bad == []
    # the rule still sees a second base that is a part
    two = ast.parse("class S(StrategyHelpers, Recorder, Generic[P]): ...").body[0]
    assert isinstance(two, ast.ClassDef) and len(parts(two)) == 2


def test_nothing_live_imports_the_backtest() -> None:
    assert violations([*DAEMONS, "openalgo", "sim"], {"backtest"}) == []


def test_the_backtest_runs_daemon_logic_not_daemons() -> None:
    bad = [
        f"{f.relative_to(PROJECT_ROOT)} imports {m}"
        for f in sorted((PKG / "backtest").rglob("*.py"))
        for m in imported_modules(f)
        if m
        in {f"mytrading.{d}.daemon" for d in DAEMONS}
        | {"mytrading.messaging.bus", "mytrading.process.base"}
    ]
    assert bad == []


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The rules above would pass on a checker that saw nothing: it must see plain, from,
    relative, lazy and type-only imports."""
    (tmp_path / "mytrading" / "router").mkdir(parents=True)
    f = tmp_path / "mytrading" / "router" / "probe.py"
    f.write_text(
        "from typing import TYPE_CHECKING\n"
        "import mytrading.feed.daemon\n"
        "from mytrading.engine import runner\n"
        "from ..sim import market\n"
        "def later():\n"
        "    from mytrading.risk.rules import RiskBook\n"
        "if TYPE_CHECKING:\n"
        "    from mytrading.reconciler.daemon import ReconcilerDaemon\n"
    )
    found = {top(m) for m in imported_modules(f, tmp_path)}
    assert {"feed", "engine", "sim", "risk", "reconciler"} <= found
    assert len(violations(["router"], set(DAEMONS), tmp_path)) >= 4
    assert violations(["router"], {"sim"}, tmp_path) == [
        "mytrading/router/probe.py imports mytrading.sim",
        "mytrading/router/probe.py imports mytrading.sim.market",
    ]


def module_name(path: Path, root: Path = PROJECT_ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycles(root: Path = PROJECT_ROOT) -> list[list[str]]:
    """Every strongly connected group of more than one module in the import graph (of
    modules, not packages: ``from mytrading import wire`` is an edge to ``wire``)."""
    files = {module_name(f, root): f for f in (root / "mytrading").rglob("*.py")}
    graph = {
        m: sorted(
            d for d in imported_modules(f, root) if d in files and d != m and d != "mytrading"
        )
        for m, f in files.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return out


def test_no_import_cycles() -> None:
    assert import_cycles() == []


def test_the_cycle_finder_finds_one(tmp_path: Path) -> None:
    pkg = tmp_path / "mytrading" / "a"
    pkg.mkdir(parents=True)
    (tmp_path / "mytrading" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "x.py").write_text("from mytrading.a import y\n")
    (pkg / "y.py").write_text("def f():\n    from mytrading.a.z import g\n")
    (pkg / "z.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mytrading.a.x\n"
    )
    (pkg / "w.py").write_text("import mytrading.a.x\n")
    assert import_cycles(tmp_path) == [["mytrading.a.x", "mytrading.a.y", "mytrading.a.z"]]


def test_supervisord_runs_each_program_from_its_package() -> None:
    """``supervisord.conf`` and ``supervise.MODULES`` agree, and each module runs."""
    import configparser
    import importlib.util

    from mytrading.process import supervise

    conf = configparser.RawConfigParser()
    conf.read(PROJECT_ROOT / "supervisord.conf")
    for name, module in supervise.MODULES.items():
        assert conf.get(f"program:{name}", "command").endswith(f" -m {module}"), name
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module


HAND_SPLIT = re.compile(
    r"""order_id\.(r?split|r?partition)\(|"""  # an order id taken apart
    r"""(book|strategy|name)\.(r?split|r?partition)\(["']@["']|"""  # a follower book
    r"""intent(_id)?\.(r?split|r?partition)\(["'][.~]["']"""  # a roll leg
)


def test_identifiers_are_split_only_in_ids() -> None:
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{n}: {line.strip()}"
        for path in sorted(PKG.rglob("*.py"))
        if path.name != "ids.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if HAND_SPLIT.search(line)
    ]
    assert offenders == [], "use mytrading.domain.ids:\n" + "\n".join(offenders)
    # the pattern finds what it is for (else the check above could never fail)
    assert HAND_SPLIT.search('parts = f.order_id.split(".")')
    assert HAND_SPLIT.search('strategy, _, acct = book.partition("@")')
    assert HAND_SPLIT.search('rid = intent_id.rsplit(".", 1)[0]')


# ------------------------------------------------------------------ the daemons' cores

# What a daemon's core must not do itself: its host does it (``process/shell.py`` for a
# process, ``mytrading/simulation`` for the whole stack in one seeded run). A core that
# read the machine's clock, opened a socket or started a thread would make a seed's day
# depend on the machine, and a failure impossible to replay.
HOST_MODULES = {"zmq", "threading", "socket", "select", "selectors", "signal", "asyncio"}
CLOCKS = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
          "sleep", "strftime", "localtime", "gmtime", "process_time"}  # fmt: skip
DATETIME_NOW = {"now", "utcnow", "today"}
CORE_PACKAGES = ("engine", "feed", "risk", "router", "reconciler", "signals")
CORE_FILES = ("process/base.py", "process/host.py", "hosttime.py")
# parts a core is handed by its host, not built by it (each a Protocol the simulation
# gives its own of): the shells' real ones may use what cores may not
HOST_PARTS = {
    "engine/watchdog.py": "the hooks' deadline: SIGALRM and a watchdog process (deadlines=)",
    "risk/events.py": "the DuckDB event store's writer thread (RiskDaemon's events=)",
    "router/lanes.py": "a lane's lock: the shell's worker thread calls the broker",
    "signals/http.py": "the webhook door's HTTP server (SignalsDaemon's door=)",
    "hosttime.py": "the seam itself: time's clocks unless a simulation installs one",
}


def host_uses(path: Path) -> list[str]:
    """What ``path`` does that only a host may: a host module imported, a clock of
    ``time`` called, ``datetime.now()``, or a clock of ``hosttime`` imported by name
    (it would keep the clock of the moment it was imported)."""
    tree = ast.parse(path.read_text(), str(path))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [f"imports {a.name}" for a in node.names if a.name.split(".")[0] in HOST_MODULES]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            mod = (node.module or "").split(".")[0]
            if mod in HOST_MODULES:
                bad.append(f"imports from {node.module}")
            elif mod == "time" and any(a.name in CLOCKS for a in node.names):
                bad.append(f"imports time's clocks {[a.name for a in node.names]}")
            elif node.module == "mytrading.hosttime":
                bad.append(f"imports names from hosttime {[a.name for a in node.names]}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "time" and node.attr in CLOCKS:
                bad.append(f"calls time.{node.attr} (line {node.lineno})")
            elif node.value.id == "datetime" and node.attr in DATETIME_NOW:
                bad.append(f"calls datetime.{node.attr} (line {node.lineno})")
            elif node.value.id == "date" and node.attr == "today":
                bad.append(f"calls date.today (line {node.lineno})")
    return bad


def core_files() -> list[Path]:
    files = [f for p in CORE_PACKAGES for f in sorted((PKG / p).rglob("*.py"))]
    files += [PKG / f for f in CORE_FILES]
    return [f for f in files if f.name != "__main__.py"]


def test_the_daemons_cores_leave_sockets_threads_and_clocks_to_their_host() -> None:
    bad = [
        f"{f.relative_to(PKG)} {what}"
        for f in core_files()
        if str(f.relative_to(PKG)) not in HOST_PARTS
        for what in host_uses(f)
    ]
    assert not bad, "a core does what its host must (process/shell.py, hosttime):\n" + "\n".join(
        bad
    )


def test_the_core_rule_sees_each_way_round_it(tmp_path: Path) -> None:
    src = tmp_path / "core.py"
    for line, seen in [
        ("import zmq", "imports zmq"),
        ("import threading", "imports threading"),
        ("from time import monotonic", "time's clocks"),
        ("import time\nx = time.monotonic()", "time.monotonic"),
        ("import time\nx = time.strftime('%H')", "time.strftime"),
        ("from datetime import datetime\nx = datetime.now()", "datetime.now"),
        ("from mytrading.hosttime import monotonic", "names from hosttime"),
    ]:
        src.write_text(line + "\n")
        assert any(seen in what for what in host_uses(src)), line
    src.write_text("from mytrading import hosttime\nx = hosttime.monotonic()\n")
    assert host_uses(src) == []
