"""``main.py webhook``: manage webhook strategies, their symbols and their audit log."""

from __future__ import annotations

import json
from datetime import time
from typing import Annotated, Any

import typer
from rich.table import Table

from mytrading.domain.ids import Instrument
from mytrading.process.consoles import err, out, settings_or_exit
from mytrading.settings import Settings

app = typer.Typer(help="Webhook strategies: TradingView, Amibroker and ChartInk alerts.")
symbols_app = typer.Typer(help="Map an alert's symbol to the contract traded.")
app.add_typer(symbols_app, name="symbols")

Opt = typer.Option


def _settings() -> Settings:
    return settings_or_exit()


def _store(s: Settings, check_names: bool = True) -> Any:
    from mytrading.webhook.store import StoreError, WebhookStore

    try:
        return WebhookStore(s.stores.webhook_db, check_names)
    except StoreError as exc:
        raise _refuse(exc) from None


def _refuse(exc: Exception | str) -> typer.Exit:
    err.print(f"[bold red]refused:[/] {exc}")
    return typer.Exit(2)


def _url(s: Settings, webhook_id: str) -> str:
    base = s.signals.public_url.rstrip("/") or f"http://{s.signals.host}:{s.signals.port}"
    return f"{base}/strategy/webhook/{webhook_id}"


def _hhmm(v: str | None, flag: str) -> time | None:
    if v is None:
        return None
    try:
        return time.fromisoformat(v)
    except ValueError:
        err.print(f"{flag} {v!r} is not HH:MM")
        raise typer.Exit(2) from None


PASS_ENV = "MT_WEBHOOK_PASSPHRASE"


def _read_passphrase() -> str:
    """The passphrase from the environment, else typed twice (not echoed)."""
    import os

    got = os.environ.get(PASS_ENV, "")
    if not got:
        got = typer.prompt("passphrase", hide_input=True, confirmation_prompt=True)
    if not got.strip():
        raise _refuse(ValueError("an empty passphrase: leave out --passphrase for none"))
    return got


def _show_id(s: Settings, name: str, webhook_id: str) -> None:
    out.print(f"webhook URL for {name} (shown once; `webhook rotate {name}` makes a new one):")
    out.print(_url(s, webhook_id), highlight=False)


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="lowercase, it names the strategy in risk")],
    mode: Annotated[str, Opt(help="LONG | SHORT | BOTH")] = "LONG",
    positional: Annotated[bool, Opt("--positional", help="not squared off daily")] = False,
    start: Annotated[str | None, Opt(help="entries from HH:MM IST (>= 09:15)")] = None,
    end: Annotated[str | None, Opt(help="entries until HH:MM")] = None,
    squareoff: Annotated[str | None, Opt(help="exits until, and square-off at, HH:MM")] = None,
    ask_passphrase: Annotated[
        bool,
        Opt(
            "--passphrase",
            help=f"alerts must carry a passphrase: read from ${PASS_ENV}, else asked for "
            "(never on the command line: shell history and `ps` would keep it)",
        ),
    ] = False,
    disabled: Annotated[bool, Opt("--disabled")] = False,
    maps: Annotated[
        list[str] | None,
        Opt("--map", help='ALERT_SYMBOL=EXCHANGE:SYMBOL, e.g. "NIFTY1!=NFO:NIFTY23NOV26FUT"'),
    ] = None,
    lots: Annotated[int, Opt(help="lots per alert without a size, for each --map")] = 1,
    product: Annotated[str, Opt(help="MIS | NRML | CNC, for each --map")] = "MIS",
) -> None:
    """Create a webhook strategy and print its URL (the only time it is shown in full);
    with --map, its symbols too: one command to a strategy that trades."""
    from mytrading.webhook.model import StrategyFields
    from mytrading.webhook.store import StoreError

    s = _settings()
    passphrase = _read_passphrase() if ask_passphrase else ""
    given = {
        "start": _hhmm(start, "--start"),
        "end": _hhmm(end, "--end"),
        "squareoff": _hhmm(squareoff, "--squareoff"),
    }
    try:
        fields = StrategyFields(
            name=name,
            mode=mode.upper(),
            intraday=not positional,
            enabled=not disabled,
            **{k: v for k, v in given.items() if v is not None},
        )
        _not_python(s, fields.name)
        mappings = [_map_arg(s, m, lots, product) for m in maps or []]
        store = _store(s)
        rec, webhook_id = store.create(fields, passphrase)
        for m in mappings:
            store.add_symbol(rec.name, m)
    except (ValueError, StoreError) as exc:
        raise _refuse(_brief(exc)) from None
    _show_id(s, rec.name, webhook_id)
    if not mappings:
        out.print(
            f"next: main.py webhook symbols add {rec.name} NIFTY1! --symbol "
            f"NFO:{_near_future(s)} --lots 1 --product NRML",
            highlight=False,
        )
        return
    for m in mappings:
        out.print(f"  {m.external} -> {m.exchange}:{m.symbol}, {m.lots} lot(s) {m.product}")
    body = {"symbol": mappings[0].external, "action": "buy", "contracts": "1"}
    if passphrase:
        body["passphrase"] = "<your passphrase>"
    out.print("try it (the stack running):", highlight=False)
    out.print(
        f"curl -s -X POST -H 'Content-Type: application/json' -d '{json.dumps(body)}' "
        f"{_url(s, webhook_id)}",
        highlight=False,
        soft_wrap=True,
    )


