"""The day's shadow run: each strategy that traded, backtested over the day's recordings
(ticks, so fills follow the quotes), its trades paired with the live ones and its P&L
bridged from the shadow's to the live.

What is read: the router's journal of the day (every order it handed to the broker and
every fill, ``router/journal.py``; the day's copy once a later day rolled it aside), the
feed's recording of the day (``MT_RECORD_DB``), risk's events (refusals, both sides), and
the strategies' files and parameters as they stand now. DuckDB lets one process hold a
recording at a time: the feed lets it go when idle (after a real market's close), and while
it holds it the day is read from the copy the feed made of it when the next day's ticks
began (``recording_for``); a day neither can give is a clear error, not a wait.

The operator's commands of the day (a pause, a resume, a stop, the kill switch, read from
risk's events: ``given.py``) are given to the shadow's risk at the moments they took effect
live, so the shadow trades as the strategy was let to; the shadow is run once more without
them, and what they changed is the bridge's first cause, ``operator`` (the shadow untouched
to the shadow as given).

The strategies' changes of the day (enabled, disabled, new parameters: ``switches.py``)
are made in the shadow at their moments, each strategy starting with the parameters in
force at the open.

Positions carried into the day (the journal's ``carried``) are given to the shadow at its
start, as the engine and risk restore them from the router.

Not modelled yet (said in ``ShadowDay.notes`` where it applies, and in docs/backtesting.md):
follower accounts (the shadow trades the lead account; followers' orders are counted).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from mytrading import venue
from mytrading.backtest.data import ist_days
from mytrading.backtest.loop import StrategyChange
from mytrading.backtest.metrics import DAY_NS, EPOCH_ORDINAL, IST_NS
from mytrading.domain.bars import TIMEFRAMES
from mytrading.domain.ids import Book, OrderId
from mytrading.domain.refdata import IST, RefData, RefDataError
from mytrading.engine import warmlog
from mytrading.messaging import wire
from mytrading.orders.state import UNSENT
from mytrading.router import journal
from mytrading.settings import Settings
from mytrading.shadow.bars import bar_cause, differing_bars
from mytrading.shadow.followers import Following, follow, refusals_by_intent
from mytrading.shadow.given import Given, event_ns, given_commands, hms
from mytrading.shadow.held import held_cause, parting
from mytrading.shadow.lost import RULE as LOST_RULE
from mytrading.shadow.lost import Lost, lost_cause, lost_replies, lost_while
from mytrading.shadow.outages import Outage, outage_cause, outages
from mytrading.shadow.pairing import UNEXPLAINED, Bridge, Pair, bridge, pair
from mytrading.shadow.switches import Switch, plan, strategy_switches
from mytrading.shadow.trades import LEAD, SideOfDay, Trade, live_side, paise, shadow_side
from mytrading.shadow.warmup import fetch_history, wanted_days, with_history
from mytrading.stores.recording import COPY_BARS_DAYS, day_copies

# one exit job's events, each naming the orders it sent so far (``risk/exits.py``): a
# retry's orders (the broker refused the first, its session expired) are named by
# ``exit_retry`` only
EXIT_KINDS = ("exit", "exit_retry", "exit_confirmed")
WINDOW_NS = 60 * 10**9  # a refusal this near a decision (either way) is taken as its cause


class ShadowError(ValueError):
    """The shadow cannot be run: no recording, no journal of the day, a held file."""


class RecordingHeldError(ShadowError):
    """The recording is held by another process (the running feed writing into it)."""


@dataclass
class StrategyShadow:
    name: str
    pairs: list[Pair]
    bridge: Bridge
    left_out: int = 0  # follower orders, not paired with the shadow's
    followers: list[Following] = field(default_factory=list)  # each against its lead

    def counts(self) -> dict[str, int]:
        out = {"matched": 0, "live_only": 0, "shadow_only": 0}
        for p in self.pairs:
            out[p.kind] += 1
        return out

    def line(self) -> str:
        """The end-of-day message's line: live vs shadow and the causes that moved it,
        the unmatched trades by their reason ("2 shadow only, risk, live, refused it
        (max_orders_per_min) -1,130.00")."""
        r = self.bridge.rupees()
        parts = []
        for k, v in r.items():
            if k in ("shadow_net", "live_net") or not round(v, 2):
                continue
            if k in ("live_only", "shadow_only"):
                parts += self._unmatched(k)
            else:
                parts.append(f"{k} {_rs(v)}")
        return (f"{self.name}: live {_rs(r['live_net'])} vs shadow {_rs(r['shadow_net'])}"
                + (f": {', '.join(parts)}" if parts else ": no difference")
                + "".join(f"; {f.line()}" for f in self.followers))  # fmt: skip

    def _unmatched(self, kind: str) -> list[str]:
        """``kind``'s trades grouped by reason, the largest move first."""
        by_why: dict[str, list[int]] = {}
        for p in self.pairs:
            if p.kind == kind:
                by_why.setdefault(p.why or UNEXPLAINED, []).append(p.moved)
        rows = sorted(by_why.items(), key=lambda kv: -abs(sum(kv[1])))
        label = kind.replace("_", " ")
        return [f"{len(ms)} {label}, {why}, {_rs(sum(ms) / 100)}" for why, ms in rows]


def _rs(v: float) -> str:
    return f"{v:+,.2f}"


@dataclass
class ShadowDay:
    day: date
    strategies: dict[str, StrategyShadow]
    marks: dict[tuple[str, str], float]
    ticks: dict[tuple[str, str], float]  # each instrument's tick size
    notes: list[str] = field(default_factory=list)
    given: list[Given] = field(default_factory=list)  # the operator's commands, replayed
    switches: list[Switch] = field(default_factory=list)  # strategy changes, replayed

    def stack(self) -> Bridge:
        b = Bridge()
        for s in self.strategies.values():
            b.add(s.bridge)
        return b

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "day": self.day.isoformat(),
            "strategies": {},
            "notes": self.notes,
            "operator": [g.row() for g in self.given],
            "switches": [w.row() for w in self.switches],
        }
        for name, s in sorted(self.strategies.items()):
            out["strategies"][name] = {
                **s.counts(),
                "line": s.line(),
                "bridge": s.bridge.rupees(),
                "follower_orders_not_paired": s.left_out,
                "followers": {f.account: f.row() for f in s.followers},
                "pairs": [p.row(self._tick(p)) for p in s.pairs],
            }
        out["stack"] = {"bridge": self.stack().rupees()}
        out["marks"] = {f"{ex}:{sym}": px for (ex, sym), px in sorted(self.marks.items())}
        return out

    def _tick(self, p: Pair) -> float:
        t = p.live or p.shadow
        assert t is not None
        return self.ticks.get((t.exchange, t.symbol), 0.0)


