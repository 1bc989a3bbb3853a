"""One webhook request, from its bytes to an answer: the checks the signals server runs
before anything is queued, apart from HTTP so they are tested alone.

In order: size, the webhook id (one indexed lookup of its hash), the rate limit (per
webhook id for a known one; per client for unknown ids, so a flood of guessed ids from a
shared proxy address cannot starve a real strategy's alerts), a name clash with a Python
strategy, enabled, the body, the passphrase, the symbol mappings and the mode's rules, the
time window where the alert alone decides it, then duplicates. What passes becomes a
``Job`` on a bounded queue; a full queue is a 503 and the alert is not remembered as seen,
so a retry can still trade.

Every request a known strategy's id made is written to the audit with its answer; the
refusals a flood is made of (unknown ids, rate limits, oversized bodies) are counted per
minute, client and reason instead (``FLOODS``), so 3,000 guessed ids add a few rows, not
3,000. The audit is pruned by age (``audit_days``). The full webhook id is never stored
(its first six characters identify it to people).
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mytrading import hosttime
from mytrading.domain.refdata import IST
from mytrading.webhook.alerts import AlertError, Instruction, Parsed, parse, plan
from mytrading.webhook.guards import Duplicates, RateLimit
from mytrading.webhook.intents import refusal
from mytrading.webhook.model import StrategyFields
from mytrading.webhook.store import Record, WebhookStore

MAX_BODY = 16 * 1024
FLOODS = (404, 413, 429)  # counted per minute, not written a row each
FLUSH_S = 1.0  # counts reach the database at most this late
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class Job:
    """An accepted alert, waiting for the daemon's loop to turn it into intents."""

    audit_id: int
    fields: StrategyFields
    instructions: tuple[Instruction, ...]
    received_ns: int  # wall clock, for the request-to-order latency

    @property
    def strategy(self) -> str:
        return self.fields.name


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    job: Job | None = None
    ignored: tuple[str, ...] = ()  # the body's fields we do not know, for the audit


def _error(status: int, message: str, **extra: Any) -> Answer:
    return Answer(status, {"status": "error", "message": message, **extra})