def _map_arg(s: Settings, arg: str, lots: int, product: str) -> Any:
    """``ALERT_SYMBOL=EXCHANGE:SYMBOL`` -> a checked mapping."""
    external, sep, contract = arg.rpartition("=")
    if not sep or not external:
        raise ValueError(f"--map {arg!r}: write ALERT_SYMBOL=EXCHANGE:SYMBOL")
    return _mapping(s, external, contract, lots, product)


def _mapping(s: Settings, external: str, contract: str, lots: int, product: str) -> Any:
    from mytrading.webhook.model import SymbolMap

    try:
        inst = Instrument.parse(contract)
    except ValueError:
        raise ValueError(f"{contract!r}: write EXCHANGE:SYMBOL, e.g. NFO:NIFTY29DEC26FUT") from None
    m = SymbolMap(
        external=external,
        exchange=inst.exchange,
        symbol=inst.symbol,
        lots=lots,
        product=product.upper(),
    )
    _check_contract(s, m)
    return m


def _not_python(s: Settings, name: str) -> None:
    """A webhook strategy may not take a Python strategy's name: they would share one
    book in risk, the router and P&L."""
    from mytrading.engine.loader import declared

    if name in declared(s.strategies_dir)[0]:
        raise ValueError(f"{name} is the name of a Python strategy ({s.strategies_dir})")


def _near_future(s: Settings) -> str:
    """NIFTY's near-month future today: a real contract for the example."""
    from datetime import datetime

    from mytrading.domain.refdata import IST, future_symbol, load_refdata

    ref = load_refdata(s.config_dir)
    u = ref.underlying("NIFTY")
    return future_symbol("NIFTY", ref.calendar.near_future_expiry(u, datetime.now(IST).date()))


@app.command("list")
def list_() -> None:
    """Every webhook strategy."""
    s = _settings()
    store = _store(s)
    t = Table(title=f"webhook strategies ({s.stores.webhook_db})")
    for c in ("name", "enabled", "mode", "kind", "entries", "square-off", "symbols", "id"):
        t.add_column(c)
    for r in store.all():
        f = r.fields
        t.add_row(
            f.name,
            "yes" if f.enabled else "no",
            f.mode,
            "intraday" if f.intraday else "positional",
            f"{f.start:%H:%M}-{f.end:%H:%M}",
            f"{f.squareoff:%H:%M}",
            str(len(store.symbols(f.name))),
            f"{r.id_hint}…" + (" +passphrase" if r.has_passphrase else ""),
        )
    out.print(t)