# ---------------------------------------------------------------------- the inputs


def recording_for(record_db: Path, day: date | None) -> tuple[Path, date]:
    """Where to read ``day`` (the latest recorded by default) from, and the day: the
    recording when free; while the running feed holds it, the day's copy the feed made
    when the next day's ticks began (``stores.recording.day_copy``; the newest copy by
    default). Neither: the hold is said, and that no copy of the day was made yet."""
    try:
        with _recording(record_db) as con:  # free (or absent, or held: said)
            return record_db, day or _latest(con, record_db)
    except RecordingHeldError as held:
        copies = day_copies(record_db)
        want = day or (max(copies) if copies else None)
        if want is not None and want in copies:
            return copies[want], want
        raise RecordingHeldError(
            f"{held}; and no copy of {want or 'any day'} yet (the feed copies a day to a file of "
            "its own when the next day's ticks begin)"
        ) from None


def _latest(con: duckdb.DuckDBPyConnection, record_db: Path) -> date:
    got = con.execute("SELECT max(ts)::DATE FROM ticks").fetchone()
    if not got or got[0] is None:
        raise ShadowError(f"{record_db} holds no ticks: nothing to replay")
    day: date = got[0]
    return day


def recorded_days(record_db: Path, start: date, end: date) -> list[date]:
    """The days of ``start``..``end`` the recording holds ticks of."""
    with _recording(record_db) as con:
        rows = con.execute(
            "SELECT DISTINCT (epoch_ns(ts) + ?) // ? AS d FROM ticks "
            "WHERE ts >= ? AND ts < ? ORDER BY d",
            [IST_NS, DAY_NS, *ist_days(start, end)],
        ).fetchall()
    return [date.fromordinal(EPOCH_ORDINAL + r[0]) for r in rows]


def closing_marks(con: duckdb.DuckDBPyConnection, day: date) -> dict[tuple[str, str], float]:
    """Each recorded instrument's last traded price of the day."""
    rows = con.execute(
        "SELECT exchange, symbol, arg_max(ltp, ts) FROM ticks "
        "WHERE ts >= ? AND ts < ? GROUP BY ALL",
        list(ist_days(day, day)),
    ).fetchall()
    return {(ex, sym): float(px) for ex, sym, px in rows}


@contextlib.contextmanager
def _recording(path: Path) -> Any:
    if not path.is_file():
        raise ShadowError(f"no recording at {path} (MT_RECORD_DB): the feed records the day")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        raise RecordingHeldError(
            f"{path} is held by another process (the feed records into it while it runs): "
            f"run the shadow after the close or on a stopped stack ({exc})"
        ) from None
    try:
        con.execute("SET TimeZone = 'Asia/Kolkata'")
        yield con
    finally:
        con.close()


def journal_of(s: Settings, day: date) -> journal.Replay:
    """The router's journal of ``day``: the current file if it is that day's, else the
    copy rolled aside when a later day began."""
    base = venue.current(s).dir / "router" / "journal.bin"
    for path in (base, *sorted(base.parent.glob(f"{base.name}.day-{day.isoformat()}*"))):
        if not path.is_file():
            continue
        rep = journal.read(path)
        if rep.day == day.isoformat():
            return rep
    raise ShadowError(f"no router journal of {day} under {base.parent}")


Event = tuple[int, str, str]  # (market ns, strategy, rule) of a risk event
State = tuple[int, str, str, str]  # (market ns, strategy, rule, the state risk set)
HELD = ("reducing", "halted")  # states in which a strategy's entries are refused


