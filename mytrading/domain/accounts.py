"""OpenAlgo accounts, and which strategies trade on which (``config/accounts.toml``).

The account ``main`` always exists: it is the one the ``MT_OPENALGO_*`` settings describe
(the local simulator server by default). More accounts are tables of the file; each names
the environment variable that holds its API key, so no key is ever written there.

A strategy trades on its **lead** account (``main`` unless the file names another): its
positions there are the ones the strategy sees. Accounts that **follow** a strategy
mirror its position, each at its own size: a fixed multiple of the lead's quantity, or
lots from that account's own margin (a grade of ``margins.toml [sizing]``), fixed when the
position opens (risk/mirror.py).
Each follower's positions are kept as a book of their own, named ``<strategy>@<account>``,
so risk limits, P&L, exits and reconciliation apply to it as to any strategy's; the
engine never sees it.

Market data comes from the first account of ``[market_data] order`` that answers, with
failover to the next and back (``feed/daemon.py``).
"""

from __future__ import annotations

import re
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mytrading.domain.ids import Book
from mytrading.domain.names import bad_name
from mytrading.settings import ConfigError, Settings, env_value, is_loopback

MAIN = "main"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ACCOUNT_KEYS = {"host", "ws_url", "api_key_env", "orders_per_s", "smart_orders_per_s"}


@dataclass(frozen=True)
class Account:
    name: str
    rest_url: str
    ws_url: str
    api_key: str = field(repr=False)
    orders_per_s: float
    smart_orders_per_s: float


@dataclass(frozen=True)
class Follow:
    """One follower of a strategy: ``multiple`` lots per lead lot, or sized by ``grade``."""

    account: str
    multiple: float = 0.0
    grade: str = ""


@dataclass(frozen=True)
class Accounts:
    by_name: dict[str, Account]
    follows: dict[str, tuple[Follow, ...]] = field(default_factory=dict)
    data_order: tuple[str, ...] = (MAIN,)
    leads: dict[str, str] = field(default_factory=dict)  # strategy -> its lead, if not main

    def lead(self, strategy: str) -> str:
        return self.leads.get(strategy, MAIN)

    def account_of(self, book: str) -> str:
        """The account a book trades on: a follower book's, or its strategy's lead."""
        b = Book.parse(book)
        return b.account or self.lead(b.strategy)

    def followers(self, strategy: str) -> tuple[Follow, ...]:
        return self.follows.get(strategy, ())

    def grades(self) -> set[str]:
        return {f.grade for fs in self.follows.values() for f in fs if f.grade}


def book_name(strategy: str, account: str) -> str:
    """The book a follower account keeps for a strategy."""
    return str(Book(strategy, account))