@app.command("show")
def show(name: str) -> None:
    """One strategy: its settings and symbol mappings (the webhook id only as a hint)."""
    from mytrading.webhook.store import StoreError

    s = _settings()
    store = _store(s)
    try:
        r = store.get(name)
        maps = store.symbols(name)
    except StoreError as exc:
        raise _refuse(exc) from None
    f = r.fields
    out.print(
        f"[bold]{f.name}[/]  {'enabled' if f.enabled else 'DISABLED'}  {f.mode}  "
        f"{'intraday' if f.intraday else 'positional'}"
    )
    out.print(
        f"entries {f.start:%H:%M}-{f.end:%H:%M}, exits until {f.squareoff:%H:%M} IST"
        + (f", squared off at {f.squareoff:%H:%M}" if f.intraday else "")
    )
    out.print(
        f"webhook id {r.id_hint}… (passphrase: {'yes' if r.has_passphrase else 'no'}); "
        f"created {r.created}, updated {r.updated}"
    )
    _symbols_table(maps)


@app.command("edit")
def edit(
    name: str,
    rename: Annotated[str | None, Opt("--name", help="a new name")] = None,
    mode: Annotated[str | None, Opt()] = None,
    intraday: Annotated[bool | None, Opt("--intraday/--positional")] = None,
    start: Annotated[str | None, Opt()] = None,
    end: Annotated[str | None, Opt()] = None,
    squareoff: Annotated[str | None, Opt()] = None,
    ask_passphrase: Annotated[
        bool,
        Opt("--passphrase", help=f"set a new passphrase (from ${PASS_ENV}, else asked for)"),
    ] = False,
    no_passphrase: Annotated[bool, Opt("--no-passphrase", help="remove the passphrase")] = False,
) -> None:
    """Change a strategy's settings (checked together as a whole)."""
    from mytrading.webhook.store import StoreError

    s = _settings()
    if ask_passphrase and no_passphrase:
        raise _refuse(ValueError("--passphrase and --no-passphrase together: which one?"))
    passphrase = _read_passphrase() if ask_passphrase else ("" if no_passphrase else None)
    changes: dict[str, Any] = {
        "name": rename,
        "mode": mode.upper() if mode else None,
        "intraday": intraday,
        "start": _hhmm(start, "--start"),
        "end": _hhmm(end, "--end"),
        "squareoff": _hhmm(squareoff, "--squareoff"),
    }
    store = _store(s, check_names=False)  # a legacy name that breaks the rule: renamed here
    try:
        if rename:
            _not_python(s, rename)
        rec = store.update(name, **{k: v for k, v in changes.items() if v is not None})
        if passphrase is not None:
            store.set_passphrase(rec.name, passphrase)
    except (ValueError, StoreError) as exc:
        raise _refuse(exc) from None
    out.print(f"{rec.name} updated")


def _toggle(name: str, enabled: bool) -> None:
    from mytrading.webhook.store import StoreError

    try:
        _store(_settings()).update(name, enabled=enabled)
    except StoreError as exc:
        raise _refuse(exc) from None
    out.print(f"{name} {'enabled' if enabled else 'disabled'}")


@app.command("enable")
def enable(name: str) -> None:
    """Accept this strategy's alerts."""
    _toggle(name, True)


@app.command("disable")
def disable(name: str) -> None:
    """Refuse this strategy's alerts (403), keeping its settings."""
    _toggle(name, False)


@app.command("delete")
def delete(name: str, yes: Annotated[bool, Opt("--yes", help="no question")] = False) -> None:
    """Delete a strategy and its mappings (its audit entries stay)."""
    from mytrading.webhook.store import StoreError

    if not yes and not typer.confirm(f"delete webhook strategy {name}?"):
        raise typer.Exit(1)
    try:
        _store(_settings()).delete(name)
    except StoreError as exc:
        raise _refuse(exc) from None
    out.print(f"{name} deleted")