@dataclass
class LiveEvents:
    """What risk kept of the day, live (``live_events``)."""

    # risk's refusals ("rejected"), its exits ("exit") and the orders rejected after it
    # ("order_rejected": the reason in place of the rule)
    refused: dict[str, list[Event]]
    states: list[State]  # the states it set
    given: list[Given]  # the operator's commands as they took effect
    switches: list[Switch]  # the strategies' changes
    lost: dict[str, Lost]  # orders whose reply was lost, by our order id
    started: dict[str, int]  # each daemon's first start of the day (market ns)
    outages: list[Outage]  # a daemon restarted, the router refusing orders
    refused_ids: dict[str, str] = field(default_factory=dict)  # intent -> rule refused
    exits: dict[str, str] = field(default_factory=dict)  # risk's exit intent -> its rule


def live_events(s: Settings, day: date) -> LiveEvents:
    """What risk kept of the day, live (``LiveEvents``), from its event rows."""
    from mytrading.risk.events import read_events

    out: dict[str, list[Event]] = {"rejected": [], "exit": [], "order_rejected": [],
                                   "rejected_bar": []}  # fmt: skip
    states: list[State] = []
    rows = read_events(s.stores.risk_db, limit=1_000_000, day=day)
    for row in rows:
        market, strategy, kind, rule, action = row[0], row[1], row[2], row[3], row[6]
        ns = event_ns(market)
        if kind == "order_rejected":  # an order refused after risk: its reason
            out[kind].append((ns, strategy, str(row[7] or "no reason given")))
        elif kind == "rejected":  # at its intent's decision (risk may have held it first)
            said = refusal_said(row[9])  # its detail read once: the decision, its bar
            out[kind].append((said.get("decided_ns") or ns, strategy, rule))
            if bar := said.get("bar_ns", 0):  # and on the bar that decided it
                out["rejected_bar"].append((bar, strategy, rule))
        elif kind in out:
            out[kind].append((ns, strategy, rule))
        elif kind == "state":
            states.append((ns, strategy, rule, str(action)))
    return LiveEvents(out, states, given_commands(rows), strategy_switches(rows),
                      lost_replies(rows), starts(rows),
                      outages(rows), refusals_by_intent(rows),
                      exits_by_intent((r[2], r[3], r[8]) for r in rows))  # fmt: skip


JOINED_AFTER_NS = 60 * 10**9  # a first tick this long after the open: a mid-session start


def first_tick(recording: Path, day: date) -> int:
    """Market ns of the day's first recorded tick (0: none)."""
    with _recording(recording) as con:
        got = con.execute("SELECT epoch_ns(min(ts)) FROM ticks WHERE ts >= ? AND ts < ?",
                          list(ist_days(day, day))).fetchone()  # fmt: skip
    return int(got[0]) if got and got[0] is not None else 0


def joined_at(
    first_ns: int, day: date, refdata: RefData, engine_ns: int | None = None
) -> int | None:
    """When live's strategies started trading, if after the session's first minute (the
    stack started mid-session, so its strategies did: ``Backtest(start_ns=...)``, their
    first bar swapped for the source's whole copy as the engine swaps its own); None for
    a stack that was up at the open. The later of the day's first recorded tick
    (``first_ns``) and the engine's start as risk kept it (``engine_ns``: an engine
    started after the feed had its first ticks). The first tick alone also takes a
    stack up at the open whose market's first tick came late for a mid-session start;
    on the simulated days that matches live better than the open: live's warm-up, slow
    on a fast clock, ended after the first bar and swapped it for the broker's copy (46
    decisions unexplained on fifteen days starting at the open, 31 at the first tick).
    When live's warm-up ended is not recorded: that is the rule's missing fact."""
    hours = refdata.calendar.hours("NFO", day)
    at = max(first_ns, engine_ns or 0) if first_ns else 0
    if hours is None or not at:
        return None
    open_ns = int(datetime.combine(day, hours[0], tzinfo=IST).timestamp() * 1e9)
    return at if at - open_ns > JOINED_AFTER_NS else None


def exits_by_intent(events: Iterable[tuple[str, str, Sequence[str] | None]]) -> dict[str, str]:
    """Risk's exits of the day by the intent of their orders and rule, from (kind, rule,
    order ids) of its events (``EXIT_KINDS``: order ids ``<book>.risk-...``): an exit's
    trade finds its own trigger, however long after the trigger its order was handed to
    the broker. Live's from its stored events, the shadow's from its backtest's."""
    out: dict[str, str] = {}
    for kind, rule, orders in events:
        if kind not in EXIT_KINDS:
            continue
        for oid in orders or ():
            with contextlib.suppress(ValueError):
                out[OrderId.parse(str(oid)).intent] = str(rule)
    return out


def refusal_said(detail: str | None) -> dict[str, int]:
    """What a refusal's detail says (``risk.orders.rejected_event``): its intent's decision
    (``decided_ns``) and the bar that decided it (``bar_ns``), market ns; {} if neither."""
    if not detail or not detail.startswith("{"):
        return {}
    try:
        got = json.loads(detail)
    except ValueError:
        return {}
    if not isinstance(got, dict):
        return {}
    return {k: int(v) for k, v in got.items() if isinstance(v, int) and v}