def load_accounts(s: Settings, keys: bool = True) -> Accounts:
    """The accounts of ``s.accounts_file`` (default ``config/accounts.toml``) and ``main``.

    Raises ConfigError naming the table and key for anything wrong: an unknown key, a
    missing key variable, a lead or follower that is not an account, a lead following
    itself. An account's key is read from the environment or ``.env``, as every setting;
    ``keys=False`` (read-only commands, where orders go) takes an account without one."""
    main = Account(
        MAIN,
        s.rest_url(),
        s.ws_url(),
        s.api_key(),
        s.router.orders_per_s,
        s.router.smart_orders_per_s,
    )
    if s.broker == "openalgo" and not s.sim_server:
        check_url(main.rest_url, "http", s, "MT_OPENALGO_HOST")
        check_url(main.ws_url, "ws", s, "MT_OPENALGO_WS_URL")
    path = s.accounts_file or s.config_dir / "accounts.toml"
    data = _read(path)
    unknown = set(data) - {"accounts", "strategies", "market_data"}
    if unknown:
        raise ConfigError(f"{path}: unknown tables {sorted(unknown)}")
    by_name = {MAIN: main}
    for name, t in _table(data, "accounts", path).items():
        where = f"{path} [accounts.{name}]"
        if name == MAIN:
            raise ConfigError(f"{where}: 'main' is set by MT_OPENALGO_*; give another name")
        if not NAME.match(name):
            raise ConfigError(f"{where}: a name is a-z, 0-9 and _, starting with a letter")
        if not isinstance(t, dict) or set(t) - ACCOUNT_KEYS:
            raise ConfigError(f"{where}: allowed keys are {sorted(ACCOUNT_KEYS)}")
        for k in ("host", "ws_url", "api_key_env"):
            if not isinstance(t.get(k), str) or not t[k]:
                raise ConfigError(f"{where}: {k} is required (a string)")
        check_url(t["host"], "http", s, f"{where} host")
        check_url(t["ws_url"], "ws", s, f"{where} ws_url")
        key = env_value(t["api_key_env"])
        if not key and keys:
            raise ConfigError(f"{where}: the environment variable {t['api_key_env']} is empty")
        by_name[name] = Account(
            name,
            t["host"].rstrip("/"),
            t["ws_url"],
            key,
            _rate(t, "orders_per_s", s.router.orders_per_s, where),
            _rate(t, "smart_orders_per_s", s.router.smart_orders_per_s, where),
        )
    if s.broker == "sim" and len(by_name) > 1:
        raise ConfigError(f"{path}: the in-process broker (MT_BROKER=sim) has one account")
    follows: dict[str, tuple[Follow, ...]] = {}
    leads: dict[str, str] = {}
    tables = [
        (s_, t, f"{path} [strategies.{s_}]") for s_, t in _table(data, "strategies", path).items()
    ]
    tables += _builder_accounts(s, {s_ for s_, _, _ in tables})
    for strategy, t, where in tables:
        why = bad_name(strategy)
        if why:
            raise ConfigError(f"{path} [strategies]: {why}")
        if not isinstance(t, dict) or not t or set(t) - {"lead", "follow"}:
            raise ConfigError(f"{where}: keys lead = <account>, follow = {{ <account> = <size> }}")
        lead = t.get("lead", MAIN)
        if lead not in by_name:
            raise ConfigError(f"{where}: lead {lead!r} is not an account")
        leads[strategy] = lead
        if not isinstance(t.get("follow", {}), dict):
            raise ConfigError(f"{where}: follow = {{ <account> = <size>, ... }}")
        fs = []
        for acct, size in t.get("follow", {}).items():
            if acct not in by_name or acct == lead:
                raise ConfigError(f"{where}: follow.{acct} is not an account other than the lead")
            if isinstance(size, bool) or not isinstance(size, int | float | str):
                raise ConfigError(f"{where}: follow.{acct} is a multiple or a grade")
            if isinstance(size, str):
                fs.append(Follow(acct, grade=size))
            elif size <= 0:
                raise ConfigError(f"{where}: follow.{acct} = {size} must be positive")
            else:
                fs.append(Follow(acct, multiple=float(size)))
        follows[strategy] = tuple(fs)
    order = _table(data, "market_data", path).get("order", list(by_name))
    if not order or any(a not in by_name for a in order) or len(set(order)) != len(order):
        raise ConfigError(f"{path} [market_data] order: distinct account names, got {order}")
    return Accounts(by_name, follows, tuple(order), leads)


def _builder_accounts(s: Settings, in_file: set[str]) -> list[tuple[str, Any, str]]:
    """The ``[accounts]`` tables of the enabled builder files (``strategies/<name>.toml``),
    as accounts.toml's ``[strategies.<name>]`` would give them; a strategy given accounts
    in both places is an error. A file that does not parse is left to the loader, which
    names its lines."""
    from mytrading.builder.spec import SpecError, parse

    out: list[tuple[str, Any, str]] = []
    for name in s.enabled_strategies():
        path = s.strategies_dir / f"{name}.toml"
        if not path.exists():
            continue
        try:
            spec = parse(path)
        except SpecError:
            continue
        if spec.accounts is None:
            continue
        if name in in_file:
            raise ConfigError(
                f"{path} [accounts]: {name} has accounts in accounts.toml too; keep one"
            )
        out.append((name, spec.accounts.model_dump(), f"{path} [accounts]"))
    return out


def check_url(url: str, kind: str, s: Settings, where: str) -> None:
    """An OpenAlgo address: ``http(s)://host[:port]`` (``kind`` "http") or ``ws(s)://...``
    ("ws"). A host other than this machine must use TLS (https, wss): the API key is in
    every request. ``MT_OPENALGO_PLAIN_HTTP_HOSTS`` names the hosts allowed without it."""
    secure = kind + "s"
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError as exc:
        raise ConfigError(f"{where}: {url!r} is not a URL ({exc})") from None
    if parts.scheme not in (kind, secure) or not host or any(c.isspace() for c in url):
        raise ConfigError(f"{where}: {url!r} must look like {secure}://host[:port]")
    if parts.scheme == kind and not is_loopback(host) and host not in s.openalgo.plain_http_hosts:
        raise ConfigError(
            f"{where}: {url} is plain {kind} to another machine: the API key would cross the "
            f"network in clear. Use {secure}://, or allow this host by name: "
            f"MT_OPENALGO_PLAIN_HTTP_HOSTS={host}"
        )


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _table(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    t = data.get(name, {})
    if not isinstance(t, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return t


def _rate(t: dict[str, Any], k: str, default: float, where: str) -> float:
    v = t.get(k, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 100_000:
        raise ConfigError(f"{where}: {k} must be a number in (0, 100000], got {v!r}")
    return float(v)
