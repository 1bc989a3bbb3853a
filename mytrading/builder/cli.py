"""``main.py strategy``: builder strategy files (multi-leg options without Python)."""

from __future__ import annotations

from typing import Annotated

import typer

from mytrading.builder.templates import TEMPLATES, render
from mytrading.process.consoles import err, out, settings_or_exit

app = typer.Typer(help="Strategies: write a builder strategy file from a template.")


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="the strategy's name: a-z, 0-9 and _")],
    template: Annotated[
        str, typer.Option("--template", "-t", help=" | ".join(TEMPLATES))
    ] = "straddle",
) -> None:
    """Write ``strategies/NAME.toml``, a ready builder strategy from ``template``; it is
    checked as ``config check`` checks it before it is written."""
    from mytrading.builder.spec import SpecError, parse
    from mytrading.domain.names import bad_name
    from mytrading.domain.refdata import load_refdata
    from mytrading.engine.loader import declared

    s = settings_or_exit()
    why = bad_name(name)
    if why:
        err.print(f"[bold red]refused:[/] {why}")
        raise typer.Exit(2)
    if template not in TEMPLATES:
        err.print(f"[bold red]refused:[/] --template is one of {', '.join(TEMPLATES)}")
        raise typer.Exit(2)
    taken = declared(s.strategies_dir)[0].get(name)
    if taken:
        err.print(f"[bold red]refused:[/] {name} is declared already by {taken[0]}")
        raise typer.Exit(2)
    path = s.strategies_dir / f"{name}.toml"
    text = render(name, template)
    try:
        parse(path, text, set(load_refdata(s.config_dir).underlyings))
    except SpecError as exc:  # a template that does not parse is our bug: say so
        err.print(f"[bold red]template {template} does not check:[/] {exc}")
        raise typer.Exit(1) from None
    path.write_text(text)
    out.print(f"wrote {path} ({template})")
    out.print(f"  run it:      MT_STRATEGIES={name} python3 main.py run")
    out.print(f"  backtest it: python3 main.py backtest --strategy {name}")
