"""The one command layer: every action on the running stack, as the command line and the
HTTP API call it (and the Telegram bot is to), so that they cannot disagree.

A read (status, P&L, positions, trading states) answers from the daemons' heartbeats. A
change (pause, resume, stop, the kill switch) is a ``wire.Command`` to risk, the keeper
of trading states, confirmed from risk's next heartbeat; each is idempotent (a pause of a
paused strategy, a stop of a stopping one, changes nothing and says so), refused with
what exists for an unknown strategy, and refused with "nothing was changed" while risk
is not running. Every command, read or change, is recorded with who gave it
(``control/record.py``), and the risk event a change makes names who and through what.

* **pause**: the strategy HALTED: no new entry, its working entries cancelled at the
  broker; its exits and protective orders keep working.
* **resume**: ACTIVE again; it also lifts a halt that risk or the router set (a limit, an
  unknown order), and says what had halted it.
* **stop**: paused, and its positions closed through risk's exits until the broker's
  book is flat (it stays paused).
* **kill switch**: on (the stack HALTED), flatten (and every position closed), off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from mytrading.control.record import CommandRecord
from mytrading.control.strategyfile import StrategyFile
from mytrading.domain.trading_states import SCHEDULE, describe, set_by, stack_line
from mytrading.messaging import wire

Via = Literal["cli", "telegram", "api"]
CONFIRM_S = 2.0  # how long a change waits for risk's heartbeat to show it
KILL_VALUES = ("on", "off", "flatten")


@dataclass(frozen=True)
class Caller:
    """Who gives the command, through what, and from where."""

    who: str  # cli:<user>, telegram:<user id>, api:<token name>
    via: Via
    origin: str = ""  # a host, a chat id, a client address


@dataclass(frozen=True)
class Answer:
    """What a command did: ``ok`` (done, or nothing to do), ``changed`` (the stack is
    different now), ``text`` for a person, ``data`` for a program."""

    ok: bool
    changed: bool
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    read: bool = False  # a question, not a change
    summary: str = ""  # what the record keeps of a long answer (else its first line)
    # why it was refused: bad_value, unknown, risk_down, pipe_full, unconfirmed
    refusal: str = ""

    @property
    def outcome(self) -> str:
        if not self.ok:
            return "unconfirmed" if self.refusal == "unconfirmed" else "refused"
        return "done" if self.changed or self.read else "unchanged"


class StackView(Protocol):
    """What the command layer needs of the running stack: the daemons' latest heartbeats,
    the positions published, and a way to give risk a command."""

    def daemons(self) -> dict[str, wire.Status]:
        """Each daemon's latest heartbeat (those heard within a few beats)."""
        ...

    def positions(self) -> list[wire.PositionSnapshot]: ...

    def fills(self) -> list[wire.Fill] | None:
        """The day's fills as the router keeps them (None: it did not answer)."""
        ...

    def send(self, cmd: wire.Command) -> bool:
        """Give risk the command (False: it could not be handed over)."""
        ...

    def refresh(self, seconds: float) -> None:
        """Take in what the bus brought for up to ``seconds``."""
        ...


