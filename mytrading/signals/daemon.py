"""The signals daemon: webhook alerts from TradingView, Amibroker and ChartInk become
intents to risk, exactly as a Python strategy's do.

Two threads. The HTTP thread (``signals/http.py``) checks each request (``webhook/gate.py``)
and answers at once; an accepted alert waits as a ``Job`` on a bounded queue, and a byte
on a socket pair wakes this loop. The loop turns jobs into intents against the strategy's
book (``webhook/book.py``: what it holds and has working), sends them to risk through the
same bounded, acknowledged outbox the engine uses (risk down: they wait, then are refused
with the reason), and writes each alert's outcome into the audit as the router reports.

Intraday strategies are squared off here at their square-off time: every open position
flattened through risk, then the router's own book is asked whether the strategy is flat
before the day is marked done in the database. A restart past the time finds the day not
done and does it then; it is never done twice in a day.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from datetime import date
from typing import Any, Protocol

import msgspec

from mytrading import domain, hosttime, venue
from mytrading.domain.accounts import Accounts
from mytrading.domain.refdata import IST, RefData, RefDataError
from mytrading.messaging import wire
from mytrading.messaging.catchup import (
    RESTORE_RETRY_S,
    SNAPSHOT_TRIES,
    FillSequence,
    UnreadWait,
    fetch_fills_since,
    fetch_snapshot,
)
from mytrading.messaging.interest import Declarer, entry
from mytrading.messaging.outbox import Outbox
from mytrading.process.base import Daemon, Peer
from mytrading.process.host import Host
from mytrading.settings import Settings
from mytrading.signals.http import WebhookServer
from mytrading.webhook.book import Key, StrategyBook
from mytrading.webhook.gate import Gate, Job
from mytrading.webhook.guards import Duplicates, RateLimit
from mytrading.webhook.intents import flatten, refusal, squareoff_due, to_intents
from mytrading.webhook.store import Record, WebhookStore

MAX_PENDING = 1000
SQUAREOFF_RETRY_S = 5.0
SQUAREOFF_CANCEL_AFTER_S = 10.0  # working orders still open then are cancelled
RETRY_HTTP_S = 5.0


class Door(Protocol):
    """Where webhook requests come in: ``WebhookServer`` (HTTP on its own thread) in a
    process; the simulation hands its alerts to the gate itself."""

    gate: Gate | None
    listening: bool
    error: str
    shed: Any

    def start(self) -> None: ...

    def stop(self) -> None: ...


class SignalsDaemon(Daemon):
    name = "signals"
    required_peers = ("risk", "router")
    sub_prefixes = ("exec.order.", "exec.fill.", "exec.position.", "risk.event.")

    def __init__(
        self,
        host: Host,
        settings: Settings,
        refdata: RefData,
        accounts: Accounts,
        door: Callable[[Callable[[], Gate]], Door] | None = None,
    ) -> None:
        """``door``: makes the door requests come in by from a gate's maker (an HTTP
        server on the configured port when not given)."""
        super().__init__(host, settings, refdata, accounts)
        self._door = door

    def setup(self) -> None:
        s = self.settings
        self.venue = venue.for_daemon(s, self.accounts)  # square-offs are this venue's
        self.store = WebhookStore(s.stores.webhook_db)
        self._last_records: list[Record] = []  # what the last beat shows, the store closed
        self.book = StrategyBook()
        # fills in the router's numbering, a missed one asked of it (as the engine and risk)
        self.fill_seq = FillSequence(lambda after: fetch_fills_since(self.ask_router(), after))
        self.jobs: queue.Queue[Job] = queue.Queue(maxsize=s.signals.queue)
        self.intents = self.host.pipe_out("pipe.intents", "intent")
        self.outbox: Outbox[wire.Intent] = Outbox(
            self.intents,
            lambda: self.peer_up("risk") and self.peer_up("router"),
            s.risk.wait_s,
            self._expired,
            lambda: "risk daemon unavailable" if not self.peer_up("risk") else "router unavailable",
            MAX_PENDING,
            key=lambda i: i.intent_id,
            retry_in=self.after,
        )
        self.run_id = format(self.started_ns // 1_000_000, "x")
        self._seq = 0
        self.counts = {"jobs": 0, "intents": 0, "refused": 0, "squareoffs": 0}
        self.outcomes: dict[str, tuple[int, str]] = {}  # intent id -> (audit id, symbol)
        self.results: dict[int, dict[str, str]] = {}  # audit id -> symbol/intent -> state
        self.notes: dict[int, list[str]] = {}  # audit id -> what was not sent, and why
        self.pnl: dict[Key, float] = {}  # the router's P&L per position (exec.position)
        self.squaring: dict[str, dict[str, Any]] = {}  # strategy -> this attempt's state
        self.squared: dict[str, str] = {}  # strategy -> day confirmed flat
        self._processing = 0  # the audit id of the alert being turned into intents
        self._wake = self.host.wakeup(self.guarded(self._drain_jobs))  # from the HTTP thread
        self.restored = False  # positions taken from the router (``_restore``)
        self.unread = UnreadWait(self.log.warning, self.count_error, "webhook alerts")
        self._restore()
        self.http = self._server()
        self.http.start()
        if not self.http.listening:
            self._http_failed()
        self.every(1.0, self._squareoff_tick, first_in=0.5)
        self.declarer = Declarer(lambda m: self.publish(wire.interest_topic(self.name), m))
        self.every(2.0, self._declare, first_in=0.2)

    # ------------------------------------------------------------------- startup

    def _python_names(self) -> frozenset[str]:
        """The Python strategies the engine runs (its heartbeat names them): a webhook
        strategy of the same name would share their book. (`webhook new` and `edit`
        refuse every Python strategy's name, running or not.)"""
        eng = self.peers["engine"].status
        return frozenset(eng.detail.get("strategies", {})) if eng is not None else frozenset()

    def _restore(self) -> None:
        """The webhook strategies' positions from the router before any alert is taken
        (alerts that come meanwhile wait in the queue): asked again every
        ``RESTORE_RETRY_S`` while the router does not answer (``SNAPSHOT_TRIES`` times,
        then flat, an ALERT) or has not read an account's position book (as long as it
        takes: the engine's ``_begin`` says why)."""
        snap = fetch_snapshot(self.ask_router())
        if not self.unread.settled(snap):
            self.after(RESTORE_RETRY_S, self._restore)
            return
        self.restored = True
        self._drain_jobs()
        if snap is None:
            self.count_error(
                f"ALERT: no position snapshot from the router after {SNAPSHOT_TRIES} tries: "
                "webhook strategies start flat; the reconciler reports what they hold"
            )
            return
        self.book.restore(snap.positions, snap.working)
        self.fill_seq.start_at(snap.last_fill_no)
        self.log.info(
            "positions restored", positions=len(snap.positions), working=len(snap.working)
        )

    def _server(self) -> Door:
        s = self.settings

        def make_gate() -> Gate:
            return Gate(
                WebhookStore(s.stores.webhook_db),
                self.clock.now,
                self._submit,
                self._python_names,
                RateLimit(s.signals.rate_per_min, 60.0),
                Duplicates(s.signals.dup_window_s),
                RateLimit(s.signals.unknown_per_min, 60.0),
                s.retention.webhook_audit_days,
            )

        if self._door is not None:
            return self._door(make_gate)
        return WebhookServer(
            s.signals.host,
            s.signals.port,
            make_gate,
            s.signals.proxies(),
            s.http_names(s.signals.host),
            s.http.shed_limits(),
        )

    def _http_failed(self) -> None:
        """The port is taken (or the host wrong): say so, stay up, try again."""
        self.count_error(
            "webhook server not listening; retrying",
            host=self.settings.signals.host,
            port=self.settings.signals.port,
            why=self.http.error,
        )
        self.after(RETRY_HTTP_S, self._retry_http)

    def _retry_http(self) -> None:
        error = self.http.error
        self.http = self._server()
        self.http.start()
        if self.http.listening:
            self.log.info("webhook server listening", after=error)
        else:
            self._http_failed()

    # ---------------------------------------------------------------------- jobs

    def _submit(self, job: Job) -> bool:
        """On the HTTP thread: queue the job and wake the loop; False when the queue is full."""
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            return False
        self._wake()
        return True

    def _drain_jobs(self) -> None:
        """Take the queued jobs, a bounded batch at a time so timers and the bus still run;
        what a batch leaves is taken on the next turn of the loop (its wake-ups were read).
        Nothing before the positions are restored (they are taken then)."""
        if not self.restored:
            return
        for _ in range(1000):
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            try:
                self._process(job)
            except Exception as exc:
                self.count_error("alert not processed", audit=job.audit_id, exc_info=True)
                self._outcome_note(job.audit_id, f"not processed: {type(exc).__name__}")
            finally:
                self._processing = 0
        self.after(0, self._drain_jobs)  # more than a batch waiting

    def _next_id(self) -> str:
        self._seq += 1
        return f"wh{self.run_id}-{self._seq}"

    def _process(self, job: Job) -> None:
        self.counts["jobs"] += 1
        self.record_latency_ns(hosttime.time_ns() - job.received_ns)  # request in -> taken here
        now = self.clock.now()
        sent: list[str] = []
        notes: list[str] = []
        self._processing = job.audit_id  # its outcome is being written: keep it whole
        for instr in job.instructions:
            key: Key = (job.strategy, instr.exchange, instr.symbol, instr.product)
            try:
                lot = self.refdata.instrument(instr.exchange, instr.symbol).lot_size
            except RefDataError as exc:
                notes.append(f"{instr.symbol}: refused: {exc}")
                continue
            intents, opens = to_intents(
                job.strategy,
                instr,
                lot,
                self.book.position(key),
                self.book.working_qty(key),
                self._next_id,
                job.received_ns,
            )
            why = refusal(job.fields, opens, now)
            if why:
                notes.append(f"{instr.symbol}: refused: {why}")
            elif not intents:
                notes.append(f"{instr.symbol}: already at the target ({instr.lots} lots)")
            for intent in [] if why else intents:
                self._send(intent, job.audit_id)
                sent.append(intent.intent_id)
        self._processing = 0
        self.notes[job.audit_id] = notes
        self.results.setdefault(job.audit_id, {})
        self._write_outcome(job.audit_id, sent)
        if not any(a == job.audit_id for a, _ in self.outcomes.values()):  # all final now
            self.notes.pop(job.audit_id, None)
            self.results.pop(job.audit_id, None)
        if sent or notes:
            self.log.info(
                "alert", strategy=job.strategy, audit=job.audit_id, intents=sent, notes=notes
            )

    def _send(self, intent: wire.Intent, audit_id: int) -> None:
        if not intent.decided_ns:  # decided now: risk refuses it if it reaches it late
            intent = msgspec.structs.replace(intent, decided_ns=self.clock.now_ns())
        if self.fill_seq.last:  # risk judges it on no fewer fills than its book holds
            intent = msgspec.structs.replace(intent, fills_seen=self.fill_seq.last)
        self.counts["intents"] += 1
        self.outcomes[intent.intent_id] = (audit_id, intent.symbol)
        self.results.setdefault(audit_id, {})[intent.intent_id] = f"{intent.symbol} sent to risk"
        self.book.sent(intent)
        if not self.outbox.put(intent):
            self._expired(intent, "signals intent queue full")

    def _expired(self, intent: wire.Intent, reason: str) -> None:
        """Risk never took it (down past the wait, or our queue full): refused, not lost."""
        self.counts["refused"] += 1
        self.book.refused(intent.intent_id)
        self.log.warning(
            "intent refused", strategy=intent.strategy, intent=intent.intent_id, reason=reason
        )
        self._result(intent.intent_id, f"refused: {reason}", final=True)

    # ------------------------------------------------------------------ outcomes

    def _result(self, intent_id: str, state: str, final: bool) -> None:
        entry = self.outcomes.get(intent_id)
        if entry is None:
            return
        audit_id, symbol = entry
        self.results.setdefault(audit_id, {})[intent_id] = f"{symbol} {state}"
        if final:
            del self.outcomes[intent_id]
        self._write_outcome(audit_id)
        if audit_id != self._processing and not any(
            a == audit_id for a, _ in self.outcomes.values()
        ):
            self.results.pop(audit_id, None)
            self.notes.pop(audit_id, None)

    def _write_outcome(self, audit_id: int, intents: list[str] | None = None) -> None:
        parts = [*self.results.get(audit_id, {}).values(), *self.notes.get(audit_id, [])]
        try:
            self.store.set_outcome(audit_id, "; ".join(parts), intents)
        except Exception as exc:  # the database is busy or failing: say so
            self.count_error("audit outcome not written", audit=audit_id, why=str(exc))

    def _outcome_note(self, audit_id: int, note: str) -> None:
        self.notes.setdefault(audit_id, []).append(note)
        self._write_outcome(audit_id)

    # ----------------------------------------------------------------- dispatch

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if not self.restored:  # the snapshot taken at the end holds what goes by
            return
        if isinstance(msg, wire.OrderUpdate):
            self.outbox.ack(msg.intent_id)
            done = self.book.on_update(msg) or (  # a cancel is not working: final when it is
                msg.intent_id not in self.book.working and msg.status in wire.TERMINAL_STATUSES
            )
            if msg.intent_id in self.outcomes:
                state = (
                    (f"part {msg.part}/{msg.parts} " if msg.parts > 1 else "")
                    + msg.status
                    + (f" {msg.filled_qty}@{msg.avg_price:g}" if msg.filled_qty else "")
                    + (f": {msg.reason}" if msg.reason and msg.status != "complete" else "")
                )
                self._result(msg.intent_id, state, done)
        elif isinstance(msg, wire.Fill):
            for f in self.fills_in_order(self.fill_seq, msg):
                self.book.on_fill(f)
        elif isinstance(msg, wire.PositionSnapshot):
            key = (msg.strategy, msg.exchange, msg.symbol, msg.product)
            self.pnl[key] = msg.realized_pnl + msg.unrealized_pnl
        elif isinstance(msg, wire.RiskEvent) and msg.intent_id:
            self.outbox.ack(msg.intent_id)
            if msg.kind == "rejected" and msg.intent_id in self.outcomes:
                self.book.refused(msg.intent_id)
                self._result(msg.intent_id, f"rejected by risk ({msg.rule}): {msg.reason}", True)
            elif msg.kind == "part_rejected" and msg.intent_id in self.outcomes:
                self._result(msg.intent_id, f"reduced by risk ({msg.rule}): {msg.reason}", False)

    def on_peer_status(self, st: wire.Status) -> None:
        if not self.restored:
            return
        for f in self.fills_caught_up(self.fill_seq, st):
            self.book.on_fill(f)

    def on_peer_restart(self, peer: Peer) -> None:
        """As the engine: what a killed risk daemon never answered goes again (risk and the
        router drop what they already have, so nothing is acted on twice)."""
        if peer.name == "risk":
            n = self.outbox.redeliver()
            if n:
                self.log.warning("intents sent again after a risk restart", intents=n)

    # ---------------------------------------------------------------- square-off

    def _declare(self) -> None:
        """The symbols active webhook strategies may trade: risk prices an alert's order
        from their quotes (an equity with none is refused), so the feed must have them."""
        wants = []
        for rec in self._records():
            if rec.fields.enabled:
                try:
                    maps = self.store.symbols_of(rec)
                except Exception as exc:  # a locked or broken file: next time
                    self.count_error("webhook mappings unreadable", why=str(exc))
                    return
                wants += [entry(m.exchange, m.symbol) for m in maps.values()]
        self.declarer.declare(wants)

    def _records(self) -> list[Record]:
        if self.state == "stopping":  # the last beat, after teardown closed the store
            return self._last_records
        try:
            self._last_records = self.store.all()
        except Exception as exc:  # a locked or broken file: next tick
            self.count_error("webhook strategies unreadable", why=str(exc))
            return []
        return self._last_records

    def _squareoff_tick(self) -> None:
        if not self.restored:
            return
        now = self.clock.now()
        today = now.astimezone(IST).date()
        python = self._python_names()
        for rec in self._records():
            name = rec.name
            if not rec.fields.intraday or self.squared.get(name) == today.isoformat():
                continue
            if name in python:  # its book is a Python strategy's too: not ours to close
                if self.squared.get(name) != "clash":
                    self.squared[name] = "clash"
                    self.count_error(
                        "ALERT: no square-off: a Python strategy has this name", strategy=name
                    )
                continue
            if squareoff_due(rec.fields, now, self.store.squared_off_on(name, self.venue.id)):
                self._square(name, today)
            elif name in self.squared:
                del self.squared[name]

    def _square(self, name: str, today: date) -> None:
        """One step of the square-off: wait for working orders (cancel them if they rest),
        flatten what is held, and once nothing is, confirm with the router's book."""
        st = self.squaring.setdefault(name, {"since": hosttime.monotonic(), "next": 0.0, "n": 0})
        mono = hosttime.monotonic()
        if mono < st["next"]:
            return
        working = self.book.working_of(name)
        if working:
            if mono - st["since"] > SQUAREOFF_CANCEL_AFTER_S and not st.get("cancelled"):
                st["cancelled"] = True
                for intent_id in working:
                    self._cancel(name, intent_id)
            return
        held = self.book.positions_of(name)
        if held:
            st["n"] += 1
            st["next"] = mono + SQUAREOFF_RETRY_S
            if st["n"] > 1:
                self.count_error(
                    "ALERT: square-off not flat yet; trying again",
                    strategy=name,
                    attempt=st["n"],
                    held={f"{k[1]}:{k[2]}": q for k, q in held.items()},
                )
            positions = {(k[1], k[2], k[3]): q for k, q in held.items()}
            flats: list[wire.Intent] = [*flatten(name, positions, self._next_id)]
            audit_id = self._squareoff_audit(name, flats)
            for intent in flats:
                self._send(intent, audit_id)
            self._write_outcome(audit_id, [i.intent_id for i in flats])
            return
        snap = fetch_snapshot(self.ask_router())
        if snap is None:
            st["next"] = mono + SQUAREOFF_RETRY_S
            self.log.warning(
                "square-off: the router's book unreadable; asking again", strategy=name
            )
            return
        still = [p for p in snap.positions if p.strategy == name and p.quantity]
        if still:  # our book missed something: take the router's and flatten that
            # the snapshot holds this strategy's fills up to its number (other strategies'
            # fills below it may still be on the bus: they are booked as they come)
            self.book.restore(still, [], upto=snap.last_fill_no)
            return
        self.store.mark_squared_off(name, today, self.venue.id)
        self.squared[name] = today.isoformat()
        self.squaring.pop(name, None)
        self.counts["squareoffs"] += 1
        self.log.info(
            "squared off, confirmed flat by the router's book", strategy=name, day=today.isoformat()
        )

    def _squareoff_audit(self, name: str, flats: list[wire.Intent]) -> int:
        return self.store.log_request(
            name, "", "square-off", 200, f"daily square-off: {len(flats)} position(s) to close"
        )

    def _cancel(self, name: str, intent_id: str) -> None:
        w = self.book.working[intent_id]
        self._send(
            wire.CancelIntent(
                intent_id=self._next_id(),
                strategy=name,
                exchange=w.key[1],
                symbol=w.key[2],
                action=domain.action(w.action),
                quantity=w.quantity,
                product=domain.product(w.key[3]),
                ref_intent_id=intent_id,
            ),
            self.store.log_request(name, "", "square-off", 200, f"cancel {intent_id}"),
        )

    # -------------------------------------------------------------------- status

    def _update_state(self) -> None:
        """Not listening (the port taken) is degraded, like a required peer down."""
        super()._update_state()
        http = getattr(self, "http", None)
        if self.state == "running" and http is not None and not http.listening:
            self.state = "degraded"

    def extra_sent(self) -> int:
        return self.intents.sent

    def detail(self) -> dict[str, Any]:
        strategies: dict[str, Any] = {}
        gate = self.http.gate
        for rec in self._records():
            n = rec.name
            strategies[n] = {
                "kind": "webhook",
                "enabled": rec.fields.enabled,
                "fills": self.book.fills_by.get(n, 0),
                "open_orders": len(self.book.working_of(n)),
                "positions": len(self.book.positions_of(n)),
                "held": {":".join(k[1:]): q for k, q in self.book.positions_of(n).items()},
                "pnl": round(sum(v for k, v in self.pnl.items() if k[0] == n), 2),
                "squared_off": self.squared.get(n, "").replace("clash", ""),
                "name_clash": self.squared.get(n) == "clash",
            }
        return {
            "restored": self.restored,  # False: alerts wait for the router (``_restore``)
            "http": (
                f"listening {self.settings.signals.host}:{self.settings.signals.port}"
                if self.http.listening
                else f"DOWN: {self.http.error}"
            ),
            "strategies": strategies,
            # a copy first: the HTTP thread adds to it (dict.copy holds the GIL throughout)
            "answered": {str(k): v for k, v in (gate.answered.copy() if gate else {}).items()},
            "queued_jobs": self.jobs.qsize(),
            "pending_intents": len(self.outbox),
            "fills_recovered": self.fill_seq.recovered,
            "http_connections": self.http.shed.detail(),  # open, and slow clients shed
            **self.counts,
        }

    def teardown(self) -> None:
        self.http.stop()
        self.store.close()
