"""What is said when: from the rules' findings to alerts in the store.

A condition that starts is said once (``fire``); while it stays on it is said again every
``repeat_s`` (``repeat``); when it clears, its ``recovery`` is said once (``recover``).
An event is said once. Nothing about one rule and subject is said within ``min_gap_s`` of
the last message about it: a condition that flaps is said once per gap, and its recovery
only if its start was said. The conditions on, and when each rule and subject was last
said, live in the store: a restarted monitor carries on where it was, says again nothing
it said, and says the recovery of a condition that cleared while it was down.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from mytrading.monitor.config import AlertConfig
from mytrading.monitor.rules import Finding
from mytrading.monitor.store import Active, AlertStore


@dataclass(frozen=True)
class Said:
    rule: str
    key: str
    kind: str
    text: str


class Alerter:
    def __init__(self, cfg: AlertConfig, store: AlertStore, channels: list[str]) -> None:
        self.cfg = cfg
        self.store = store
        self.channels = channels
        self.active: dict[tuple[str, str], Active] = store.load_active()
        self.suppressed: collections.Counter[str] = collections.Counter()  # by rule

    def step(self, findings: list[Finding], wall: float) -> list[Said]:
        """Queue what these findings call for; returns what was queued."""
        out: list[Said] = []
        on = {(f.rule, f.key): f for f in findings if not f.event}
        changed = False
        for f in findings:
            if f.event:
                if self._gap_ok(f.rule, f.key, wall):
                    out.append(self._say(f.rule, f.key, "fire", f.text, wall))
                else:
                    self.suppressed[f.rule] += 1
        for k, f in on.items():
            rule = self.cfg.rule(f.rule)
            a = self.active.get(k)
            if a is None:
                a = self.active[k] = Active(wall, 0.0, False, f.text)
                changed = True
            if not a.said:
                if self._gap_ok(f.rule, f.key, wall):
                    out.append(self._say(f.rule, f.key, "fire", f.text, wall))
                    a.said, a.last_said, a.text, changed = True, wall, f.text, True
                else:
                    self.suppressed[f.rule] += 1
            elif rule.repeat_s and wall - a.last_said >= rule.repeat_s:
                out.append(self._say(f.rule, f.key, "repeat", f"still: {f.text}", wall))
                a.last_said, a.text, changed = wall, f.text, True
        for k in [k for k in self.active if k not in on]:
            a = self.active.pop(k)
            changed = True
            if a.said:
                rule = self.cfg.rule(k[0])
                text = f"{k[1]}: {rule.recovery}" if k[1] != "*" else rule.recovery
                out.append(self._say(k[0], k[1], "recover", text, wall))
        if changed:
            self.store.save_active(self.active)
        return out

    def _gap_ok(self, rule: str, key: str, wall: float) -> bool:
        gap = self.cfg.rule(rule).min_gap_s
        return gap <= 0 or wall - self.store.last_message(rule, key) >= gap

    def _say(self, rule: str, key: str, kind: str, text: str, wall: float) -> Said:
        sev = self.cfg.rule(rule).severity if kind != "recover" else "info"
        label = {"fire": sev.upper(), "repeat": sev.upper(), "recover": "RECOVERED"}[kind]
        message = f"[{label}] mytrading {rule}: {text}"
        self.store.add(wall, rule, key, sev, kind, message, self.channels)
        return Said(rule, key, kind, message)