class Control:
    """The commands, for one caller. ``strategies`` names what may be commanded besides
    the books risk reports (the enabled ones, webhook strategies)."""

    def __init__(
        self,
        view: StackView,
        record: CommandRecord,
        caller: Caller,
        strategies: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        record_reads: bool = True,
        strategy_file: StrategyFile | None = None,
        reports_dir: Path | None = None,
    ) -> None:
        """``strategy_file``: where enable, disable and parameters are written (None:
        those are refused here); ``reports_dir``: the end-of-day reports (``shadow``)."""
        self.strategy_file = strategy_file
        self.reports_dir = reports_dir
        self.view = view
        self.record = record
        self.caller = caller
        self.known = list(strategies or [])
        self.clock = clock
        # a person's question is kept; a page's polling of the same is not (the record
        # would be its refreshes): changes and refusals are kept always
        self.record_reads = record_reads

    # ------------------------------------------------------------------ reads

    def status(self) -> Answer:
        """The daemons, their states, the mode, the accounts' funds."""
        daemons = self.view.daemons()
        data = {
            n: {"state": st.state, "pid": st.pid, "peers_down": list(st.peers_down)}
            for n, st in sorted(daemons.items())
        }
        risk = self._risk()
        lines = [f"{n:<11} {d['state']:<9} pid {d['pid']}" for n, d in data.items()]
        if risk is not None:
            lines.append(f"stack: {stack_line(risk.get('states', {})) or 'ACTIVE'}")
            lines.append(f"margin available: {risk.get('margin_available')}")
            lines += [f"today: {line}" for line in _plan_lines(risk.get("schedule") or {})]
        text = "\n".join(lines) if lines else "no daemon is running"
        running = sum(1 for d in data.values() if d["state"] != "stopped")
        summary = f"{running} daemons running"
        answer = Answer(True, False, text, {"daemons": data}, read=True, summary=summary)
        return self._done("status", {}, answer)

    def pnl(self) -> Answer:
        """P&L per strategy and for the stack: gross (realised + unrealised), charges,
        net (as risk keeps them, charges as a contract note computes them)."""
        risk = self._risk()
        if risk is None:
            return self._done("pnl", {}, self._risk_down())
        rows: dict[str, dict[str, float]] = {}
        for name, p in sorted((risk.get("pnl") or {}).items()):
            gross = float(p.get("realized", 0.0)) + float(p.get("unrealized", 0.0))
            rows[name] = {
                "gross": round(gross, 2),
                "charges": round(float(p.get("charges", 0.0)), 2),
                "net": round(float(p.get("net", gross)), 2),
            }
        total = {k: round(sum(r[k] for r in rows.values()), 2) for k in ("gross", "charges", "net")}
        lines = [f"{'':<22}{'GROSS':>12}{'CHARGES':>10}{'NET':>12}"]
        for name, r in (*rows.items(), ("stack", total)):
            lines.append(
                f"{name[:21]:<22}{r['gross']:>12.2f}{r['charges']:>10.2f}{r['net']:>12.2f}"
            )
        return self._done(
            "pnl",
            {},
            Answer(
                True,
                False,
                "\n".join(lines),
                {"strategies": rows, "stack": total},
                read=True,
                summary=f"stack net {total['net']:.2f} (gross {total['gross']:.2f})",
            ),
        )

    def positions(self) -> Answer:
        """Open positions per strategy, as the router publishes them."""
        open_ = [p for p in self.view.positions() if p.quantity]
        data = [
            {
                "strategy": p.strategy,
                "symbol": p.symbol,
                "exchange": p.exchange,
                "quantity": p.quantity,
                "avg_price": p.avg_price,
                "ltp": p.ltp,
                "unrealized": p.unrealized_pnl,
                "account": p.account,
            }
            for p in sorted(open_, key=lambda p: (p.strategy, p.symbol))
        ]
        text = (
            "\n".join(
                f"{d['strategy']:<22} {d['symbol']:<24} {d['quantity']:>7} @ {d['avg_price']:.2f}"
                f"  ltp {d['ltp']:.2f}  unrealized {d['unrealized']:.2f}"
                for d in data
            )
            or "no open positions"
        )
        return self._done(
            "positions", {}, Answer(True, False, text, {"positions": data}, read=True)
        )

    def trades(self) -> Answer:
        """Today's fills, as the router numbers them (settlements marked)."""
        fills = self.view.fills()
        if fills is None:
            text = "the router did not answer: its fills are not known"
            return self._done("trades", {}, Answer(False, False, text, refusal="router_down"))
        data: list[dict[str, Any]] = [
            {
                "fill_no": f.fill_no,
                "time": _ist(f.exch_ns),
                "strategy": f.strategy,
                "symbol": f.symbol,
                "exchange": f.exchange,
                "action": f.action,
                "quantity": f.quantity,
                "price": f.price,
                "account": f.account,
                "settlement": f.settlement,
            }
            for f in sorted(fills, key=lambda f: f.fill_no)
        ]
        text = (
            "\n".join(
                f"{d['time'][11:19]} {d['strategy'][:18]:<18} {d['action']:<4} "
                f"{d['quantity']:>6} {d['symbol']} @ {d['price']:.2f}"
                + (f" ({d['settlement']})" if d["settlement"] else "")
                for d in data
            )
            or "no trades today"
        )
        summary = f"{len(data)} fills"
        answer = Answer(True, False, text, {"trades": data}, read=True, summary=summary)
        return self._done("trades", {}, answer)

    def schedule(self) -> Answer:
        """Today's plan of each scheduled strategy (risk's, from config/strategies.toml
        and the exchange calendar): its days and hours, whether it trades today, and
        where in its day it is."""
        risk = self._risk()
        if risk is None:
            return self._done("schedule", {}, self._risk_down())
        plan = dict(risk.get("schedule") or {})
        text = "\n".join(_plan_lines(plan)) or (
            "no strategy has a schedule: each trades whenever risk allows "
            "([NAME.schedule] in config/strategies.toml)"
        )
        summary = f"{sum(1 for p in plan.values() if p.get('trades_today'))} scheduled today"
        answer = Answer(True, False, text, {"schedule": plan}, read=True, summary=summary)
        return self._done("schedule", {}, answer)

    def shadow(self) -> Answer:
        """The latest end-of-day report's live against its shadow: per strategy the line
        (live vs shadow and each cause in rupees), the counts, the bridge and the trades
        that did not match; or why there is none."""
        from mytrading.monitor.eod import latest
        from mytrading.monitor.eodshadow import summary_lines

        page = latest(self.reports_dir) if self.reports_dir is not None else None
        if page is None:
            text = "no end-of-day report yet: the monitor makes one after the close"
            return self._done("shadow", {}, Answer(True, False, text, {"shadow": None}, read=True))
        try:
            report = json.loads(page.with_suffix(".json").read_text())
        except (OSError, ValueError) as exc:
            return self._done("shadow", {}, Answer(False, False, f"{page} unreadable: {exc}",
                                                   refusal="bad_value"))  # fmt: skip
        day, sh = report.get("day", "?"), report.get("shadow")
        if sh is None:
            text = f"the report of {day} has no shadow (made before the shadow was in it)"
        else:
            text = f"end of day {day}\n" + "\n".join(summary_lines(sh))
        data = {"day": day, "shadow": sh, "page": str(page)}
        return self._done("shadow", {}, Answer(True, False, text, data, read=True,
                                               summary=f"shadow of {day}"))  # fmt: skip

    def halted(self) -> Answer:
        """Risk's trading states with why, who and when."""
        risk = self._risk()
        if risk is None:
            return self._done("halted", {}, self._risk_down())
        states = risk.get("states", {})
        lines = [f"stack: {stack_line(states) or 'ACTIVE'}"]
        stopping = set(states.get("stopping") or ())
        lines += [
            f"  {n}: {describe(states, n)}"
            + (" (stopping: its positions closing through risk's exits)" if n in stopping else "")
            for n in sorted(states.get("strategies", {}))
        ]
        answer = Answer(True, False, "\n".join(lines), {"states": states}, read=True)
        return self._done("halted", {}, answer)

    def strategies_overview(self) -> Answer:
        """Each strategy that may be commanded: its state with why (and whether it is
        stopping), its P&L (gross, charges, net) and its open positions."""
        from mytrading.domain.trading_states import effective

        risk = self._risk()
        states = dict((risk or {}).get("states") or {})
        stopping = set(states.get("stopping") or ())
        pnl = (risk or {}).get("pnl") or {}
        held = [p for p in self.view.positions() if p.quantity]
        plans = dict((risk or {}).get("schedule") or {})
        rows: list[dict[str, Any]] = []
        for name in self.strategies():
            p = pnl.get(name, {})
            gross = float(p.get("realized", 0.0)) + float(p.get("unrealized", 0.0))
            rows.append(
                {
                    "name": name,
                    "state": effective(states, name) if risk is not None else "unknown",
                    "why": describe(states, name) if risk is not None else "risk is not running",
                    "stopping": name in stopping,
                    # today's plan when it has a schedule ("" when it has none)
                    "today": (
                        _plan_lines({name: plans[name]})[0].split(None, 1)[1]
                        if name in plans
                        else ""
                    ),
                    "pnl": {
                        "gross": round(gross, 2),
                        "charges": round(float(p.get("charges", 0.0)), 2),
                        "net": round(float(p.get("net", gross)), 2),
                    },
                    "positions": [
                        {
                            "symbol": h.symbol,
                            "quantity": h.quantity,
                            "avg_price": h.avg_price,
                            "ltp": h.ltp,
                            "unrealized": h.unrealized_pnl,
                        }
                        for h in held
                        if h.strategy == name
                    ],
                }
            )
        text = "\n".join(
            f"{r['name']:<22} {r['state'].upper():<9} net {r['pnl']['net']:.2f}" for r in rows
        )
        data = {
            "risk": risk is not None,
            "kill_mode": (risk or {}).get("kill_mode"),
            "strategies": rows,
        }
        answer = Answer(True, False, text, data, read=True, summary=f"{len(rows)} strategies")
        return self._done("strategies", {}, answer)

    # ---------------------------------------------------------------- changes

    def pause(self, name: str, reason: str = "") -> Answer:
        args = {"strategy": name}
        refused = self._check(name)
        if refused is not None:
            return self._done("pause", args, refused)
        states = self._states()
        # halted by its schedule (outside its hours) is not paused: the schedule arms it
        # at its start, and a pause must outlast that
        if _own(states, name) == "halted" and set_by(states, name) != SCHEDULE:
            why = describe(states, name)
            return self._done("pause", args, Answer(True, False, f"{name} is already {why}"))
        cmd = self._command("state", "halted", name, reason or f"paused by {self._by()}")
        return self._change(
            "pause",
            args,
            cmd,
            lambda s: _own(s, name) == "halted" and set_by(s, name) != SCHEDULE,
            f"{name} paused",
        )

    def resume(self, name: str, reason: str = "") -> Answer:
        args = {"strategy": name}
        refused = self._check(name)
        if refused is not None:
            return self._done("resume", args, refused)
        states = self._states()
        if _own(states, name) == "active":
            return self._done("resume", args, Answer(True, False, f"{name} is already active"))
        was = describe(states, name)
        cmd = self._command("state", "active", name, reason or f"resumed by {self._by()}")
        return self._change(
            "resume", args, cmd, lambda s: _own(s, name) == "active", f"{name} resumed (was {was})"
        )

    def state(self, target: str, value: str, reason: str = "") -> Answer:
        """Any trading state (active, reducing, halted) for one strategy or, with ``*``,
        the whole stack (``main.py risk state``)."""
        from mytrading.risk.state import STATES

        args = {"target": target, "state": value}
        if value not in STATES:
            text = f"state must be one of {', '.join(STATES)}; got {value!r}"
            return self._done("state", args, Answer(False, False, text, refusal="bad_value"))
        if target != "*":
            refused = self._check(target)
            if refused is not None:
                return self._done("state", args, refused)
        elif self._risk() is None:
            return self._done("state", args, self._risk_down())

        def now(s: dict[str, Any]) -> str:
            return str(s.get("stack", "active")) if target == "*" else _own(s, target)

        who = "stack" if target == "*" else target
        if now(self._states()) == value:
            return self._done(
                "state", args, Answer(True, False, f"{who} is already {value.upper()}")
            )
        cmd = self._command("state", value, target, reason or f"{value} by {self._by()}")
        return self._change("state", args, cmd, lambda s: now(s) == value, f"{who} {value.upper()}")

    def stop(self, name: str, reason: str = "") -> Answer:
        args = {"strategy": name}
        refused = self._check(name)
        if refused is not None:
            return self._done("stop", args, refused)
        states = self._states()
        if name in states.get("stopping", ()):
            return self._done("stop", args, Answer(True, False, f"{name} is already stopping"))
        cmd = self._command("stop", "", name, reason or f"stopped by {self._by()}")
        return self._change(
            "stop",
            args,
            cmd,
            # stopping, or already flat (risk ends the stop at once): its why is the stop's
            lambda s: (
                _own(s, name) == "halted"
                and (name in s.get("stopping", []) or cmd.reason == _why(s, name))
            ),
            f"{name} stopping: paused, its positions closing through risk's exits",
        )

    def kill_switch(self, value: str, reason: str = "") -> Answer:
        args = {"state": value}
        if value not in KILL_VALUES:
            text = f"the kill switch takes {', '.join(KILL_VALUES)}; got {value!r}"
            return self._done("kill_switch", args, Answer(False, False, text, refusal="bad_value"))
        risk = self._risk()
        if risk is None:
            return self._done("kill_switch", args, self._risk_down())
        if risk.get("kill_mode") == value:
            return self._done(
                "kill_switch", args, Answer(True, False, f"kill switch is already {value}")
            )
        cmd = wire.Command(
            command="kill_switch",
            value=value,
            reason=reason or f"kill switch {value} by {self._by()}",
            issued_by=self.caller.who,
        )
        return self._change(
            "kill_switch", args, cmd, lambda d: d.get("kill_mode") == value, f"kill switch {value}",
            on_detail=True,
        )  # fmt: skip

    # ------------------------------------------------ the engine's strategies

    def enable(self, name: str, reason: str = "") -> Answer:
        """The strategy started on the running engine (checked as ``config check`` checks
        it; ``enabled = true`` written to config/strategies.toml so a restart keeps it).
        Refused while the broker holds a position of it (the engine would start it flat:
        a restart of the engine takes it up with its positions)."""
        args = {"strategy": name}
        refused = self._engine_refusal()
        if refused is not None:
            return self._done("enable", args, refused)
        assert self.strategy_file is not None
        running = self._engine() or {}
        if name in running:
            return self._done("enable", args, Answer(True, False, f"{name} is already enabled"))
        problem = self.strategy_file.problem(name)
        if problem:
            return self._done("enable", args, self._bad(problem, name))
        held = [f"{p.exchange}:{p.symbol} {p.quantity:+d}" for p in self.view.positions()
                if p.strategy == name and p.quantity]  # fmt: skip
        if held:
            text = (
                f"{name} holds {', '.join(held)} at the broker: enabling it now would start "
                "it flat; `main.py restart engine` takes it up with its positions: nothing "
                "was changed"
            )
            return self._done("enable", args, Answer(False, False, text, refusal="holds"))
        cmd = self._command("strategy", "enable", name, reason or f"enabled by {self._by()}")
        return self._change(
            "enable", args, cmd, lambda e: name in e, f"{name} enabled", on_engine=True,
            unconfirmed=WRITTEN, written={"enabled": True},
        )  # fmt: skip

    def disable(self, name: str, reason: str = "") -> Answer:
        """The strategy stopped on the running engine and ``enabled = false`` written, so
        a restart keeps it off. Refused while it holds a position or a working order
        (``stop`` it first)."""
        args = {"strategy": name}
        refused = self._engine_refusal()
        if refused is not None:
            return self._done("disable", args, refused)
        assert self.strategy_file is not None
        running = self._engine() or {}
        if name not in running:
            known = ", ".join(sorted(running)) or "none"
            text = f"{name} is not running on the engine (running: {known})"
            return self._done("disable", args, Answer(True, False, text))
        held = _holds(running[name])
        if held:
            return self._done("disable", args, self._holding(name, held, "disabling"))
        cmd = self._command("strategy", "disable", name, reason or f"disabled by {self._by()}")
        return self._change(
            "disable", args, cmd, lambda e: name not in e, f"{name} disabled", on_engine=True,
            unconfirmed=WRITTEN, written={"enabled": False},
        )  # fmt: skip

    def set_params(self, name: str, changes: dict[str, Any], reason: str = "") -> Answer:
        """New parameters for a running strategy: checked as ``config check`` checks them
        (a bad one names its field and changes nothing), written to its table in
        config/strategies.toml, and the strategy made again with them on the running
        engine (warmed up from history as at a start), the others untouched. Refused
        while it holds a position or a working order (``stop`` it, or wait until flat)."""
        args = {"strategy": name, "params": changes}
        refused = self._engine_refusal()
        if refused is not None:
            return self._done("params", args, refused)
        assert self.strategy_file is not None
        if not changes:
            return self._done("params", args, self._bad("no parameter given", name))
        running = self._engine() or {}
        if name not in running:
            problem = self.strategy_file.problem(name)
            text = problem or f"{name} is not running on the engine: `control enable {name}`"
            return self._done("params", args, self._bad(text, name))
        now = dict(running[name].get("params") or {})
        if all(k in now and now[k] == v for k, v in changes.items()):
            said = ", ".join(f"{k}={v!r}" for k, v in changes.items())
            return self._done("params", args, Answer(True, False, f"{name} already has {said}"))
        problem = self.strategy_file.problem(name, changes)
        if problem:
            return self._done("params", args, self._bad(problem, name))
        held = _holds(running[name])
        if held:
            return self._done("params", args, self._holding(name, held, "changing its parameters"))
        said = ", ".join(f"{k}={v!r}" for k, v in changes.items())
        cmd = self._command("strategy", "params", name, reason or f"{said} by {self._by()}")
        # what changed, both ways: risk keeps it on its record, where the day's shadow reads
        # the parameters in force at the open and each change at its moment
        cmd.ref = json.dumps({"before": {k: now.get(k) for k in changes}, "after": changes},
                             default=str)  # fmt: skip

        def taken(e: dict[str, Any]) -> bool:
            got = (e.get(name) or {}).get("params") or {}
            return all(k in got and got[k] == v for k, v in changes.items())

        return self._change(
            "params", args, cmd, taken, f"{name}: {said}", on_engine=True, unconfirmed=WRITTEN,
            written={"params": changes},
        )  # fmt: skip

    def _engine_refusal(self) -> Answer | None:
        if self.strategy_file is None:
            text = "strategies cannot be changed from here: nothing was changed"
            return Answer(False, False, text, refusal="bad_value")
        if self._risk() is None:
            return self._risk_down()
        if self._engine() is None:
            text = "the engine is not running: nothing was changed"
            return Answer(False, False, text, refusal="engine_down")
        return None

    def _bad(self, problem: str, name: str) -> Answer:
        unknown = problem.startswith("no strategy")
        data = {"strategies": self.strategy_file.names()} if unknown and self.strategy_file else {}
        return Answer(False, False, problem, data, refusal="unknown" if unknown else "bad_value")

    def _holding(self, name: str, held: list[str], doing: str) -> Answer:
        text = (
            f"{name} holds {', '.join(held)}: {doing} now would drop them from its books; "
            f"`control stop {name}` (or wait until it is flat) first: nothing was changed"
        )
        return Answer(False, False, text, refusal="holds")

    def _engine(self) -> dict[str, Any] | None:
        """The engine's strategies as its latest heartbeat shows them (None: not running)."""
        st = self.view.daemons().get("engine")
        return dict(st.detail.get("strategies") or {}) if st is not None else None

    # ---------------------------------------------------------------- helpers

    def risk(self) -> dict[str, Any] | None:
        """Risk's latest heartbeat detail (None: risk is not running)."""
        return self._risk()

    def strategies(self) -> list[str]:
        """What may be commanded: the configured ones and every book risk reports."""
        risk = self._risk() or {}
        names = set(self.known) | set(risk.get("pnl") or {}) | set(risk.get("use") or {})
        names |= set((risk.get("states") or {}).get("strategies") or {})
        return sorted(names)

    def _by(self) -> str:
        return f"{self.caller.who} via {self.caller.via}"

    def _risk(self) -> dict[str, Any] | None:
        st = self.view.daemons().get("risk")
        return st.detail if st is not None else None

    def _states(self) -> dict[str, Any]:
        return dict((self._risk() or {}).get("states") or {})

    def _risk_down(self) -> Answer:
        return Answer(False, False, "risk is not running: nothing was changed", refusal="risk_down")

    def _check(self, name: str) -> Answer | None:
        if self._risk() is None:
            return self._risk_down()
        known = self.strategies()
        if name not in known:
            text = f"no strategy {name!r}; there are: {', '.join(known) or 'none'}"
            return Answer(False, False, text, {"strategies": known}, refusal="unknown")
        return None

    def _command(self, command: str, value: str, target: str, reason: str) -> wire.Command:
        return wire.Command(
            command=command,  # type: ignore[arg-type]  # one of Command's, by the caller
            value=value,
            reason=reason,
            issued_by=self.caller.who,
            target=target,
        )

    def _change(
        self,
        name: str,
        args: dict[str, Any],
        cmd: wire.Command,
        confirmed: Callable[[dict[str, Any]], bool],
        said: str,
        on_detail: bool = False,
        on_engine: bool = False,
        unconfirmed: str = "it may still take effect; `main.py control halted` shows what holds",
        written: dict[str, Any] | None = None,
    ) -> Answer:
        """Hand risk the command, then wait (``CONFIRM_S``) for a heartbeat to show it:
        risk's states (or, ``on_detail``, its whole detail), or the engine's strategies
        (``on_engine``). ``written``: the change to the strategy's table in
        config/strategies.toml that the command makes the engine take up, written and the
        command handed over under the file's lock (put back when it cannot be handed
        over: ``StrategyFile.change``)."""
        if written is not None:
            assert self.strategy_file is not None
            sent = self.strategy_file.change(cmd.target, lambda: self.view.send(cmd), **written)
        else:
            sent = self.view.send(cmd)
        if not sent:
            return self._done(
                name,
                args,
                Answer(
                    False,
                    False,
                    # a send that fails: the pipe full, or no risk at its end (one seen
                    # up a moment ago, then gone: the simulator's seed 213 said "full")
                    "risk did not take the command (its pipe is full, or it has just "
                    "stopped): nothing was changed",
                    refusal="pipe_full",
                ),
            )
        deadline = self.clock() + CONFIRM_S
        while self.clock() < deadline:
            self.view.refresh(0.002)  # the beat that shows it comes within milliseconds
            if on_engine:
                engine = self._engine()
                if engine is not None and confirmed(engine):
                    return self._done(
                        name, args, Answer(True, True, f"{said} (confirmed by the engine)")
                    )
                continue
            risk = self._risk()
            if risk is not None and confirmed(
                risk if on_detail else dict(risk.get("states") or {})
            ):
                return self._done(name, args, Answer(True, True, f"{said} (confirmed by risk)"))
        who = "the engine" if on_engine else "risk"
        text = f"{who} did not confirm within {CONFIRM_S:g} s: {unconfirmed}"
        return self._done(name, args, Answer(False, False, text, refusal="unconfirmed"))

    def _done(self, command: str, args: dict[str, Any], a: Answer) -> Answer:
        if a.read and not self.record_reads:
            return a
        c = self.caller
        self.record.add(
            c.who,
            c.via,
            c.origin,
            command,
            args,
            a.outcome,
            a.summary or (a.text.splitlines()[0] if a.text else ""),
        )
        return a


