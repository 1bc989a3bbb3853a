"""The signals server's checks on one request, without HTTP: every refusal with its status
and reason, in the audit without the full webhook id; a full queue refused with 503 and
the alert's retry still taken; the time window decided where the alert alone decides it;
fuzzed requests answered, never raised, never queued."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mytrading.refdata import IST
from mytrading.webhook.gate import MAX_BODY, Gate, Job
from mytrading.webhook.guards import Duplicates, RateLimit
from mytrading.webhook.model import StrategyFields, SymbolMap
from mytrading.webhook.store import WebhookStore
from tests.fuzz import alert_bodies

FUT = "NIFTY23NOV26FUT"
BUY = json.dumps({"symbol": "NIFTY1!", "action": "buy", "contracts": "2"}).encode()


class Rig:
    def __init__(self, tmp_path: Path, capacity: int = 100) -> None:
        self.store = WebhookStore(tmp_path / "w.sqlite")
        self.jobs: list[Job] = []
        self.capacity = capacity
        self.now = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
        self.gate = Gate(
            self.store,
            lambda: self.now,
            self.submit,
            reserved=lambda: frozenset({"sma_crossover"}),
            rate=RateLimit(5, 60.0),
            dups=Duplicates(60.0),
        )
        self.ids: dict[str, str] = {}
        for name, kw in {
            "tv": {},
            "off": {"enabled": False},
            "sma_crossover": {},
            "both": {"mode": "BOTH"},
        }.items():
            _, self.ids[name] = self.store.create(StrategyFields(name=name, **kw))
            self.store.add_symbol(name, SymbolMap(external="NIFTY1!", exchange="NFO", symbol=FUT))
        _, self.ids["pw"] = self.store.create(StrategyFields(name="pw"), passphrase="s3cret")
        self.store.add_symbol("pw", SymbolMap(external="NIFTY1!", exchange="NFO", symbol=FUT))

    def submit(self, job: Job) -> bool:
        if len(self.jobs) >= self.capacity:
            return False
        self.jobs.append(job)
        return True

    def send(self, name: str, body: bytes, client: str = "1.2.3.4") -> tuple[int, dict]:
        a = self.gate.handle(self.ids.get(name, name), body, client)
        return a.status, a.body


def test_each_refusal_has_its_status_and_reason(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    cases = [
        ("tv", b"x" * (MAX_BODY + 1), 413, "over 16384 bytes"),
        ("nosuchid_" + "x" * 13, BUY, 404, "unknown webhook id"),
        ("sma_crossover", BUY, 409, "also the name of a Python strategy"),
        ("off", BUY, 403, "off is disabled"),
        ("tv", b"{not json", 400, "not JSON"),
        ("tv", b'{"symbol":"NIFTY1!","action":"buy","colour":"red"}', 400, "unknown field"),
        ("tv", b'{"symbol":"BANK","action":"buy"}', 400, "BANK is not mapped for tv"),
        ("both", b'{"symbol":"NIFTY1!","action":"buy"}', 400, "position_size is required"),
        ("both", b'{"symbol":"NIFTY1!","action":"buy","position_size":-1}', 400, "signs"),
        ("pw", BUY, 401, "passphrase"),
        ("pw", b'{"symbol":"NIFTY1!","action":"buy","passphrase":"no"}', 401, "passphrase"),
    ]
    for i, (name, body, status, why) in enumerate(cases):
        got, answer = r.send(name, body, client=f"c{i}")
        assert (got, answer["status"]) == (status, "error"), (name, body, answer)
        assert why in answer["message"], answer
    assert r.jobs == []
    log = r.store.audit(n=100)
    assert [row["status"] for row in reversed(log)] == [c[2] for c in cases]
    # a person can tell the ids apart; the log cannot replay them
    assert [row["id_hint"] for row in reversed(log)] == [r.ids.get(c[0], c[0])[:6] for c in cases]
    flat = json.dumps(log)
    assert not any(wid in flat for wid in r.ids.values())
    ok, answer = r.send("pw", b'{"symbol":"NIFTY1!","action":"buy","passphrase":"s3cret"}')
    assert ok == 200 and answer["request_id"] == log[0]["id"] + 1


def test_an_accepted_alert_is_queued_and_its_retry_ignored(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    status, answer = r.send("tv", BUY)
    assert status == 200 and answer["message"] == "Order queued successfully for tv"
    [job] = r.jobs
    assert job.audit_id == answer["request_id"] and job.strategy == "tv" and job.received_ns
    [instr] = job.instructions
    assert (instr.symbol, instr.kind, instr.action, instr.lots) == (FUT, "order", "BUY", 2)
    retry = json.dumps({"contracts": "2", "action": "buy", "symbol": "NIFTY1!"}).encode()
    status, answer = r.send("tv", retry)  # same content, other key order: TradingView's retry
    assert status == 200 and "duplicate" in answer["message"] and len(r.jobs) == 1
    assert r.store.audit(n=1)[0]["reason"].startswith("duplicate")


def test_a_full_queue_is_503_and_the_retry_is_taken_later(tmp_path: Path) -> None:
    r = Rig(tmp_path, capacity=0)
    status, answer = r.send("tv", BUY)
    assert status == 503 and "queue is full" in answer["message"]
    assert r.store.audit(n=1)[0]["status"] == 503
    r.capacity = 1
    status, answer = r.send("tv", BUY)  # not a duplicate: the first was never taken
    assert status == 200 and len(r.jobs) == 1


def test_rate_limit_per_client_with_retry_after(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    for _ in range(5):
        assert r.send("nosuch", BUY, client="9.9.9.9")[0] == 404
    status, answer = r.send("tv", BUY, client="9.9.9.9")
    assert status == 429 and answer["retry_after"] >= 1 and "Rate limit" in answer["message"]
    assert r.send("tv", BUY, client="8.8.8.8")[0] == 200  # another client is not held up


def test_the_window_where_the_alert_alone_decides_it(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    sell = b'{"symbol":"NIFTY1!","action":"sell"}'
    r.now = datetime(2026, 11, 20, 9, 14, 59, tzinfo=IST)
    assert r.send("tv", BUY, "a")[1]["message"].startswith("before the strategy's start")
    r.now = datetime(2026, 11, 20, 15, 0, tzinfo=IST)  # end: no new entries
    status, answer = r.send("tv", BUY, "b")
    assert status == 400 and answer["message"] == "entries end at 15:00 IST"
    assert r.send("tv", sell, "c")[0] == 200  # exits go on until the square-off
    r.now = datetime(2026, 11, 20, 15, 15, tzinfo=IST)
    assert "square-off" in r.send("tv", sell, "d")[1]["message"]
    assert len(r.jobs) == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=alert_bodies(400, random_keys=True),
    name=st.sampled_from(["tv", "both", "pw"]),
)
def test_fuzzed_requests_are_answered_never_raised_never_queued(
    tmp_path_factory, body: bytes, name: str
) -> None:
    r = _fuzz_rig(tmp_path_factory)
    before = len(r.jobs)
    status, answer = r.send(name, body, client=f"fuzz{next(_CLIENTS)}")  # no rate limit
    assert status in (400, 401) and answer["status"] == "error" and answer["message"]
    assert len(r.jobs) == before


_RIGS: dict[int, Rig] = {}
_CLIENTS = itertools.count()


def _fuzz_rig(factory) -> Rig:  # one rig for every example: an example costs microseconds
    key = id(factory)
    if key not in _RIGS:
        _RIGS.clear()
        _RIGS[key] = Rig(factory.mktemp("fuzz"))
    return _RIGS[key]


def test_listening_beyond_loopback_needs_an_explicit_setting() -> None:
    from mytrading.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="MT_SIGNALS_ALLOW_REMOTE"):
        load_settings(signals_host="0.0.0.0")
    assert load_settings(signals_host="0.0.0.0", signals_allow_remote=True).signals_host
    assert load_settings(signals_host="::1").signals_host == "::1"  # loopback


def test_a_failing_database_is_a_500_not_a_crash(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.store.close()  # the file gone from under the server: every query raises
    status, answer = r.send("tv", BUY)
    assert status == 500 and answer["message"].startswith("internal error")
    assert r.jobs == [] and r.gate.answered == {500: 1}