def starts(rows: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    """Each daemon's first start of the day as risk saw it (kind ``start``, the daemon
    as its rule): market ns."""
    out: dict[str, int] = {}
    for row in rows:
        if row[2] == "start":
            ns = event_ns(row[0])
            out[row[3]] = min(ns, out.get(row[3], ns))
    return out


# ------------------------------------------------------------------------- the run


def shadow_day(
    s: Settings,
    day: date | None = None,
    strategies: list[str] | None = None,
    capital: float | None = None,
    transport: Any = None,
) -> ShadowDay:
    """The shadow of ``day`` (the latest recorded by default) for ``strategies`` (those
    that traded live by default); ``transport``: how OpenAlgo's history is reached for
    the warm-ups (an ``httpx`` transport; the network by default, the simulator's own in
    a simulated day)."""
    from mytrading.backtest.loop import Backtest
    from mytrading.backtest.session import Request, prepare

    # the recording first: a feed holding it, or a day it lacks, is said before any work
    recording, day = recording_for(s.stores.record_db, day)
    if not recorded_days(recording, day, day):
        raise ShadowError(f"{recording} holds no ticks of {day}: nothing to replay")
    rep = journal_of(s, day)
    notes: list[str] = []
    copied = recording != s.stores.record_db
    if copied:
        notes.append(f"read from the day's copy {recording.name} (the running feed holds the "
                     f"recording; the copy's bars reach back {COPY_BARS_DAYS} days for "
                     "warm-ups)")  # fmt: skip
    names = strategies or traded_strategies(s, rep, notes)
    if not names:
        raise ShadowError(f"no strategy of strategies/ traded live on {day}: nothing to shadow")
    p0 = prepare(
        s,
        Request(names, day, day, data=str(recording) if copied else "recorded", fills="ticks",
                capital=capital or s.sim.capital),
    )  # fmt: skip
    recorded = p0.source  # the days before the recording from the history cache, if any
    p0 = dataclasses.replace(p0, source=with_history(s, recorded))
    ev = live_events(s, day)
    in_live, live_states, given, switches = ev.refused, ev.states, ev.given, ev.switches
    given = [g for g in given if any(g.applies_to(n) for n in names)]
    # each strategy with the parameters in force at the open, and its changes of the day
    switches = [w for w in switches if w.strategy in names]
    day_plan = plan(p0.spec.strategies, switches)
    notes += day_plan.notes
    spec = dataclasses.replace(p0.spec, strategies=day_plan.at_open)
    if day_plan.changes:
        notes.append(f"{len(day_plan.changes)} strategy change(s) of the day (enabled, disabled, "
                     "new parameters) made in the shadow at their moments; the shadow started "
                     "with the parameters in force at the open")  # fmt: skip

    # the positions the strategies carried into the day, on the account the shadow trades
    carried = [p for p in rep.carried
               if p.strategy in names and p.quantity and p.account == LEAD]  # fmt: skip

    first_ns = first_tick(recording, day)
    # live's bars held for warm-ups, as the engine kept them (none: an engine before it)
    holds = parting(warmlog.read(s.state_dir / "engine", day))
    day_end = int(datetime.combine(day, dtime.max, IST).timestamp() * 1e9)
    joined = joined_at(first_ns, day, p0.refdata, ev.started.get("engine"))
    if joined is not None:
        how = "its engine's start" if joined != first_ns else "the recording's first tick"
        notes.append(f"the stack joined the market at {hms(joined)} ({how}): the shadow's "
                     "strategies start there, warmed up on what came before, as live's "
                     "did")  # fmt: skip
    cold: list[tuple[str, str, int, int, int]] = []  # warm-ups short of history (``cold_until``)
    watched: dict[str, set[tuple[str, str]]] = {}  # the instruments each strategy's bars are of
    memory: dict[str, int] = {}  # how far back a bar steers each strategy (its warm-ups' span)

    def run(commands: list[Given]) -> Any:
        moments: list[tuple[int, wire.Command | StrategyChange]] = [
            (g.at_ns, g.command) for g in commands
        ]
        bt = Backtest(spec, p0.refdata, p0.risk, p0.source, ticks=p0.ticks.ticks(day, day),
                      commands=[*moments, *day_plan.changes], carried=carried,
                      bar_grace_ns=int(s.bar_grace_s * 1e9), start_ns=joined)  # fmt: skip
        got = bt.run()
        cold.extend(bt.runner.warm.short)
        for n, span in bt.runner.warm.memory_ns.items():
            memory[n] = max(memory.get(n, 0), span)
        for key, tfs in bt.runner.bar_subs.items():
            for subs in tfs.values():
                for n in subs:
                    watched.setdefault(n, set()).add(key)
        return got

    res = run(given)
    if cold and s.broker == "openalgo":  # live warmed up from OpenAlgo's history: so does it
        got = fetch_history(s, p0.refdata, day, wanted_days(cold, watched),
                            transport=transport)  # fmt: skip
        notes += [f"the shadow's warm-up from OpenAlgo's history failed: {e}" for e in got.errors]
        if got.bars:
            notes.append(f"the shadow's warm-ups ran short of the recording: {got.bars} 1-minute "
                         f"bars of {got.days} day(s) before it fetched from OpenAlgo's history "
                         "(as live warmed up) and the day run again")  # fmt: skip
            p0 = dataclasses.replace(p0, source=with_history(s, recorded))
            cold.clear()
            res = run(given)
    plain = run([]) if given else None
    untouched = shadow_side(plain.orders, plain.fills) if plain is not None else None
    if given:
        notes.append(
            f"{len(given)} operator command(s) of the day given to the shadow at their moments; "
            "what they changed is the bridge's operator line (the shadow without them)"
        )
    journaled = [(t.order, t.sent_ns, str(t.state), t.reason) for t in rep.orders.values()]
    live = live_side(journaled, rep.fills, p0.refdata, p0.risk.charges, day)
    # each follower account's day, set against its lead's (``shadow/followers.py``)
    following = {
        acct: live_side(journaled, rep.fills, p0.refdata, p0.risk.charges, day, account=acct)
        for acct in sorted({o.account for o, *_ in journaled if o.account != LEAD})
    }
    configured = followers_configured(s, names, notes)
    if live.other_days:
        notes.append(f"{live.other_days} order(s) of the day's journal left out: handed to the "
                     "broker on another day, or decided on one and never handed")  # fmt: skip
    if live.exits_unsent:
        notes.append(f"{live.exits_unsent} of risk's exit orders the router refused before "
                     "sending them left out (each exit's retry is paired)")  # fmt: skip
    shadow = shadow_side(res.orders, res.fills)
    if carried:
        notes.append(
            f"{len(carried)} position(s) carried into the day given to the shadow at its "
            "start, as the engine and risk restore them; their move from the day before is "
            "in neither side's P&L (the same on both), their trades of the day are"
        )
    with _recording(recording) as con:  # the marks and the quotes: one opening
        marks = closing_marks(con, day)
        _fill_marks(marks, notes, live, shadow, *([untouched] if untouched else []),
                    *following.values())  # fmt: skip
        mark = {k: paise(v) for k, v in marks.items()}

        def at(ex: str, sym: str) -> int:
            return mark[(ex, sym)]

        in_shadow: dict[str, list[Event]] = {"rejected": [], "exit": [], "rejected_bar": []}
        shadow_states: list[State] = []
        shadow_exits = exits_by_intent((e["kind"], e["rule"], e.get("orders")) for e in res.events)
        for e in res.events:
            kind = e["kind"]
            if kind in ("rejected", "exit"):
                in_shadow[kind].append((e["time"], e["strategy"], e["rule"]))
                if kind == "rejected" and (bar := refusal_said(e.get("detail")).get("bar_ns", 0)):
                    in_shadow["rejected_bar"].append((bar, e["strategy"], e["rule"]))
            elif kind == "state":
                shadow_states.append((e["time"], e["strategy"], e["rule"], e["action"]))
        warm = cold_until(cold, first_ns)
        history = s.broker == "openalgo"  # live warmed up from OpenAlgo's history
        had_bars = dict(warm)  # when the shadow had its bars, before the sides agreed
        diffs = differing_bars(con, day)
        out: dict[str, StrategyShadow] = {}
        for name in names:
            pairs = pair(live.trades.get(name, []), shadow.trades.get(name, []))
            # a cold start lasts until the shadow is warm and, after that, until the two
            # sides first agree (the shadow's first decisions catch up with live's)
            agreed = min((p.decided_ns for p in pairs if p.kind == "matched"), default=None)
            if name in warm and agreed is not None:
                warm[name] = (max(warm[name][0], agreed), warm[name][1])
            parted_book, parted_here, held_alike = partings(pairs)
            sent = {t.intent_id: t.sent_ns or t.decided_ns for t in live.trades.get(name, [])}
            for i, pr in enumerate(pairs):
                t = pr.live or pr.shadow
                assert t is not None
                if pr.kind == "matched":
                    pr.why = fills_differ(pr) or (
                        lost_cause(ev.lost, name, pr.live.intent_id) if pr.live else ""
                    )
                elif t.by_risk:  # risk's exit on one side only: what set it off there
                    side, events = ("live", in_live) if pr.live else ("in the shadow", in_shadow)
                    own = (ev.exits if pr.live else shadow_exits).get(t.intent_id, "")
                    rule = own or nearest(events["exit"], name, t.decided_ns)
                    pr.why = f"risk's exit {side} only ({rule or 'its trigger not found'})"
                else:
                    if pr.kind == "live_only":
                        pr.why = refused_on_bar(in_shadow["rejected_bar"], name, t.bar_ns,
                                                "the shadow's risk") or refused_near(
                            in_shadow["rejected"], name, t.decided_ns, "the shadow's risk",
                            shadow_states)  # fmt: skip
                        gone = answered(in_live["order_rejected"], name, t.decided_ns)
                        if pr.why == UNEXPLAINED and gone:
                            pr.why = f"placed live after its order was rejected ({gone})"
                    else:
                        pr.why = refused_on_bar(in_live["rejected_bar"], name, t.bar_ns,
                                                "risk, live,") or refused_near(
                            in_live["rejected"], name, t.decided_ns, "risk, live,",
                            live_states)  # fmt: skip
                        if pr.why == UNEXPLAINED:
                            gone = nearest(in_live["order_rejected"], name, t.decided_ns)
                            if gone:
                                pr.why = f"live's order for it was rejected ({gone})"
                    if pr.why == UNEXPLAINED:
                        # the shadow without its bars yet, a part of live's stack away
                        # (a daemon restarted, the router refusing orders), a lost reply,
                        # a bar that differed, the cause of the one-sided decision that
                        # set the positions apart, the shadow catching up after its cold
                        # start: the first that holds
                        pr.why = (answers(pairs[:i], t)
                                  or cold_start(had_bars, name, t.decided_ns, history)
                                  or outage_cause(ev.outages, held_alike[i], t.decided_ns)
                                  or lost_while(ev.lost, sent, name, t.decided_ns, day_end)
                                  or bar_cause(diffs, watched.get(name, ()),
                                               min(held_alike[i],
                                                   t.decided_ns - memory.get(name, 0)),
                                               t.decided_ns)
                                  or held_cause(holds.get(name, ()), (t.exchange, t.symbol),
                                                t.bar_ns, held_alike[i], t.decided_ns)
                                  or follows(parted_book[i], parted_here[i])
                                  or cold_start(warm, name, t.decided_ns, history)
                                  or UNEXPLAINED)  # fmt: skip
            _name_quotes(con, pairs)
            b = bridge(pairs, live.settled.get(name, []), shadow.settled.get(name, []), at,
                       live.net(name, at))  # fmt: skip
            if untouched is not None:
                b.start_untouched(untouched.net(name, at))
            fol = follow(name, live, following, ev.refused_ids, at,
                         configured.get(name, ()), b.shadow_net)  # fmt: skip
            out[name] = StrategyShadow(name, pairs, b, live.left_out.get(name, 0), fol)
        return ShadowDay(day, out, marks, _ticks(p0.refdata, marks), notes, given, switches)


def followers_configured(s: Settings, names: list[str], notes: list[str]) -> dict[str, set[str]]:
    """The accounts ``config/accounts.toml`` has follow each of ``names`` now (the day's
    own may have differed: the journal's and risk's records name those that traded);
    unreadable, said in ``notes`` and none."""
    from mytrading.domain.accounts import load_accounts
    from mytrading.settings import ConfigError

    try:
        acc = load_accounts(s, keys=False)
    except ConfigError as exc:
        notes.append(f"followers from the day's records only: {exc}")
        return {}
    return {n: {f.account for f in acc.followers(n)} for n in names if acc.followers(n)}


def traded_strategies(s: Settings, rep: journal.Replay, notes: list[str]) -> list[str]:
    """The strategies of ``strategies/`` that traded live on the day; the others (webhook
    strategies, a strategy removed since) are said in ``notes``, not shadowed."""
    from mytrading.engine.loader import declared

    traded = {t.order.strategy for t in rep.orders.values()} | {f.strategy for f in rep.fills}
    known = set(declared(s.strategies_dir)[0])
    # a follower account's copies are booked as "<strategy>@<account>" (domain/ids.py)
    books = {b: Book.parse(b) for b in traded - known}
    copies = {b for b, bk in books.items() if bk.account and bk.strategy in known}
    if copies:
        placed = [t.order.strategy for t in rep.orders.values() if t.order.op == "place"]
        counts = collections.Counter(b for b in placed if b in copies)
        said = ", ".join(f"{b} ({counts[b]} orders)" for b in sorted(copies))
        notes.append("a follower account's copies set against its lead's, not the shadow's "
                     f"(the shadow trades the lead account): {said}")  # fmt: skip
    others = sorted(traded - known - copies)
    if others:
        notes.append("not shadowed (no strategy file of that name: a webhook strategy or one "
                     f"removed since): {', '.join(others)}")  # fmt: skip
    return sorted(traded & known)


def _name_quotes(con: duckdb.DuckDBPyConnection, pairs: list[Pair]) -> None:
    """For each matched pair filled at different prices, the recorded quote in force at
    each side's first fill: a live order that met a newer quote than the replay's is seen
    as such (bid, ask and the time of each)."""
    differ = [p for p in pairs if p.live and p.shadow and p.live.filled and p.shadow.filled
              and p.live.value * p.shadow.filled != p.shadow.value * p.live.filled]  # fmt: skip
    for p in differ:
        for side, t in (("live", p.live), ("shadow", p.shadow)):
            assert t is not None
            got = con.execute(
                "SELECT epoch_ns(ts), bid, ask, ltp FROM ticks WHERE exchange = ? AND "
                "symbol = ? AND ts <= make_timestamptz(?::BIGINT // 1000) "
                "ORDER BY ts DESC LIMIT 1",
                [t.exchange, t.symbol, t.first_fill_ns],
            ).fetchone()
            if got:
                p.quotes[side] = {"at_ns": got[0], "bid": got[1], "ask": got[2],
                                      "ltp": got[3], "filled_at": round(t.avg, 4)}  # fmt: skip


def fills_differ(p: Pair) -> str:
    """Why a matched pair's sides filled different quantities, from their orders' last
    states ("" when they filled the same)."""
    live, shadow = p.live, p.shadow
    if live is None or shadow is None or live.filled == shadow.filled:
        return ""
    short, other = (live, "live") if live.filled < shadow.filled else (shadow, "in the shadow")
    if short.state == "rejected":
        return f"rejected {other} ({short.reason or 'no reason given'})"
    if short.state in ("open", "trigger pending", "partial"):
        what = "partly filled" if short.filled else "a limit or stop not reached"
        return f"{what} {other} by the close"
    if short.state == "cancelled":
        before = short.reason.startswith(UNSENT)  # the router's words for a queued order
        by = (" (by risk)" if ".risk-" in short.reason else " (by its strategy)") if before else ""
        where = " before it reached the broker" if before else ""
        return f"cancelled {other}{where}{by} with {short.filled} of {short.quantity} filled"
    if short.state == "unknown":
        return f"unknown at the broker {other} (a lost reply never found)"
    return f"filled {short.filled} of {short.quantity} {other} ({short.state or 'no state'})"


def nearest(events: list[Event], strategy: str, at_ns: int) -> str:
    """The rule of the strategy's event nearest ``at_ns`` within ``WINDOW_NS`` ("": none)."""
    near = [e for e in events if e[1] == strategy and abs(e[0] - at_ns) <= WINDOW_NS]
    return min(near, key=lambda e: abs(e[0] - at_ns))[2] if near else ""


def answered(events: list[Event], strategy: str, at_ns: int) -> str:
    """The reason of the strategy's latest event at most ``WINDOW_NS`` before ``at_ns``
    ("": none): a decision only live made just after live's broker rejected one of its
    orders answers that rejection (a protective stop placed again nearer the price), which
    the shadow, never rejected, had no cause to make."""
    before = [e for e in events if e[1] == strategy and 0 <= at_ns - e[0] <= WINDOW_NS]
    return max(before, key=lambda e: e[0])[2] if before else ""


def refused_on_bar(refusals: list[Event], strategy: str, bar_ns: int, who: str) -> str:
    """``who``'s risk refused the strategy's decision on the same bar ("" if not, or not a
    bar's decision): found however late that side decided on it (live's bars held for a
    warm-up that ended late, then handed at once, are decided minutes after the shadow's)."""
    if not bar_ns:
        return ""
    rule = next((e[2] for e in refusals if e[1] == strategy and e[0] == bar_ns), "")
    return f"{who} refused it ({rule})" if rule else ""


def refused_near(
    refusals: list[Event], strategy: str, at_ns: int, who: str, states: Sequence[State] = ()
) -> str:
    """Why a decision one side made has no partner on the other (``who``'s): its risk
    refused one like it near that moment, or had the strategy reducing or halted then
    (a loss limit reached there first: every entry after it is refused, or never made)."""
    rule = nearest(refusals, strategy, at_ns)
    if rule:
        return f"{who} refused it ({rule})"
    return held_by(states, strategy, at_ns, who) or UNEXPLAINED


def cold_until(
    short: list[tuple[str, str, int, int, int]], first_tick_ns: int = 0
) -> dict[str, tuple[int, str]]:
    """Per strategy, when the shadow's warm-up ran short of history (the recording begins
    on the day: live warmed up from the broker's), the moment it had its bars at the
    latest, and what it was short of: its missing bars' worth of market time after the
    warm-up or the day's first recorded tick, whichever is later (the session's gaps
    aside)."""
    out: dict[str, tuple[int, str]] = {}
    for strategy, tf, got, asked, at_ns in short:
        until = max(at_ns, first_tick_ns) + (asked - got) * TIMEFRAMES.get(tf, 0) * 10**9
        if until > out.get(strategy, (0, ""))[0]:
            out[strategy] = (until, f"{got} of {asked} {tf} bars")
    return out


def cold_start(
    warm: dict[str, tuple[int, str]], strategy: str, at_ns: int, live_history: bool = True
) -> str:
    """A decision of one side only while the shadow's start was cold: its warm-up short,
    and, once warm, until the two sides first agreed ("" if not). ``live_history``: live's
    engine warmed up from the broker's history (an OpenAlgo broker; the in-router venue,
    ``MT_BROKER=sim``, has none: live started as cold)."""
    until, what = warm.get(strategy, (0, ""))
    if at_ns >= until:
        return ""
    when = hms(until)
    live = (
        "live warmed up from the broker's history"
        if live_history
        else "live had no broker history either and started cold too"
    )
    return (
        f"the shadow's cold start (it started with {what}: the recording begins this day, "
        f"{live}; the sides agree from {when})"
    )


def answers(before: Sequence[Pair], t: Trade) -> str:
    """A decision that answers a fill (a stop or a target placed on its entry's fill:
    ``fill_of``) of a decision its side made alone takes that decision's cause: the other
    side had no fill to answer ("" when the entry was matched, or is unexplained)."""
    if not t.fill_of:
        return ""
    for p in before:
        mine = p.live if t.side == "live" else p.shadow
        if mine is not None and mine.intent_id == t.fill_of:
            return p.why if p.kind != "matched" and p.why != UNEXPLAINED else ""
    return ""


def follows(parting: Pair | None, here: Pair | None = None) -> str:
    """The cause of the decision that set the two sides' positions apart (``partings``):
    a decision one side makes while it holds what the other does not follows from it (""
    when there is none, or it is itself unexplained). ``here``, the decision that parted
    the pair's own instrument, comes first, whatever another instrument did before (a
    refused re-entry's later exit is the refusal's, not that of an earlier difference in
    another leg)."""
    p = here or parting
    return p.why if p is not None and p.why and p.why != UNEXPLAINED else ""


class Partings(NamedTuple):
    """Per pair (by index), from one walk of both sides' positions in decided order."""

    book: list[Pair | None]  # the decision that parted the book, None while alike
    here: list[Pair | None]  # ... that parted the pair's own instrument
    alike: list[int]  # the last moment the book held alike before it (0: the day's start)


def partings(pairs: Sequence[Pair]) -> Partings:
    """For each pair, the decision after which the sides' positions parted and have not
    held alike since (None: alike before it), of the whole book and of the pair's own
    instrument, and the last moment the sides held alike: until they do again, a
    difference in what one side saw (a bar) still steers both sides' decisions. Either
    side's decision parts them, one side's alone or both sides' filled differently (live's
    order cancelled before it reached the broker); taken in decided order, a batch's
    orders (one moment) in their own."""
    held: dict[str, dict[tuple[str, str], int]] = {"live": {}, "shadow": {}}
    book: Pair | None = None
    since = 0
    apart_in: dict[tuple[str, str], Pair] = {}
    out = Partings([None] * len(pairs), [None] * len(pairs), [0] * len(pairs))
    for i in sorted(range(len(pairs)), key=lambda k: pairs[k].decided_ns):
        p = pairs[i]
        first = p.live or p.shadow
        assert first is not None
        key = (first.exchange, first.symbol)
        out.book[i], out.here[i], out.alike[i] = book, apart_in.get(key), since
        for t in (p.live, p.shadow):  # each side's filled quantity into its positions
            if t is not None and t.filled:
                side = held[t.side]
                k = (t.exchange, t.symbol)
                side[k] = side.get(k, 0) + t.sign * t.filled
                if not side[k]:
                    del side[k]
        if held["live"] == held["shadow"]:
            book, since = None, p.decided_ns
        elif book is None:
            book = p
        if held["live"].get(key, 0) == held["shadow"].get(key, 0):
            apart_in.pop(key, None)
        else:
            apart_in.setdefault(key, p)
    return out


def last_held_alike(pairs: Sequence[Pair]) -> list[int]:
    """For each pair, the last moment before it (market ns; 0: the start of the day) at
    which the two sides held the same positions (``partings``)."""
    return partings(pairs).alike


def held_by(states: Sequence[State], strategy: str, at_ns: int, who: str) -> str:
    """``who``'s risk had ``strategy`` (or the whole stack) reducing or halted at ``at_ns``
    (the latest state it set before): said with when and by which rule; "" otherwise."""
    before = [st for st in states if st[1] in (strategy, "*", "") and st[0] <= at_ns]
    if not before:
        return ""
    ns, _, rule, state = max(before, key=lambda st: st[0])
    if state not in HELD:
        return ""
    when = hms(ns)
    if rule == LOST_RULE:
        return f"{who} had it {state} since {when}: an order's reply was lost ({rule})"
    return f"{who} had it {state} since {when} ({rule})"


def _fill_marks(marks: dict[tuple[str, str], float], notes: list[str], *sides: SideOfDay) -> None:
    """An instrument traded with no recorded tick (not subscribed by the feed): valued at
    its last fill on any side, and said."""
    last: dict[tuple[str, str], tuple[int, float]] = {}
    for side in sides:
        for ts in side.trades.values():
            for t in ts:
                if t.filled:
                    k = (t.exchange, t.symbol)
                    if k not in last or t.first_fill_ns >= last[k][0]:
                        last[k] = (t.first_fill_ns, t.avg)
        for group in (side.settled, side.stray):
            for st in (x for xs in group.values() for x in xs if x.signed):
                last.setdefault((st.exchange, st.symbol), (0, st.value / st.signed / 100))
    for k, (_, px) in sorted(last.items()):
        if k not in marks:
            marks[k] = round(px, 2)
            notes.append(f"{k[0]}:{k[1]} has no recorded tick on the day: valued at its last fill")


def _ticks(refdata: RefData, marks: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    out = {}
    for ex, sym in marks:
        with contextlib.suppress(RefDataError):
            out[(ex, sym)] = refdata.instrument(ex, sym).tick_size
    return out


def shadow_days(
    s: Settings,
    start: date,
    end: date,
    strategies: list[str] | None = None,
    capital: float | None = None,
) -> tuple[list[ShadowDay], dict[date, str]]:
    """Every recorded day of ``start``..``end`` shadowed, and the days that could not be
    (no journal of the day, nothing traded: why, by day)."""
    if end < start:
        raise ShadowError(f"--to {end} is before --from {start}")
    try:
        days = recorded_days(s.stores.record_db, start, end)
    except RecordingHeldError:  # the running feed holds it: the days it has copied
        days = sorted(d for d in day_copies(s.stores.record_db) if start <= d <= end)
    if not days:
        raise ShadowError(f"{s.stores.record_db} holds no ticks from {start} to {end}")
    done: list[ShadowDay] = []
    skipped: dict[date, str] = {}
    for d in days:
        try:
            done.append(shadow_day(s, d, strategies, capital))
        except ShadowError as exc:
            skipped[d] = str(exc)
    return done, skipped
