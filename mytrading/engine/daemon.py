"""The strategy engine: runs every enabled strategy and carries its intents to risk.

Intents wait in a bounded queue while risk is unreachable and are refused (the strategy
gets a ``rejected`` update naming the reason) once they have waited ``MT_RISK_WAIT_S``:
nothing goes around risk. An intent is only sent once the engine has *received*
heartbeats from risk and the router, which proves that their order updates and fills
will reach it (no slow-joiner loss, and no ``sleep``).
"""

from __future__ import annotations

import collections
import time
from typing import Any

from mytrading import wire
from mytrading.bus import Pusher
from mytrading.daemon import Daemon
from mytrading.engine.loader import discover, select
from mytrading.engine.strategy import BaseStrategy
from mytrading.outbox import Outbox

MAX_PENDING = 1000


class EngineDaemon(Daemon):
    name = "engine"
    required_peers = ("feed", "risk", "router")
    sub_prefixes = ("exec.", "risk.event.")

    def setup(self) -> None:
        self.intents = Pusher(self.ctx, self.endpoints["pipe.intents"], self.name, "intent")
        self.outbox: Outbox[wire.OrderIntent] = Outbox(
            self.intents,
            self._peers_ready,
            self.settings.risk_wait_s,
            self._refuse,
            self._why_not_ready,
            MAX_PENDING,
        )
        self.refused = 0
        self.hook_errors: collections.Counter[str] = collections.Counter()
        self.by_topic: dict[str, list[BaseStrategy]] = collections.defaultdict(list)
        self.strategies: dict[str, BaseStrategy] = {}
        run_id = format(self.started_ns // 1_000_000, "x")  # unique per engine incarnation
        classes = select(discover(self.settings.strategies_dir), self.settings.strategies)
        for cls in classes:
            params = cls.Params(**self.settings.params_for(cls.name))
            strat = cls(
                params,
                self.refdata,
                self._submit,
                lambda prefix, s=cls.name: self._subscribe(s, prefix),
                self.clock.now,
                run_id,
            )
            self.strategies[cls.name] = strat
        for name, strat in self.strategies.items():
            self._call(name, strat.on_start)
        self.log.info("strategies loaded", strategies=list(self.strategies))
        self.every(0.02, self.outbox.flush)

    def _subscribe(self, strategy: str, prefix: str) -> None:
        topic = prefix.rstrip(" ")
        if not self.by_topic[topic]:
            self.sub.subscribe(prefix)
        self.by_topic[topic].append(self.strategies[strategy])

    # ------------------------------------------------------------------ intents

    def _submit(self, intent: wire.OrderIntent) -> None:
        if not self.outbox.put(intent):
            self._refuse(intent, "engine intent queue full")

    def _peers_ready(self) -> bool:
        return self.peer_up("risk") and self.peer_up("router")

    def _why_not_ready(self) -> str:
        return "risk daemon unavailable" if not self.peer_up("risk") else "router unavailable"

    def _refuse(self, intent: wire.OrderIntent, reason: str) -> None:
        self.refused += 1
        self.log.warning(
            "intent refused", strategy=intent.strategy, intent=intent.intent_id, reason=reason
        )
        self._order_update(
            wire.OrderUpdate(
                order_id="",
                intent_id=intent.intent_id,
                strategy=intent.strategy,
                exchange=intent.exchange,
                symbol=intent.symbol,
                action=intent.action,
                quantity=intent.quantity,
                status="rejected",
                reason=reason,
            )
        )

    # ----------------------------------------------------------------- dispatch

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Tick | wire.Bar):
            self.record_latency_ns(time.time_ns() - msg.ts)
            for strat in self.by_topic.get(topic, ()):
                strat._origin_ns = msg.ts
                hook = strat.on_tick if isinstance(msg, wire.Tick) else strat.on_bar
                self._call(strat.name, hook, msg)
                strat._origin_ns = 0
        elif isinstance(msg, wire.OrderUpdate):
            self._order_update(msg)
        elif isinstance(msg, wire.Fill):
            self._fill(msg)
        elif isinstance(msg, wire.RiskEvent) and msg.intent_id:
            strat = self.strategies.get(msg.strategy)
            oo = strat.state.open_orders.get(msg.intent_id) if strat else None
            if oo is not None:
                self._order_update(
                    wire.OrderUpdate(
                        order_id="",
                        intent_id=msg.intent_id,
                        strategy=msg.strategy,
                        exchange=oo.exchange,
                        symbol=oo.symbol,
                        action=oo.action,  # type: ignore[arg-type]
                        quantity=oo.quantity,
                        status="rejected",
                        reason=f"risk: {msg.reason}",
                    )
                )

    def _order_update(self, u: wire.OrderUpdate) -> None:
        strat = self.strategies.get(u.strategy)
        if strat is None:
            return
        oo = strat.state.open_orders.get(u.intent_id)
        if oo is not None:
            oo.order_id = u.order_id or oo.order_id
            oo.status = u.status
            oo.filled_qty = u.filled_qty
            if u.status in wire.TERMINAL_STATUSES:
                del strat.state.open_orders[u.intent_id]
        self._call(strat.name, strat.on_order_update, u)

    def _fill(self, f: wire.Fill) -> None:
        strat = self.strategies.get(f.strategy)
        if strat is None:
            return
        key = (f.exchange, f.symbol)
        signed = f.quantity if f.action == "BUY" else -f.quantity
        strat.state.positions[key] = strat.state.positions.get(key, 0) + signed
        strat.state.fills += 1
        self._call(strat.name, strat.on_fill, f)

    def _call(self, name: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            self.hook_errors[name] += 1
            self.count_error("strategy hook failed", strategy=name, hook=fn.__name__, exc_info=True)

    # ------------------------------------------------------------------- status

    def extra_sent(self) -> int:
        return self.intents.sent

    def detail(self) -> dict[str, Any]:
        return {
            "strategies": {
                n: {
                    "positions": {f"{k[0]}:{k[1]}": q for k, q in s.state.positions.items() if q},
                    "open_orders": len(s.state.open_orders),
                    "fills": s.state.fills,
                    "hook_errors": self.hook_errors[n],
                }
                for n, s in self.strategies.items()
            },
            "pending_intents": len(self.outbox),
            "refused": self.refused,
        }

    def teardown(self) -> None:
        for name, strat in self.strategies.items():
            self._call(name, strat.on_stop)
        self.intents.close()
