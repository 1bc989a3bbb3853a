"""The risk daemon: the only path from an intent to the router.

Each intent from the engine is checked (``rules.check``); a rejection is published as a
``RiskEvent`` on ``risk.event.<strategy>``, an approval becomes an ``Order`` pushed to the
router. Approved orders wait in a bounded queue while the router is unreachable and are
withdrawn with a RiskEvent after ``MT_RISK_WAIT_S``. The kill switch arrives as a
``Command`` on its own pipe and is persisted, so a restarted risk daemon keeps it.
"""

from __future__ import annotations

import collections
import time
from typing import Any

from mytrading import wire
from mytrading.bus import Puller, Pusher
from mytrading.daemon import Daemon
from mytrading.outbox import Outbox
from mytrading.risk.limits import load_limits
from mytrading.risk.rules import Rejection, RiskBook, check, ref_order_id
from mytrading.risk.state import StateStore

MAX_PENDING = 1000


class RiskDaemon(Daemon):
    name = "risk"
    required_peers = ("router",)
    sub_prefixes = ("exec.order.", "exec.fill.", "md.tick.")  # ticks: live marks

    def setup(self) -> None:
        s = self.settings
        overrides = {
            name.removeprefix("risk_"): getattr(s, name)
            for name in ("risk_max_order_lots", "risk_max_position_lots", "risk_max_orders_per_sec")
            if name in s.model_fields_set
        }
        overrides["any_hour"] = s.risk_any_hour
        self.limits = load_limits(s.config_dir / "risk.toml", overrides)
        self.book = RiskBook()
        self.state_store = StateStore(s.state_dir / "risk_state.json")
        self.book.states, problem = self.state_store.load()
        if problem:
            self.count_error("risk state unreadable", problem=problem)
        self.intents = Puller(self.ctx, self.endpoints["pipe.intents"])
        self.commands = Puller(self.ctx, self.endpoints["pipe.commands"])
        self.orders = Pusher(self.ctx, self.endpoints["pipe.orders"], self.name, "order")
        self.add_puller(self.intents, self._on_intent)
        self.add_puller(self.commands, self._on_command)
        self.outbox: Outbox[wire.Order] = Outbox(
            self.orders,
            lambda: self.peer_up("router"),
            s.risk_wait_s,
            self._withdraw,
            lambda: "router unavailable",
            MAX_PENDING,
        )
        self.approved = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.every(0.02, self.outbox.flush)
        self.log.info("risk limits", **self.limits.as_dict(), states=self.book.states.as_dict())

    # ----------------------------------------------------------------- intents

    def _on_intent(self, topic: str, msg: wire.Msg) -> None:
        if not isinstance(msg, wire.OrderIntent):
            self.count_error(
                "not an intent on the intent pipe", got=type(msg).__name__, src=msg.src
            )
            return
        self.record_latency_ns(time.time_ns() - msg.ts)
        limits = self.limits.of(msg.strategy)
        result = check(msg, self.book, self.refdata, limits, self.clock.now(), time.time_ns())
        self.book.seen_intents.add(msg.intent_id)
        if isinstance(result, Rejection):
            self._reject(msg.strategy, msg.intent_id, result)
            return
        price, trigger = result
        order = wire.Order(
            order_id=f"{msg.strategy}.{msg.intent_id}",
            intent_id=msg.intent_id,
            strategy=msg.strategy,
            exchange=msg.exchange,
            symbol=msg.symbol,
            action=msg.action,
            quantity=msg.quantity,
            pricetype=msg.pricetype,
            product=msg.product,
            price=price,
            trigger_price=trigger,
            approved_by=self.name,
            origin_ns=msg.origin_ns,
            op=msg.op,
            ref_order_id=ref_order_id(msg),
        )
        if msg.op != "cancel":
            self.book.approvals[msg.strategy].append(time.time_ns())
        signed = msg.quantity if msg.action == "BUY" else -msg.quantity
        if msg.op == "place":
            self.book.on_approved(order.order_id, (msg.strategy, msg.exchange, msg.symbol), signed)
        elif msg.op == "modify":  # the working quantity becomes the new one
            self.book.on_approved(
                order.ref_order_id, (msg.strategy, msg.exchange, msg.symbol), signed
            )
        self.approved += 1
        if not self.outbox.put(order):
            self._withdraw(order, "risk queue to router full")

    def _withdraw(self, order: wire.Order, reason: str) -> None:
        if order.op == "place":
            self.book.working.pop(order.order_id, None)
        self._reject(order.strategy, order.intent_id, Rejection("router_unavailable", reason))

    def _reject(self, strategy: str, intent_id: str, r: Rejection) -> None:
        self.rejected[r.rule] += 1
        self.log.warning(
            "intent rejected", strategy=strategy, intent=intent_id, rule=r.rule, reason=r.reason
        )
        self.pub.publish(
            f"risk.event.{strategy}",
            wire.RiskEvent(
                strategy=strategy,
                kind="rejected",
                rule=r.rule,
                reason=r.reason,
                intent_id=intent_id,
                threshold=r.threshold,
                value=r.value,
                action="reject",
            ),
        )

    # ---------------------------------------------------------------- commands

    def _on_command(self, topic: str, msg: wire.Msg) -> None:
        if not isinstance(msg, wire.Command):
            self.count_error("not a command on the command pipe", got=type(msg).__name__)
            return
        if msg.command == "kill_switch":
            if msg.value not in ("on", "off"):
                self.count_error("bad kill switch value", value=msg.value)
                return
            target, state = "", ("halted" if msg.value == "on" else "active")
        else:
            target, state = msg.target, msg.value
        try:
            self.book.states.set(target, state)  # type: ignore[arg-type]
        except ValueError as exc:
            self.count_error("bad state command", reason=str(exc))
            return
        self.state_store.save(self.book.states, msg.reason)
        who = target if target not in ("", "*") else "*"
        self.log.warning(
            "trading state", target=who, state=state, reason=msg.reason, by=msg.issued_by
        )
        self.pub.publish(
            f"risk.event.{who}",
            wire.RiskEvent(
                strategy=who,
                kind="kill_switch" if msg.command == "kill_switch" else "state",
                rule="trading_state",
                reason=msg.reason or f"{who} {state}",
                action=state,
            ),
        )
        self.heartbeat()  # let watchers confirm the new state at once

    # -------------------------------------------------------------- exec events

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Tick):
            self.book.ltp[(msg.exchange, msg.symbol)] = msg.ltp
        elif isinstance(msg, wire.OrderUpdate):
            self.book.on_update(msg)
        elif isinstance(msg, wire.Fill):
            self.book.on_fill(msg)

    def extra_sent(self) -> int:
        return self.orders.sent

    def detail(self) -> dict[str, Any]:
        return {
            "kill_switch": self.book.states.kill_switch,
            "states": self.book.states.as_dict(),
            "limits": self.limits.as_dict(),
            "approved": self.approved,
            "rejected": dict(self.rejected),
            "pending_to_router": len(self.outbox),
        }

    def teardown(self) -> None:
        self.orders.close()
        self.intents.close()
        self.commands.close()
