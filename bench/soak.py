#!/usr/bin/env python3
"""The soak (issue 35): the demo stack for N consecutive sessions, a daemon killed each one.

The whole stack under supervisord on the embedded simulator (the default path: the
simulator server, REST + WebSocket), every example strategy and one builder strategy per
builder template, market time at ``--speed`` (nights, weekends and holidays are skipped
by the market clock), starting on ``--start`` (default: a Friday, so the run crosses a
weekend, the Christmas holiday and weekly expiries). Once a session, at a random market
time, one random daemon is killed with ``SIGKILL``; supervisord starts it again.

At the end of each session (market 15:28) it takes: each daemon's RSS (MB) and open
files, each store's size, error and warning lines by kind (from every daemon's JSON log),
reconciler mismatches, and MIS positions still open after the square-off (at 1200x the
square-off, once a wall second, may not be done by then: read it at 300x). Once the day
is over it compares the broker's orders of the day (the simulator's books file: every
order it ever answered for) with the router's journal and its copies of the days it rolled
away: an order the broker holds that no journal accounts for is a duplicate send or worse;
a broker id the journal holds that the broker does not is lost; an order still unknown
(its reply lost, the router still looking) is pending. The last line, for scripts:

    soak: sessions N errors E mismatches M duplicates D lost L rss_growth_pct G

G: the largest daemon's RSS change from the end of session 3 (or 1 when N < 4) to the
end, in % (the stack's daemons; the simulator, which stands in for the broker, is shown
apart: it keeps every day's orders while it runs). Goals over 10 sessions: E = M = D = L = 0,
G within 10.

    .venv/bin/python bench/soak.py [--sessions 10] [--speed 300] [--seed 7] [--no-kill]
        [--faults seed=7,lose_place=0.2,garble_books=0.1,clock_offset_s=-60] [--demo]

``--demo`` runs the shipped configuration untouched (the README's demo: its seven
strategies and their limits), e.g. ``--demo --sessions 5 --speed 30 --no-kill``: the
demo left running at its default speed for five days.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mytrading.builder.templates import TEMPLATES, render  # noqa: E402
from mytrading.domain.clock import build_clock  # noqa: E402
from mytrading.domain.refdata import IST, load_refdata  # noqa: E402
from mytrading.messaging.bus import DAEMONS  # noqa: E402
from mytrading.process import disk, supervise  # noqa: E402
from mytrading.router.journal import day_start_ns, read  # noqa: E402
from tests.procs import Watcher, run_cli, settings_of  # noqa: E402
from tests.simhelpers import free_port  # noqa: E402

VICTIMS = ("router", "risk", "engine", "feed", "reconciler", "signals", "monitor")
# after the MIS square-off (15:15) and expiry closes (15:20), before the day closes at
# 15:30 (risk's post-trade pass runs once a wall second: at 300x, 5 market minutes)
SESSION_END = (15, 28)
LATE_START = (12, 0)  # a stack up after this is not counted for that session


def soak_env(tmp: Path, speed: float, start: str, demo: bool = False) -> dict[str, str]:
    """The soak's stack in ``tmp``. ``demo``: the shipped configuration as a new user runs
    it (its strategies, limits and files untouched); else every example and a builder
    strategy per template, the stack's daily limits scaled for their number."""
    strategies = tmp / "strategies"
    shutil.copytree(ROOT / "strategies", strategies)
    config = tmp / "config"
    shutil.copytree(ROOT / "config", config)
    if demo:
        return {**_stores(tmp, speed, start), "MT_STRATEGIES_DIR": str(strategies),
                "MT_CONFIG_DIR": str(config)}  # fmt: skip
    # 14 strategies on one simulated account: the stack's daily loss limit (50,000, made
    # for the demo's seven) is scaled with them, or a losing day halts the soak's stack
    # for good and the later sessions trade nothing; each keeps its own daily limit
    risk = config / "risk.toml"
    text = risk.read_text()
    for key, value in (("daily_loss_limit", "150000.0"), ("max_drawdown", "200000.0")):
        text = re.sub(rf"(?m)^{key} = [0-9.]+", f"{key} = {value}", text, count=1)
    risk.write_text(text)
    names = [p.stem for p in sorted(strategies.glob("*.py"))]
    names += [p.stem for p in sorted(strategies.glob("*.toml"))]
    for template in TEMPLATES:
        name = f"soak_{template}"
        (strategies / f"{name}.toml").write_text(render(name, template))
        names.append(name)
    return {
        **_stores(tmp, speed, start),
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_CONFIG_DIR": str(config),
        "MT_STRATEGIES": ",".join(names),
    }


