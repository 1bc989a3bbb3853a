"""The people around a simulated day: an operator at the command line and a charting
service sending webhook alerts, at the seed's moments.

The operator steers through the command layer itself (``control/actions.py``: ``Control``,
what ``main.py control``, the Telegram bot and the HTTP API call), on a view of the
stack made of what the simulated bus carries: it pauses and resumes a strategy, stops
one, turns the kill switch on (or flattens) and off again, and changes a strategy's
parameters. A command waits for its confirmation as the command line waits, the world
running on meanwhile.

TradingView posts alerts to the signals daemon's webhook: the gate (``webhook/gate.py``)
takes them as its HTTP server would hand them over.
"""

from __future__ import annotations

import functools
import json
import random
from typing import Any

from mytrading import hosttime
from mytrading.control.actions import Caller, Control
from mytrading.control.record import CommandRecord
from mytrading.control.strategyfile import StrategyFile
from mytrading.domain.refdata import future_symbol
from mytrading.messaging import wire
from mytrading.simulation.host import SimPusher
from mytrading.webhook.model import StrategyFields, SymbolMap
from mytrading.webhook.store import WebhookStore

# the ``SimStack`` (``simulation/stack.py``) that composes this part: typed loosely,
# so that no part imports the module that imports it
Sim = Any

WEBHOOK = "tv_nifty"
MIN_ORDERS = 20  # what every seed's day carries at least (the floor)
TOP_UP_PER_S = 50  # the webhook strategy's max_orders_per_sec in the simulation's risk.toml
TOP_UP_GAP_S = 1.5 / TOP_UP_PER_S  # a thin day's more alerts, no closer than that allows
COMMAND_TRIES = 3  # a command that did not reach risk is given again, up to this
COMMAND_RETRY_S = 1.0  # ... this long after (wall seconds)
# the control's refusals that mean the command never reached risk: "nothing was changed"
NOT_DELIVERED = frozenset({"risk_down", "pipe_full", "engine_down"})
PAUSABLE = (  # the webhook strategy too: its alerts come whatever its state
    "sma_crossover",
    "rsi_mean_reversion",
    "supertrend_trend",
    "stock_futures_trend",
    WEBHOOK,
)
PARAMS = {  # a parameter change an operator might make, each valid
    "sma_crossover": ({"fast": 4}, {"fast": 6}, {"slow": 18}),
    "rsi_mean_reversion": ({"period": 10}, {"oversold": 28.0}),
    "stock_futures_trend": ({"fast": 4}, {"slow": 24}),
}


class _CliHost:
    """The command line's end of risk's command pipe (``SimPusher`` needs a sender)."""

    def __init__(self, stack: Sim) -> None:
        self.stack = stack
        self.name = "cli"


class SimView:
    """The stack as the command line sees it (``control.actions.StackView``): the latest
    heartbeats and positions heard on the bus, risk's pipe, the router's fills."""

    def __init__(self, stack: Sim) -> None:
        self.stack = stack
        self.beats: dict[str, tuple[wire.Status, int]] = {}
        self.pos: dict[tuple[str, str, str, str], wire.PositionSnapshot] = {}
        self.pusher = SimPusher(_CliHost(stack), "pipe.commands", "command")  # type: ignore[arg-type]
        stack.bus.observers.append(self._heard)

    def _heard(self, src: Any, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Status):
            self.beats[msg.name] = (msg, self.stack.world.now_ns)
        elif isinstance(msg, wire.PositionSnapshot):
            self.pos[(msg.account, msg.strategy, msg.exchange, msg.symbol)] = msg

    def daemons(self) -> dict[str, wire.Status]:
        s = self.stack.settings.liveness
        limit = int(s.heartbeat_s * s.peer_missed_beats * 1e9)
        now = self.stack.world.now_ns
        return {n: st for n, (st, at) in self.beats.items() if now - at <= limit}

    def positions(self) -> list[wire.PositionSnapshot]:
        return list(self.pos.values())

    def fills(self) -> list[wire.Fill] | None:
        ask = wire.encode_body(wire.BrokerQuery(kind="fills"))
        reply = self.stack.bus.answer("rpc.router", ask)
        if reply is None:
            return None
        msg = wire.decode_body(reply)
        return msg.fills if isinstance(msg, wire.BrokerReply) else None

    def send(self, cmd: wire.Command) -> bool:
        return self.pusher.send(cmd)

    def refresh(self, seconds: float) -> None:
        self.stack.world.run_for(seconds)


