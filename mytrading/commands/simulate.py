"""``main.py simulate``: the whole stack in one process on a virtual clock, seed by seed,
its invariants checked (``mytrading/simulation``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mytrading.settings import PROJECT_ROOT


def simulate(
    seeds: Annotated[int, typer.Option("--seeds", help="Run this many seeds (a day each).")] = 0,
    first: Annotated[int, typer.Option("--first", help="The first seed of --seeds.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Replay one seed and write its trace.")] = -1,
    jobs: Annotated[int, typer.Option("--jobs", help="Worker processes (0: every core).")] = 0,
    trace: Annotated[
        Path | None, typer.Option("--trace", help="Where --seed writes its trace.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as JSON.")] = False,
    mutation: Annotated[
        str, typer.Option("--mutation", help="With a planted bug (simulation/mutations.py).")
    ] = "",
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="With --seed: record the day and print its shadow "
            "(live against its backtest, as `backtest shadow`).",
        ),
    ] = False,
) -> None:
    """Seeded trading days of the whole stack (router, risk, engine, feed, reconciler,
    signals; two accounts and a follower) against the simulated broker and market, each
    with its faults (bus, kills, broker, feed, disk) and an operator; every invariant
    checked as it goes and at the day's end. A line per failing seed and a summary; exit
    1 when any invariant broke. ``--seed N`` replays one seed exactly and writes its
    trace; the same seed gives the same trace digest, every time. ``--shadow`` records
    that day (ticks, bars, risk's events) and shadows it after its close."""
    if os.environ.get("PYTHONHASHSEED") != "0":  # one hashing for every seed, every run
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    from mytrading.simulation.batch import report, run_seeds
    from mytrading.simulation.mutations import planted
    from mytrading.simulation.stack import Options

    if seeds <= 0 and seed < 0:
        typer.echo("give --seeds N (a batch) or --seed N (one, with its trace)", err=True)
        raise typer.Exit(2)
    with planted(mutation):
        if seed >= 0:
            raise typer.Exit(_replay(seed, trace, as_json, mutation, shadow))
        n_jobs = jobs or os.cpu_count() or 1

        def said(o: object) -> None:
            for v in getattr(o, "violations", []):
                typer.echo(v.line())
            sys.stdout.flush()  # a failing seed is said as it ends, also into a file

        outcomes, seconds = run_seeds(
            list(range(first, first + seeds)), n_jobs, Options(mutation=mutation), said
        )
    r = report(outcomes, seconds)
    if as_json:
        typer.echo(json.dumps(r, indent=2))
    else:
        typer.echo(_summary_line(r, n_jobs))
    raise typer.Exit(1 if r["failed"] else 0)


def _replay(seed: int, trace: Path | None, as_json: bool, mutation: str, shadow: bool) -> int:
    from mytrading.simulation.batch import workdir
    from mytrading.simulation.run import run_seed
    from mytrading.simulation.stack import Options

    opts = Options(trace_full=True, mutation=mutation, record=shadow)
    r = run_seed(seed, workdir(), options=opts)
    out = trace or PROJECT_ROOT / "logs" / "simulate" / f"seed-{seed}.trace"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(r.trace) + "\n")
    if as_json:
        typer.echo(json.dumps({
            "seed": seed, "day": r.day, "digest": r.digest, "trace": str(out),
            "violations": [v.line() for v in r.violations], "orders": r.orders,
            "fills": r.fills, "faults": r.faults, "seconds": round(r.seconds, 2),
            **({"shadow": r.shadow.to_json()} if r.shadow is not None else {}),
        }, indent=2, default=str))  # fmt: skip
    else:
        for v in r.violations:
            typer.echo(v.line())
        typer.echo(
            f"seed {seed} ({r.day}): {r.orders} orders, {r.fills} fills, "
            f"{sum(r.faults.values())} faults, {len(r.violations)} invariants broken, "
            f"{r.seconds:.1f} s; trace {out} ({len(r.trace)} lines), digest {r.digest}"
        )
        if r.shadow is not None:
            typer.echo("the day's shadow (live against its backtest):")
            for st in r.shadow.strategies.values():
                typer.echo("  " + st.line())
    return 1 if r.violations else 0


def _summary_line(r: dict[str, object], jobs: int) -> str:
    faults = ", ".join(f"{k} {v}" for k, v in r["faults"].items())  # type: ignore[attr-defined]
    checks = ", ".join(f"{k} {v:,}" for k, v in r["checks"].items())  # type: ignore[attr-defined]
    failed = r["failed"]
    return (
        f"simulated {r['seeds']} seeds ({r['days']} trading days) in {r['seconds']} s on "
        f"{jobs} worker(s): {r['orders']:,} orders, {r['fills']:,} fills; "
        f"{r['faults_total']:,} faults ({faults}); at least {r['fewest_orders']} orders and "
        f"{r['fewest_faults']} faults a day; {r['checks_total']:,} invariant checks "
        f"({checks}); " + (f"FAILED seeds: {failed}" if failed else "every invariant held")
    )


def register(root: typer.Typer) -> None:
    root.command()(simulate)