def _stores(tmp: Path, speed: float, start: str) -> dict[str, str]:
    """Every store, port and key of the soak's own (nothing shared with another stack)."""
    return {
        **os.environ,
        "MT_LOG_DIR": str(tmp / "logs"),
        "MT_RUN_DIR": f"/tmp/mtsoak-{os.getpid()}",
        "MT_STATE_DIR": str(tmp / "logs" / "state"),
        "MT_RECORD_DB": str(tmp / "logs" / "data" / "marketdata.duckdb"),
        "MT_RISK_DB": str(tmp / "logs" / "data" / "risk.duckdb"),
        "MT_HISTORY_DB": str(tmp / "logs" / "data" / "history.duckdb"),
        "MT_BACKTEST_DB": str(tmp / "logs" / "data" / "backtests.duckdb"),
        "MT_REPORT_DIR": str(tmp / "logs" / "backtests"),
        "MT_WEBHOOK_DB": str(tmp / "logs" / "data" / "webhooks.sqlite"),
        "MT_ALERTS_DB": str(tmp / "logs" / "data" / "alerts.sqlite"),
        "MT_INSTRUMENTS_DB": str(tmp / "logs" / "data" / "instruments.duckdb"),
        "MT_SIM_REST_PORT": str(free_port()),
        "MT_SIM_WS_PORT": str(free_port()),
        "MT_SIM_API_KEY": f"soak-{secrets.token_hex(8)}",  # no other stack's clients
        "MT_SIGNALS_PORT": str(free_port()),
        "MT_MONITOR_PORT": str(free_port()),
        "MT_SIM_SPEED": str(speed),
        "MT_SIM_START": start,
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),
    }