class Operator:
    """The seed's commands and alerts, drawn at the start, given at their moments."""

    def __init__(
        self,
        stack: Sim,
        rng: random.Random,
        day_s: float,
        top_up: tuple[float, float],
        early_s: float = 0.0,
    ) -> None:
        self.stack = stack
        self.rng = rng
        self.view = SimView(stack)
        self.record = CommandRecord(stack.settings.stores.control_db)
        self.file = StrategyFile(stack.settings)
        self.answers: list[tuple[str, str, bool, str]] = []  # (command, target, ok, text)
        self._issued: dict[str, int] = {}  # commands given on what each sets (``_command``)
        self.kill_switch = "off"  # as the operator last confirmed it
        self.stopped: set[str] = set()  # strategies stopped and left so
        self.plan: list[tuple[float, str, str, Any]] = []
        self.top_up = top_up  # when a thin day gets more alerts (wall seconds from the open)
        # an earlier round for a day already thin by then (0: none): a risk halt later in
        # the day would leave it so (seed 212: the daily loss limit halted the stack at
        # 14:52, a minute into the top-up, and the day ended with 17 orders)
        self.early_s = early_s
        self._draw(day_s)
        self.webhook_id = ""
        self.alerts_sent = 0

    def _draw(self, day_s: float) -> None:
        r = self.rng
        t = r.uniform(0.1, 0.3) * day_s
        name = r.choice(PAUSABLE)
        self.plan.append((t, "pause", name, None))
        self.plan.append((t + r.uniform(0.03, 0.15) * day_s, "resume", name, None))
        if r.random() < 0.7:
            t = r.uniform(0.3, 0.6) * day_s
            mode = r.choice(("on", "on", "flatten"))
            off = t + r.uniform(0.03, 0.12) * day_s
            # off before a thin day's top-up, or its alerts are refused and the day stays
            # thin (seed 98 at 240x: 18 orders)
            early = max(0.0, off - self.top_up[0])
            self.plan.append((t - early, "kill_switch", mode, None))
            self.plan.append((off - early, "kill_switch", "off", None))
        if r.random() < 0.6:
            name = r.choice(sorted(PARAMS))
            self.plan.append((r.uniform(0.2, 0.8) * day_s, "params", name, r.choice(PARAMS[name])))
        if r.random() < 0.4:
            self.plan.append((r.uniform(0.5, 0.9) * day_s, "stop", r.choice(PAUSABLE), None))
        self.alert_times = sorted(r.uniform(0.05, 0.9) * day_s for _ in range(r.randrange(8, 13)))

    def arm(self) -> None:
        world = self.stack.world
        for at, what, target, arg in self.plan:
            world.after(at, functools.partial(self._command, what, target, arg))
        for i, at in enumerate(self.alert_times):
            world.after(at, functools.partial(self._alert, "BUY" if i % 2 == 0 else "SELL"))
        start, end = self.top_up
        if self.early_s:
            world.after(self.early_s, functools.partial(self._top_up, (end - start) / 2, True))
        world.after(start, functools.partial(self._top_up, (end - start) / 2))
        world.after((start + end) / 2, functools.partial(self._top_up, (end - start) / 2))

    def _top_up(self, span_s: float, early: bool = False) -> None:
        """A day the faults kept thin (risk down through the open: every first entry of
        the day refused as stale) gets more alerts, in BUY/SELL pairs spread over the
        afternoon before the webhook strategy's entries end, so that every seed carries
        at least ``MIN_ORDERS`` orders: in two rounds, the second for what the first's
        refusals left short (seed 169: the router crashed in the first round, its
        webhook strategy held for an order unknown meanwhile), and an earlier one
        (``early_s``) for a day with fewer than half of them by then."""
        orders = self.stack.invariants.orders
        short = MIN_ORDERS + 6 - orders  # some are refused
        if short <= 0 or (early and orders >= MIN_ORDERS // 2):
            return
        # no closer than risk's max_orders_per_sec allows (wall seconds: seed 169 at 240x
        # had 26 alerts in a second, and most were refused as order_rate)
        pairs = min((short + 1) // 2, max(1, int(span_s / TOP_UP_GAP_S) // 2))
        gap = span_s / (2 * pairs)
        for i in range(2 * pairs):
            action = "BUY" if i % 2 == 0 else "SELL"
            self.stack.world.after(i * gap, functools.partial(self._alert, action))
        self.stack.trace_event("alert", f"{2 * pairs} more: the day has "
                               f"{self.stack.invariants.orders} orders")  # fmt: skip

    # ------------------------------------------------------------------ commands

    def _command(self, what: str, target: str, arg: Any, tries: int = 1, seq: int = 0) -> None:
        s = self.stack
        # what the command sets: a later command on it makes an earlier one's retry stale
        # (a flatten refused while risk was down, given again after the planned "off",
        # left seed 169's stack halted all day)
        sets = what if what in ("kill_switch", "params") else "state"  # pause, resume, stop
        sets += f":{target}" if what != "kill_switch" else ""
        if tries == 1:
            seq = self._issued[sets] = self._issued.get(sets, 0) + 1
        elif self._issued.get(sets) != seq:
            s.trace_event("op", f"{what} {target}: not given again, a later command came")
            return
        ctl = Control(self.view, self.record, Caller("cli:sim", "cli"), list(s.options.strategies),
                      clock=lambda: hosttime.monotonic(), strategy_file=self.file)  # fmt: skip
        s.trace_event("op", f"{what} {target} {arg or ''}".strip())
        if what == "pause":
            a = ctl.pause(target, "simulated operator")
        elif what == "resume":
            a = ctl.resume(target, "simulated operator")
        elif what == "stop":
            a = ctl.stop(target, "simulated operator")
            if a.ok:
                self.stopped.add(target)
        elif what == "kill_switch":
            a = ctl.kill_switch(target, "simulated operator")
            if a.ok:
                self.kill_switch = target
        else:
            a = ctl.set_params(target, arg, "simulated operator")
        self.answers.append((what, target, a.ok, a.text))
        if not a.ok and a.refusal in NOT_DELIVERED and tries < COMMAND_TRIES:
            # as an operator who reads that answer does: again, a moment later (seed 213:
            # risk was down when the kill switch was to go off, and the stack stayed
            # halted for the rest of the day)
            again = functools.partial(self._command, what, target, arg, tries + 1, seq)
            s.world.after(COMMAND_RETRY_S, again)
        s.trace_event("op", f"answered {what} {target}: ok={a.ok} {a.text[:80]}")

    # ------------------------------------------------------------------ webhooks

    def webhook(self) -> None:
        """The charting service's strategy: created before signals starts, as `main.py
        webhook new` does, trading the near NIFTY future."""
        s = self.stack
        store = WebhookStore(s.settings.stores.webhook_db)
        try:
            fields = StrategyFields(name=WEBHOOK, mode="LONG", intraday=True)
            _, self.webhook_id = store.create(fields)
            u = s.refdata.underlying("NIFTY")
            fut = future_symbol("NIFTY", s.refdata.calendar.near_future_expiry(u, s.day))
            store.add_symbol(WEBHOOK, SymbolMap(external="NIFTY1!", exchange="NFO", symbol=fut))
        finally:
            store.close()

    def _alert(self, action: str) -> None:
        s = self.stack
        door = s.doors[-1] if s.doors else None
        if door is None or not s.alive("signals"):
            s.trace_event("alert", f"{action}: the webhook server is down")
            return
        body = json.dumps({"symbol": "NIFTY1!", "action": action, "quantity": 1,
                           "position_size": 1 if action == "BUY" else 0}).encode()  # fmt: skip
        host = s.hosts["signals"]
        got: list[Any] = []
        host_before, s.current = s.current, None
        try:
            got.append(door.post(self.webhook_id, body))  # the server's thread: not the loop
        finally:
            s.current = host_before
        self.alerts_sent += 1
        answer = got[0]
        s.trace_event("alert", f"{action}: {answer.status if answer else 'not listening'}")
        del host