@app.command("rotate")
def rotate(name: str) -> None:
    """A new webhook id for the strategy; the old URL stops working at once."""
    from mytrading.webhook.store import StoreError

    s = _settings()
    try:
        webhook_id = _store(s).rotate(name)
    except StoreError as exc:
        raise _refuse(exc) from None
    _show_id(s, name, webhook_id)


@app.command("log")
def log(
    strategy: Annotated[str | None, Opt("--strategy")] = None,
    n: Annotated[int, Opt("-n")] = 30,
) -> None:
    """The latest requests, accepted or refused, with their reason and outcome."""
    s = _settings()
    t = Table(title="webhook requests, newest first")
    cols = ("time", "strategy", "id", "client", "status", "reason", "intents", "outcome")
    for c in (*cols, "ignored fields"):
        t.add_column(c)
    for r in _store(s).audit(strategy, n):
        t.add_row(
            r["ts"],
            r["strategy"] or "-",
            f"{r['id_hint']}…",
            r["client"],
            str(r["status"]),
            r["reason"],
            ", ".join(r["intents"]),
            r["outcome"] or "",
            r["ignored"].replace(",", ", "),
        )
    out.print(t)


# ------------------------------------------------------------------------ symbols


@symbols_app.command("add")
def symbols_add(
    name: str,
    external: Annotated[str, typer.Argument(help="the symbol as the alert sends it")],
    symbol: Annotated[str, Opt("--symbol", help="EXCHANGE:SYMBOL traded (OpenAlgo's)")],
    lots: Annotated[int, Opt(help="lots per alert without a size")] = 1,
    product: Annotated[str, Opt(help="MIS | NRML | CNC")] = "MIS",
) -> None:
    """Map an alert's symbol to a contract (replacing an earlier mapping of it)."""
    from mytrading.webhook.store import StoreError

    s = _settings()
    try:
        m = _mapping(s, external, symbol, lots, product)
        _store(s).add_symbol(name, m)
    except (ValueError, StoreError) as exc:
        raise _refuse(_brief(exc)) from None
    out.print(f"{name}: {m.external} -> {m.exchange}:{m.symbol}, {m.lots} lot(s) {m.product}")


def _check_contract(s: Settings, m: Any) -> None:
    """The contract must exist in the reference data, be tradable, and take the product."""
    from mytrading.domain.refdata import load_refdata
    from mytrading.master.store import MasterIndex

    ref = load_refdata(s.config_dir, MasterIndex.load(s.stores.instruments_db))
    inst = ref.instrument(m.exchange, m.symbol)
    if not inst.tradable:
        raise ValueError(f"{m.symbol} is an index: map its future or an option")
    derivative = inst.kind in ("FUT", "CE", "PE")
    if m.product == "NRML" and not derivative:
        raise ValueError("NRML is for derivatives; use CNC or MIS on NSE/BSE")
    if m.product == "CNC" and derivative:
        raise ValueError("CNC is for delivery equity; use NRML or MIS on F&O")


@symbols_app.command("remove")
def symbols_remove(name: str, external: str) -> None:
    """Remove one mapping."""
    from mytrading.webhook.store import StoreError

    try:
        _store(_settings()).remove_symbol(name, external)
    except StoreError as exc:
        raise _refuse(exc) from None
    out.print(f"{name}: {external.upper()} removed")


@symbols_app.command("list")
def symbols_list(name: str) -> None:
    """A strategy's mappings."""
    from mytrading.webhook.store import StoreError

    try:
        maps = _store(_settings()).symbols(name)
    except StoreError as exc:
        raise _refuse(exc) from None
    _symbols_table(maps)


def _symbols_table(maps: dict[str, Any]) -> None:
    t = Table(title="symbols")
    for c in ("alert symbol", "exchange", "symbol", "lots", "product"):
        t.add_column(c)
    for m in maps.values():
        t.add_row(m.external, m.exchange, m.symbol, str(m.lots), m.product)
    out.print(t if maps else "no symbols mapped yet (webhook symbols add ...)")


def _brief(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'value'}: {e['msg']}".replace(
                "Value error, ", ""
            )
            for e in errors()
        )
    return str(exc)
