"""``main.py instruments``: sync the broker's master contract, and ask what the stack knows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mytrading.domain.ids import Instrument
from mytrading.process.consoles import err, out, settings_or_exit

if TYPE_CHECKING:
    from mytrading.master.store import MasterStore

app = typer.Typer(help="The broker's master contract: sync, search, show.")
Opt = typer.Option


@app.command("sync")
def sync_cmd(
    exchange: Annotated[
        list[str] | None, Opt("--exchange", help="one exchange (repeatable); default: all")
    ] = None,
    force: Annotated[bool, Opt("--force", help="accept a file the checks refuse")] = False,
) -> None:
    """Download the master contract through OpenAlgo into MT_INSTRUMENTS_DB. A file that
    fails, is empty or disagrees wildly with the one in force is refused (exit 1) and the
    one in force stays."""
    from mytrading.domain.refdata import IST
    from mytrading.master.sync import EXCHANGES, sync

    s = settings_or_exit()
    host = s.rest_url()
    exchanges = tuple(e.upper() for e in exchange) if exchange else EXCHANGES
    r = sync(s.stores.instruments_db, host, s.api_key(), datetime.now(IST).date(), exchanges, force)
    for note in r.verdict.notes:
        out.print(f"note: {note}", highlight=False)
    if not r.accepted:
        err.print(
            f"[bold red]ALERT: master contract refused[/] ({host}); the one in force stays:\n  "
            + "\n  ".join(r.verdict.reasons),
            highlight=False,
        )
        raise typer.Exit(1)
    per = ", ".join(f"{k} {v}" for k, v in sorted(r.per_exchange.items()))
    out.print(f"master contract in force: {r.rows} contracts ({per}) in {r.seconds:.2f} s")


@app.command("search")
def search(
    text: str,
    exchange: Annotated[str | None, Opt("--exchange")] = None,
    n: Annotated[int, Opt("-n")] = 20,
) -> None:
    """Contracts whose symbol or name holds TEXT."""
    store = _open()
    frame = store.search(text, exchange, n)
    t = Table(title=f"contracts matching {text!r}")
    for c in ("exchange", "symbol", "kind", "expiry", "strike", "lot", "tick"):
        t.add_column(c)
    for r in frame.itertuples():
        t.add_row(
            r.exchange,
            r.symbol,
            r.kind,
            "" if r.expiry is None or r.expiry != r.expiry else str(r.expiry)[:10],  # NaT
            f"{r.strike:g}" if r.strike else "",
            str(r.lot),
            f"{r.tick:g}",
        )
    out.print(t if len(frame) else f"nothing matches {text!r}")


@app.command("show")
def show(symbol: Annotated[str, typer.Argument(help="EXCHANGE:SYMBOL")]) -> None:
    """What the stack believes about one contract, and where each figure comes from."""
    from mytrading.domain.refdata import RefDataError, load_refdata
    from mytrading.master.store import MasterIndex

    s = settings_or_exit()
    try:
        inst = Instrument.parse(symbol.upper())
    except ValueError:
        err.print("write EXCHANGE:SYMBOL, e.g. NFO:NIFTY23NOV26FUT")
        raise typer.Exit(2) from None
    ex, sym = inst.exchange, inst.symbol
    master = MasterIndex.load(s.stores.instruments_db)
    c = master.get(ex, sym) if master else None
    if c is not None:
        out.print(json.dumps({"source": "master contract", **c.__dict__}, default=str, indent=2))
    try:
        ri = load_refdata(s.config_dir).instrument(ex, sym)
        out.print(
            f"config/instruments.toml: {ri.kind} lot {ri.lot_size} tick {ri.tick_size} "
            f"freeze {ri.freeze_qty} expiry {ri.expiry or '-'}"
        )
    except RefDataError as exc:
        if c is None:
            err.print(f"unknown: {exc}")
            raise typer.Exit(1) from None
    ref = load_refdata(s.config_dir, master)
    used = ref.instrument(ex, sym)
    out.print(
        f"the stack uses ({ref.source(ex, sym)}): {used.kind} lot {used.lot_size} "
        f"tick {used.tick_size} freeze {used.freeze_qty} expiry {used.expiry or '-'}"
        + (f" strike {used.strike:g}" if used.strike else "")
    )


@app.command("history")
def history(n: Annotated[int, Opt("-n")] = 10) -> None:
    """The latest syncs: accepted or refused, and why."""
    t = Table(title="master contract syncs, newest first")
    for c in ("time", "day", "source", "accepted", "rows", "reasons / notes"):
        t.add_column(c)
    for ts, day, source, ok, rows, report in _open().history(n):
        rep = json.loads(report)
        t.add_row(
            ts,
            str(day),
            source,
            "yes" if ok else "[red]REFUSED[/]",
            str(rows),
            "; ".join(rep["reasons"] + rep["notes"]),
        )
    out.print(t)


def _open() -> MasterStore:
    from mytrading.master.store import MasterStore

    s = settings_or_exit()
    if not s.stores.instruments_db.exists():
        err.print(f"no master contract yet ({s.stores.instruments_db}): main.py instruments sync")
        raise typer.Exit(1)
    return MasterStore(s.stores.instruments_db, read_only=True)
