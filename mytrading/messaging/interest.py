"""What the feed subscribes: the instruments the other daemons declare, not the universe.

Each daemon that reads quotes says what it needs as an ``Interest`` (the whole set, each
instrument with a mode: ``ltp``, ``quote`` or ``depth``): the engine, what its strategies
subscribed and hold; risk, every position and working order it counts (webhook
strategies' included); signals, the symbols its webhook strategies may trade. ``Declarer``
sends a daemon's set when it changes and every ``EVERY_S`` seconds; ``Interests`` keeps,
in the feed, each daemon's latest set and the union of them at the highest mode asked.

A daemon that stops declaring (it died) keeps its set for ``TTL_S``, time for it to come
back; the union is saved on every change and read at start, so a restarted feed
subscribes again at once instead of waiting for the next declarations.

``MT_FEED_SUBSCRIBE=universe`` subscribes the whole quoted universe as well (the issue-6
behaviour: every symbol recorded, whoever asks); ``declared`` (the default) subscribes
only the indices' spots beside what is declared.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import structlog

from mytrading import hosttime
from mytrading.domain.ids import Instrument
from mytrading.domain.refdata import RefData, RefDataError
from mytrading.messaging import wire

log = structlog.get_logger("feed")

MODES = {"ltp": 1, "quote": 2, "depth": 3}
NAMES = {v: k for k, v in MODES.items()}
EVERY_S = 2.0
TTL_S = 30.0

Key = tuple[str, str]  # (exchange, symbol)


def entry(exchange: str, symbol: str, mode: int = 2) -> str:
    return f"{exchange}:{symbol}:{NAMES[mode]}"


class Interests:
    def __init__(
        self,
        refdata: RefData,
        base: dict[Key, int],
        path: Path | None = None,
        ttl_s: float = TTL_S,
    ) -> None:
        self.refdata = refdata
        self.base = dict(base)
        self.path = path
        self.ttl_s = ttl_s
        self.by_src: dict[str, tuple[float, dict[Key, int]]] = {}
        self.refused = 0  # entries that were not instruments, or not well formed

    def update(self, src: str, wants: list[str], now: float | None = None) -> bool:
        """A daemon's new set; True if the union changed."""
        got: dict[Key, int] = {}
        for w in wants:
            head, _, mode_name = w.rpartition(":")
            mode = MODES.get(mode_name)
            try:
                inst = Instrument.parse(head)
            except ValueError:
                mode = None
            if mode is None:
                self.refused += 1
                log.warning("interest entry refused: not EXCHANGE:SYMBOL:MODE", src=src, got=w)
                continue
            key = (inst.exchange, inst.symbol)
            try:
                self.refdata.instrument(*key)
            except RefDataError as exc:
                self.refused += 1
                log.warning("interest entry refused", src=src, got=w, reason=str(exc))
                continue
            got[key] = max(mode, got.get(key, 0))
        before = self.wanted()
        self.by_src[src] = (hosttime.monotonic() if now is None else now, got)
        return self._changed(before)

    def expire(self, now: float | None = None) -> bool:
        """Drop the sets of daemons silent for ``ttl_s``; True if the union changed."""
        now = hosttime.monotonic() if now is None else now
        stale = [s for s, (t, _) in self.by_src.items() if now - t > self.ttl_s]
        if not stale:
            return False
        before = self.wanted()
        for s in stale:
            log.info("interest lapsed: its daemon stopped declaring", src=s)
            del self.by_src[s]
        return self._changed(before)

    def wanted(self) -> dict[Key, int]:
        out = dict(self.base)
        for _, got in self.by_src.values():
            for key, mode in got.items():
                if mode > out.get(key, 0):
                    out[key] = mode
        return out

    def _changed(self, before: dict[Key, int]) -> bool:
        if self.wanted() == before:
            return False
        self.save()
        return True

    # ------------------------------------------------------------- persistence

    def save(self) -> None:
        if self.path is None:
            return
        body = {s: [entry(*k, m) for k, m in got.items()] for s, (_, got) in self.by_src.items()}
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(body))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("interest not saved: a restart waits for declarations", reason=str(exc))

    def load(self) -> int:
        """The sets saved by the feed that ran before; returns how many instruments."""
        if self.path is None or not self.path.exists():
            return 0
        try:
            body = json.loads(self.path.read_text())
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as exc:
            log.error("saved interest unreadable: waiting for declarations", reason=str(exc))
            return 0
        for src, wants in body.items():
            if isinstance(wants, list):
                self.update(str(src), [str(w) for w in wants])
        return len(self.wanted()) - len(self.base)


class Declarer:
    """A daemon's side: ``declare`` with the current set whenever it may have changed
    (sent only if it did), and ``tick`` every loop turn (sends every ``EVERY_S``)."""

    def __init__(self, send: Callable[[wire.Interest], None], every_s: float = EVERY_S) -> None:
        self._send = send
        self.every_s = every_s
        self._last: list[str] | None = None
        self._at = 0.0

    def declare(self, wants: list[str], force: bool = False) -> None:
        wants = sorted(set(wants))
        now = hosttime.monotonic()
        if force or wants != self._last or now - self._at >= self.every_s:
            self._last, self._at = wants, now
            self._send(wire.Interest(wants=wants))
