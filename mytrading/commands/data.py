"""Market data: the feed's recordings listed and exported (``download`` and ``import``,
for backtests, are the backtest's: ``backtest/cli.py``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from mytrading.commands.common import settings_or_exit
from mytrading.domain.refdata import IST
from mytrading.settings import Settings

app = typer.Typer(
    help="Market data: the feed's recordings; history downloaded or imported for backtests."
)


def _read_db(s: Settings) -> Any:
    import duckdb

    from mytrading.stores.recording import connect

    if not s.stores.record_db.exists():
        typer.echo(f"no recording at {s.stores.record_db}", err=True)
        raise typer.Exit(1)
    try:
        return connect(s.stores.record_db, read_only=True)
    except duckdb.IOException as exc:
        typer.echo(
            f"{s.stores.record_db} is locked by its writer (the feed): stop the stack first "
            f"({exc})",
            err=True,
        )
        raise typer.Exit(1) from None


@app.command("list")
def data_list() -> None:
    """What was recorded: per day and instrument, ticks, bars and the time span."""
    s = settings_or_exit()
    con = _read_db(s)
    rows = con.execute(
        """SELECT strftime(CAST(t.ts AS DATE), '%Y-%m-%d') AS day, t.exchange, t.symbol,
                  count(*) AS ticks,
                  epoch_ms(min(t.ts)) AS first, epoch_ms(max(t.ts)) AS last,
                  (SELECT count(*) FROM bars b WHERE b.exchange = t.exchange
                     AND b.symbol = t.symbol AND CAST(b.start AS DATE) = CAST(t.ts AS DATE)) AS bars
           FROM ticks t GROUP BY ALL ORDER BY day, exchange, symbol"""
    ).fetchall()
    con.close()
    if not rows:
        typer.echo("nothing recorded yet")
        return
    typer.echo(f"{'DAY':<12}{'EXCHANGE':<11}{'SYMBOL':<26}{'TICKS':>9}{'BARS':>7}  FIRST     LAST")
    for day, ex, sym, ticks, first, last, bars in rows:
        first, last = (
            datetime.fromtimestamp(x / 1000, IST).strftime("%H:%M:%S") for x in (first, last)
        )
        typer.echo(f"{day!s:<12}{ex:<11}{sym:<26}{ticks:>9}{bars:>7}  {first}  {last}")


@app.command("export")
def data_export(
    day: Annotated[str, typer.Option("--date", help="YYYY-MM-DD")],
    out: Annotated[Path, typer.Option("--out", help="file to write: .csv or .parquet")],
    symbol: Annotated[str | None, typer.Option("--symbol")] = None,
    kind: Annotated[str, typer.Option("--kind", help="ticks | bars")] = "bars",
) -> None:
    """Export one day's ticks or bars (optionally one symbol) to CSV or Parquet."""
    from datetime import date as _date

    s = settings_or_exit()
    try:
        _date.fromisoformat(day)
    except ValueError:
        typer.echo(f"--date {day!r} is not YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None
    if kind not in ("ticks", "bars") or out.suffix not in (".csv", ".parquet"):
        typer.echo("--kind is ticks or bars; --out ends in .csv or .parquet", err=True)
        raise typer.Exit(2)
    con = _read_db(s)
    col = "ts" if kind == "ticks" else "start"
    where = f"CAST({col} AS DATE) = ?" + (" AND symbol = ?" if symbol else "")
    params = [day, symbol] if symbol else [day]
    # DuckDB writes CSV and Parquet itself; the selection is a parameterised temp table.
    con.execute(
        f"CREATE TEMP TABLE export AS SELECT * FROM {kind} WHERE {where} ORDER BY {col}", params
    )
    n = con.execute("SELECT count(*) FROM export").fetchone()[0]
    fmt = "FORMAT csv, HEADER" if out.suffix == ".csv" else "FORMAT parquet"
    target = str(out.resolve()).replace("'", "''")
    con.execute(f"COPY export TO '{target}' ({fmt})")
    con.close()
    typer.echo(f"{n} {kind} written to {out}")