WRITTEN = (
    "it is written to config/strategies.toml (a restart of the engine takes it); "
    "`main.py logs engine` says why not now"
)


def _holds(row: dict[str, Any]) -> list[str]:
    """What the engine's heartbeat says a strategy still has: positions, working orders."""
    held = [f"{k} {int(q):+d}" for k, q in sorted((row.get("positions") or {}).items()) if q]
    n = int(row.get("open_orders") or 0)
    return held + ([f"{n} working order{'s' if n != 1 else ''}"] if n else [])


def _plan_lines(plan: dict[str, dict[str, Any]]) -> list[str]:
    where = {
        "before": "before its start",
        "during": "in its hours",
        "after": "after its stop",
        "off": "not today",
    }
    return [
        f"{name:<22} {p.get('schedule', '')}: "
        + (where.get(str(p.get("phase")), str(p.get("phase"))) if p.get("trades_today")
           else f"not today ({p.get('why', '')})")
        for name, p in sorted(plan.items())
    ]  # fmt: skip


def _ist(ns: int) -> str:
    from datetime import datetime

    from mytrading.domain.refdata import IST

    return datetime.fromtimestamp(ns / 1e9, IST).isoformat(timespec="seconds")


def _why(states: dict[str, Any], name: str) -> str:
    """The reason risk keeps for a strategy's state ("" for none)."""
    return str(((states.get("why") or {}).get(name) or {}).get("reason", ""))


def _own(states: dict[str, Any], name: str) -> str:
    """A strategy's own trading state in risk's ``states`` (the stack's left out)."""
    return str((states.get("strategies") or {}).get(name, "active"))