class Gate:
    def __init__(
        self,
        store: WebhookStore,
        market_now: Callable[[], datetime],
        submit: Callable[[Job], bool],
        reserved: Callable[[], frozenset[str]] = frozenset,
        rate: RateLimit | None = None,
        dups: Duplicates | None = None,
        unknown_rate: RateLimit | None = None,
        audit_days: int = 90,
    ) -> None:
        self.store = store
        self.market_now = market_now
        self.submit = submit
        self.reserved = reserved  # the names of Python strategies now: a webhook may not use one
        self.rate = rate or RateLimit()  # per webhook id (its strategy)
        self.unknown_rate = unknown_rate or RateLimit(30, 60.0)  # unknown ids, per client
        self.dups = dups or Duplicates()
        self.audit_days = audit_days
        self.answered: dict[int, int] = {}  # status -> count, for the heartbeat
        self._floods: collections.Counter[tuple[str, int, str, str, str]] = collections.Counter()
        self._flushed = hosttime.monotonic()
        self._pruned = -PRUNE_EVERY_S
        self.pruned = 0

    def handle(self, webhook_id: str, body: bytes, client: str, size: int = -1) -> Answer:
        """The answer to one request; ``size`` is the body's length where it was too long
        to be read (default: ``len(body)``)."""
        received_ns = hosttime.time_ns()
        hint = webhook_id[:6]
        strategy: str | None = None
        audit_id = 0
        try:
            answer = self._check(webhook_id, body, client, max(size, len(body)))
            strategy = answer.job.strategy if answer.job else answer.body.pop("_strategy", None)
            if answer.status in FLOODS:
                minute = hosttime.now(IST).strftime("%Y-%m-%dT%H:%M")
                why = _reason(answer).split(" (")[0]  # "(16385)": one count for every size
                self._floods[(minute, answer.status, strategy or "", client, why)] += 1
                self.housekeep()
                self.answered[answer.status] = self.answered.get(answer.status, 0) + 1
                return answer
            audit_id = self.store.log_request(
                strategy,
                hint,
                client,
                answer.status,
                _reason(answer),
                body,
                ignored=answer.ignored,
            )
            if answer.job is not None:
                job = Job(audit_id, answer.job.fields, answer.job.instructions, received_ns)
                if not self.submit(job):
                    self.dups.forget(_stream(job.strategy, job.instructions))
                    answer = _error(503, "the signals queue is full: retry shortly")
                    self.store.set_status(audit_id, 503, answer.body["message"])
                else:
                    answer = Answer(200, {**answer.body, "request_id": audit_id}, job)
        except Exception as exc:  # a request must never take the server down
            answer = _error(500, f"internal error: {type(exc).__name__}")
            if not audit_id:
                with contextlib.suppress(Exception):  # the database itself is failing
                    self.store.log_request(strategy, hint, client, 500, str(exc)[:200], body)
        self.answered[answer.status] = self.answered.get(answer.status, 0) + 1
        self.housekeep()
        return answer

    def housekeep(self, force: bool = False) -> None:
        """Counted refusals to the database (about once a second), the audit pruned (hourly)."""
        now = hosttime.monotonic()
        if self._floods and (force or now - self._flushed >= FLUSH_S):
            counts, self._floods = dict(self._floods), collections.Counter()
            self._flushed = now
            with contextlib.suppress(Exception):  # counted next time if the file is busy
                self.store.count_refused(counts)
                counts = {}
            self._floods.update(counts)
        if now - self._pruned >= PRUNE_EVERY_S:
            self._pruned = now
            with contextlib.suppress(Exception):
                self.pruned += self.store.prune(self.audit_days)

    def _check(self, webhook_id: str, body: bytes, client: str, size: int) -> Answer:
        if size > MAX_BODY:
            return _error(413, f"the body is over {MAX_BODY} bytes ({size})")
        rec = self.store.by_webhook_id(webhook_id)
        now = hosttime.monotonic()
        if rec is None:
            wait = self.unknown_rate.check(client, now)
            if wait:
                return _limited(wait)
            return _error(404, "unknown webhook id")
        named = {"_strategy": rec.name}
        wait = self.rate.check(rec.name, now)
        if wait:
            return _limited(wait, **named)
        if rec.name in self.reserved():
            return _error(
                409,
                f"{rec.name} is also the name of a Python strategy: rename one "
                "(main.py webhook edit --name)",
                **named,
            )
        if not rec.fields.enabled:
            return _error(403, f"strategy {rec.name} is disabled", **named)
        try:
            parsed = parse(body)
        except AlertError as exc:
            return _error(400, str(exc), **named)
        answer = self._accept(rec, parsed, body)
        return replace(answer, ignored=parsed.ignored)

    def _accept(self, rec: Record, parsed: Parsed, body: bytes) -> Answer:
        """A body that parsed: its passphrase, symbols, plan and timing."""
        named = {"_strategy": rec.name}
        alerts = parsed.alerts
        if not self.store.passphrase_ok(rec, parsed.passphrase):
            return _error(401, "wrong or missing passphrase", **named)
        maps = self.store.symbols_of(rec)
        instructions = []
        for a in alerts:
            m = maps.get(a.external)
            if m is None:
                return _error(
                    400,
                    f"{a.external} is not mapped for {rec.name} "
                    f"(main.py webhook symbols add {rec.name} {a.external} ...)",
                    **named,
                )
            try:
                instructions.append(plan(a, rec.fields.mode, m))
            except AlertError as exc:
                return _error(400, str(exc), **named)
        # Certain from the alert alone: outside start..square-off, or an order that opens
        # after the entry window. A target's direction depends on the position: the loop.
        why = refusal(rec.fields, instructions[0].kind == "order", self.market_now())
        if why:
            return _error(400, why, **named)
        stream = _stream(rec.name, instructions)
        if self.dups.seen(Duplicates.key(rec.name, body), hosttime.monotonic(), stream):
            return Answer(
                200,
                {
                    "status": "success",
                    "message": f"duplicate of an alert received within "
                    f"{self.dups.window_s:g} s: ignored",
                    "_strategy": rec.name,
                },
            )
        job = Job(0, rec.fields, tuple(instructions), 0)
        return Answer(
            200, {"status": "success", "message": f"Order queued successfully for {rec.name}"}, job
        )


def _limited(wait: float, **extra: Any) -> Answer:
    return _error(
        429,
        "Rate limit exceeded. Please slow down your requests.",
        retry_after=RateLimit.retry_after(wait),
        **extra,
    )


def _reason(a: Answer) -> str:
    return str(a.body.get("message", ""))


def _stream(strategy: str, instructions: tuple[Instruction, ...] | list[Instruction]) -> str:
    return strategy + "|" + ",".join(sorted({f"{i.exchange}:{i.symbol}" for i in instructions}))