class Logs:
    """New JSON lines of every ``logs/*.log`` since the last read, by (level, event)."""

    def __init__(self, log_dir: Path) -> None:
        self.dir = log_dir
        self.offsets: dict[str, tuple[int, int]] = {}  # file -> (inode, offset)

    def new_lines(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for f in sorted(self.dir.glob("*.log")):
            if f.name.endswith(".console.log") or f.name in ("supervisord.log", "crashes.log"):
                continue
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            ino, off = self.offsets.get(f.name, (st.st_ino, 0))
            if ino != st.st_ino or st.st_size < off:
                off = 0  # rotated: the new file from its start
            with f.open("rb") as fh:
                fh.seek(off)
                data = fh.read()
            end = data.rfind(b"\n") + 1
            self.offsets[f.name] = (st.st_ino, off + end)
            for line in data[:end].splitlines():
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if isinstance(d, dict):
                    out.append(d)
        return out


def kinds(lines: list[dict[str, Any]], level: str) -> collections.Counter[str]:
    return collections.Counter(
        f"{d.get('daemon', '?')}: {str(d.get('event', ''))[:90]}"
        for d in lines
        if d.get("level") == level
    )


def procs_of(s: Any) -> dict[str, tuple[float, int]]:
    """Each supervised program's (RSS MB, open files) now."""
    out: dict[str, tuple[float, int]] = {}
    for name, p in supervise.process_info(s).items():
        pid = p.get("pid") or 0
        if not pid:
            continue
        try:
            proc = psutil.Process(pid)
            out[name] = (proc.memory_info().rss / 2**20, proc.num_fds())
        except psutil.Error:
            continue
    return out


def positions(client: Any) -> list[dict[str, Any]]:
    """The simulator's position book now (``client``: made before the run: the SDK's first
    import takes seconds, minutes of market time at speed)."""
    for _ in range(30):  # a broker's bad day (--faults) garbles some reads: ask again
        pb = client.positionbook()
        if isinstance(pb.get("data"), list):
            return pb["data"]
        time.sleep(0.05)
    raise RuntimeError("the simulator's position book could not be read 30 times in a row")


def broker_orders(s: Any) -> dict[str, dict[str, Any]]:
    """Every order the simulated broker holds, of every day: its books file, where each
    change is written before the answer that reports it leaves the server (what a
    broker's back office would print; its order book shows only the day's)."""
    out: dict[str, dict[str, Any]] = {}
    path = s.state_dir / "sim" / "books.jsonl"
    if not path.exists():
        return out  # no order yet (a day the stack came up for late may have none)
    for line in path.read_bytes().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue  # a line being written
        if isinstance(d, dict) and d.get("k") == "order":
            out[str(d["orderid"])] = d
    return out


def journal_orders(s: Any) -> dict[str, Any]:
    """Every order in the router's journal and in its copies of the days it rolled away
    (``journal.bin.day-<day>``), each at its newest record. The stack runs on while this
    reads: a roll between listing the copies and reading the journal would hide the
    rolled day (its copy not listed yet, the journal already rewritten without it), so
    the read is taken again until no roll came in between."""
    for _ in range(10):
        before = _journal_files(s)
        out: dict[str, Any] = {}
        for venue in s.state_dir.glob("venues/*/router"):
            days = sorted(f for f in venue.glob("journal.bin.day-*") if not f.name.endswith(".tmp"))
            for f in [*days, venue / "journal.bin"]:  # oldest first: the newest state wins
                if f.exists():
                    out.update(read(f).orders)
        if _journal_files(s) == before:
            return out
    raise RuntimeError("the journal rolled under every one of ten reads")


def _journal_files(s: Any) -> set[tuple[str, int]]:
    """The journal files and their inodes: a roll adds a day's copy and replaces the
    journal (a new inode)."""
    out = set()
    for f in s.state_dir.glob("venues/*/router/journal.bin*"):
        with contextlib.suppress(FileNotFoundError):
            out.add((str(f), f.stat().st_ino))
    return out


def in_flight(s: Any, day: date) -> bool:
    """An order of ``day`` handed to the broker with no answer yet."""
    since, until = day_start_ns(str(day)), day_start_ns(str(day + timedelta(days=1)))
    return any(
        jo.state == "sent" and not jo.broker_id and since <= jo.sent_ns < until
        for jo in journal_orders(s).values()
    )


def journal_check(s: Any, day: date) -> tuple[int, int, int, int, list[str]]:
    """(orders, duplicates, lost, pending, what) for ``day``, checked once it is over: the
    broker's orders of the day (its ids begin with the day, as a sandbox's do) against
    the journal's. Duplicates: a broker order no journal accounts for (sent twice, or
    sent unjournaled), or a broker id two of our orders claim; lost: a broker id the
    journal holds that the broker does not; pending: an order of the day still unknown
    (its reply lost: the router is looking for it), with the broker row of its shape
    that its adoption will take."""
    prefix = f"{day:%y%m%d}"
    broker = {b: d for b, d in broker_orders(s).items() if b.startswith(prefix)}
    ours = journal_orders(s)
    claimed = collections.Counter(jo.broker_id for jo in ours.values() if jo.broker_id)
    since, until = day_start_ns(str(day)), day_start_ns(str(day + timedelta(days=1)))
    unknown = [
        jo
        for jo in ours.values()
        if not jo.broker_id
        and (jo.state == "unknown" or jo.state == "sent")
        and since <= jo.sent_ns < until
    ]
    what: list[str] = []
    dup = sorted(b for b, n in claimed.items() if n > 1 and b.startswith(prefix))
    unaccounted = set(broker) - set(claimed)
    for jo in unknown:  # the row its adoption will take, if the broker has one
        o = jo.order
        for bid in sorted(unaccounted):
            r = broker[bid]
            if (r.get("symbol"), r.get("action"), int(r.get("quantity") or 0)) == (
                o.symbol, o.action, o.quantity,
            ):  # fmt: skip
                unaccounted.discard(bid)
                break
    lost = sorted(b for b in claimed if b.startswith(prefix) and b not in broker)
    if dup:
        what.append(f"broker ids held by two of our orders: {dup}")
    if unaccounted:
        what.append(f"at the broker, not in the journal: {sorted(unaccounted)}")
    if lost:
        what.append(f"in the journal, not at the broker: {lost}")
    if unknown:
        what.append(
            f"still unknown after the day (looked for: adopted or found absent "
            f"later): {sorted(jo.order.order_id for jo in unknown)}"
        )
    return len(broker), len(dup) + len(unaccounted), len(lost), len(unknown), what


def _ready(s: Any, timeout: float = 120.0) -> float:
    """Wall seconds until every daemon beats and no strategy is still warming up (the
    start command returns once supervisord has launched them, before they trade): the
    moment the stack is up, for ``_late_start`` to judge. Gives up after ``timeout``."""
    w = Watcher(s, ("sys.status.",))
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            w.pump(0.2)
            engine = w.status.get("engine")
            if engine is None or not set(DAEMONS) <= set(w.status):
                continue
            strategies = engine.detail.get("strategies", {})
            if strategies and not any(v.get("warming") for v in strategies.values()):
                break
    finally:
        w.close()
    return time.monotonic() - t0


def _late_start(clock: Any, s: Any, totals: collections.Counter[str]) -> None:
    """The market clock runs from the launch, so a slow start (20 s on a loaded machine
    is 6.7 market hours at 1200x) can eat most of the first session: CI once saw a first
    session with no order. A session the stack was not up for (``_ready``) by noon is not
    counted; its orders are still checked once it is over."""
    now = clock.now().astimezone(IST)
    if (now.hour, now.minute) < LATE_START:
        return
    day = now.date()
    print(f"the stack was up at {now:%H:%M} market time: {day} is not counted")
    while clock.now().astimezone(IST).date() == day:
        time.sleep(0.2)
    settle = time.monotonic() + 10  # as for a session: an answer on its way may land
    while time.monotonic() < settle and in_flight(s, day):
        time.sleep(0.2)
    todays, dup, lost, pending, what = journal_check(s, day)
    totals.update(duplicates=dup, lost=lost, pending=pending)
    print(f"{day}: orders at the broker {todays}; duplicates {dup}; lost {lost}; "
          f"unknown pending {pending}")  # fmt: skip
    for w in what:
        print(f"  ! {w}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--speed", type=float, default=300.0)
    ap.add_argument("--start", default="2026-12-18T09:15")  # a Friday; 25th a holiday
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument(
        "--demo",
        action="store_true",
        help="the shipped configuration as it is (its strategies and limits), not the soak's",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    ap.add_argument(
        "--faults",
        default="",
        help="a broker's bad day for the simulator (MT_SIM_FAULTS), e.g. "
        "seed=7,lose_place=0.2,garble_books=0.1,clock_offset_s=-60: lost replies are "
        "adopted, so duplicates and lost stay 0; each unknown order is an ALERT (an error)",
    )
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tmp = Path(tempfile.mkdtemp(prefix="mtsoak-"))
    env = soak_env(tmp, a.speed, a.start, a.demo)
    if a.faults:
        env["MT_SIM_FAULTS"] = a.faults
    s = settings_of(env)
    clock = build_clock(s, load_refdata(s.config_dir).calendar)
    logs = Logs(s.log_dir)
    from openalgo import api

    client = api(api_key=s.api_key(), host=s.rest_url(), timeout=10.0)
    r = run_cli("start", env=env, timeout=180)
    if r.returncode != 0:
        sys.exit(f"start failed:\n{r.stdout}\n{r.stderr}")
    print(f"soak: {a.sessions} sessions from {a.start} at {a.speed:g}x; state in {tmp}")
    totals = collections.Counter[str]()
    rss_at: dict[int, dict[str, float]] = {}
    try:
        print(f"every daemon beating and every strategy warmed up {_ready(s):.1f}s after start")
        _late_start(clock, s, totals)
        for n in range(1, a.sessions + 1):
            day = clock.now().astimezone(IST).date()
            end = datetime(day.year, day.month, day.day, *SESSION_END, tzinfo=IST)
            killed = ""
            if not a.no_kill:
                at = datetime(day.year, day.month, day.day, 9, 30, tzinfo=IST) + timedelta(
                    minutes=rng.randrange(0, 5 * 60)
                )
                while clock.now() < at:
                    time.sleep(0.2)
                killed = rng.choice(VICTIMS)
                pid = (supervise.process_info(s).get(killed) or {}).get("pid")
                if pid:
                    os.kill(pid, signal.SIGKILL)
                killed = f"{killed} at {at:%H:%M}"
            while clock.now() < end and clock.now().astimezone(IST).date() == day:
                time.sleep(0.02)  # 0.2 s is 4 market minutes at 1200x
            book = positions(client)  # before the night: the broker's book of the day
            lines = logs.new_lines()
            errors, warnings = kinds(lines, "error"), kinds(lines, "warning")
            mismatches = sum(
                1
                for d in lines
                if d.get("daemon") == "reconciler" and "mismatch" in str(d.get("event", ""))
                and d.get("level") in ("warning", "error")
            )  # fmt: skip
            mis_open = [
                f"{p.get('symbol')} {p.get('quantity')}"
                for p in book
                if p.get("product") == "MIS" and int(float(p.get("quantity") or 0))
            ]
            procs = procs_of(s)
            rss_at[n] = {k: v[0] for k, v in procs.items()}
            stores = disk.usage(s)
            # The orders are compared once the day is over: nothing more can be sent on it,
            # and an answer still on its way (a late broker) has a few seconds to land
            while clock.now().astimezone(IST).date() == day:  # the next session's day
                time.sleep(0.2)
            settle = time.monotonic() + 10
            while time.monotonic() < settle and in_flight(s, day):
                time.sleep(0.2)
            todays, dup, lost, pending, what = journal_check(s, day)
            totals.update(
                errors=sum(errors.values()),
                warnings=sum(warnings.values()),
                mismatches=mismatches,
                duplicates=dup,
                lost=lost,
                pending=pending,
                mis_open=len(mis_open),
            )
            print(f"\n== session {n}: {day} ({day:%a}){'  killed ' + killed if killed else ''}")
            print(f"orders at the broker {todays}; duplicates {dup}; lost {lost}; "
                  f"unknown pending {pending}; "
                  f"mismatches {mismatches}; MIS open after square-off {len(mis_open)}"
                  + (f" {mis_open}" if mis_open else ""))  # fmt: skip
            for w in what:
                print(f"  ! {w}")
            print("rss MB / files: " + "  ".join(
                f"{k} {v[0]:.0f}/{v[1]}" for k, v in sorted(procs.items())))  # fmt: skip
            print("stores: " + "  ".join(f"{k} {v / 2**20:.1f}MB" for k, v in stores.items()))
            print(f"errors {sum(errors.values())}, warnings {sum(warnings.values())}")
            for kind, c in (errors + warnings).most_common(12):
                print(f"  {c:>6}  {kind}", flush=True)
        # orders still unknown must be resolved by the router (adopted or found absent):
        # one that stays unknown a minute of the wall after the last session is lost
        left: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = [o for o, jo in journal_orders(s).items() if jo.state == "unknown"]
            if not left:
                break
            time.sleep(1.0)
        print(f"\nunknown orders left after the last session: {len(left)} {left or ''}")
        totals.update(lost=len(left))
    finally:
        run_cli("stop", env=env, timeout=120)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    base = 3 if a.sessions >= 4 else 1
    last = max(rss_at) if rss_at else 0

    def growth(names: tuple[str, ...]) -> dict[str, float]:
        return {
            d: 100.0 * (rss_at[last][d] - rss_at[base][d]) / rss_at[base][d]
            for d in names
            if d in rss_at.get(base, {}) and d in rss_at.get(last, {}) and rss_at[base][d] > 0
        }

    each = growth(DAEMONS)  # the stack's daemons; the simulator (the broker) apart
    sim = growth(("simserver",))
    if each:
        print(
            f"\nRSS from the end of session {base} to the end: "
            + "  ".join(f"{d} {g:+.1f}%" for d, g in sorted(each.items()))
            + "".join(f"  (simulator {g:+.1f}%)" for g in sim.values())
        )
    growth_pct = max(each.values(), default=0.0)
    print(
        f"\nsoak: sessions {len(rss_at)} errors {totals['errors']} mismatches "
        f"{totals['mismatches']} duplicates {totals['duplicates']} lost {totals['lost']} "
        f"rss_growth_pct {growth_pct:.1f}"
    )


if __name__ == "__main__":
    main()
