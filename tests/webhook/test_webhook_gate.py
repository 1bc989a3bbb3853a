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

from mytrading.domain.refdata import IST
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
        # a field we do not know is ignored (as OpenAlgo's webhook): the refusal is the
        # unmapped symbol, and the audit names the ignored field
        ("tv", b'{"symbol":"BANKX","action":"buy","colour":"red"}', 400, "BANKX is not mapped"),
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
    rows = [c for c in cases if c[2] not in (404, 413)]  # floods: counted, not rows
    assert [row["status"] for row in reversed(log)] == [c[2] for c in rows]
    assert [row["ignored"] for row in reversed(log)] == [
        "colour" if b"colour" in c[1] else "" for c in rows
    ]
    # a person can tell the ids apart; the log cannot replay them
    assert [row["id_hint"] for row in reversed(log)] == [r.ids.get(c[0], c[0])[:6] for c in rows]
    r.gate.housekeep(force=True)
    counted = {(c["status"], c["reason"]): c["n"] for c in r.store.refused_counts()}
    assert counted == {(413, "the body is over 16384 bytes"): 1, (404, "unknown webhook id"): 1}
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


def test_a_flood_of_bad_ids_cannot_starve_a_known_id(tmp_path: Path) -> None:
    """3,000 guessed ids from the proxy's one address: limited per client (30 a minute
    answered 404, the rest 429 with retry_after) while the real strategy's alerts from the
    same address keep trading; the audit grows by a few counts, not 3,000 rows."""
    r = Rig(tmp_path)
    proxy = "10.0.0.1"
    statuses = [r.send(f"guess{i:05d}" + "x" * 12, BUY, client=proxy)[0] for i in range(3000)]
    assert statuses.count(404) == 30 and statuses.count(429) == 2970
    status, answer = r.send("nosuch", BUY, client=proxy)
    assert status == 429 and answer["retry_after"] >= 1 and "Rate limit" in answer["message"]
    for n in range(1, 6):  # the known id, from the same address, within its own limit
        body = json.dumps({"symbol": "NIFTY1!", "action": "buy", "contracts": str(n)}).encode()
        assert r.send("tv", body, client=proxy)[0] == 200
    assert len(r.jobs) == 5
    status, answer = r.send("tv", BUY, client="8.8.8.8")  # its own limit: per id, any client
    assert status == 429 and answer["retry_after"] >= 1
    r.gate.housekeep(force=True)
    assert len(r.store.audit(n=10_000)) == 5  # the five alerts
    counts = r.store.refused_counts(100)
    assert len(counts) <= 6  # per minute, status, strategy, client and reason
    assert sum(c["n"] for c in counts) == 3002
    assert {c["strategy"] for c in counts} == {"", "tv"}


def test_the_audit_is_pruned_by_age(tmp_path: Path) -> None:
    from datetime import timedelta

    r = Rig(tmp_path)
    r.send("tv", BUY)
    old = (datetime.now(IST) - timedelta(days=91)).isoformat(timespec="seconds")
    r.store.con.execute("UPDATE audit SET ts = ?", (old,))
    r.store.count_refused({(old[:16], 404, "", "1.2.3.4", "unknown webhook id"): 7})
    r.send("tv", b'{"symbol":"NIFTY1!","action":"sell"}')
    assert r.store.prune(90) == 2
    assert [a["status"] for a in r.store.audit(n=10)] == [200]
    assert r.store.refused_counts() == []


def test_only_a_trusted_proxy_names_the_client() -> None:
    import ipaddress

    from mytrading.signals.http import client_address

    proxy = [ipaddress.ip_network("127.0.0.0/8")]
    # no trusted proxy: the header is the client's own words
    assert client_address("203.0.113.9", "1.1.1.1", []) == "203.0.113.9"
    # a connection not from the proxy cannot name a client either
    assert client_address("203.0.113.9", "1.1.1.1", proxy) == "203.0.113.9"
    # through the proxy: the right-most hop it did not add is the client; a rotating
    # value the client wrote itself sits to its left and changes nothing
    assert client_address("127.0.0.1", "6.6.6.6, 198.51.100.7", proxy) == "198.51.100.7"
    assert client_address("127.0.0.1", "7.7.7.7, 198.51.100.7", proxy) == "198.51.100.7"
    assert client_address("127.0.0.1", "198.51.100.7, 127.0.0.5", proxy) == "198.51.100.7"
    assert client_address("127.0.0.1", "", proxy) == "127.0.0.1"


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
    status, answer = r.send(name, body, client=f"fuzz{next(_CLIENTS)}")
    assert status in (400, 401) and answer["status"] == "error" and answer["message"]
    assert len(r.jobs) == before


_RIGS: dict[int, Rig] = {}
_CLIENTS = itertools.count()


def _fuzz_rig(factory) -> Rig:  # one rig for every example: an example costs microseconds
    key = id(factory)
    if key not in _RIGS:
        _RIGS.clear()
        _RIGS[key] = Rig(factory.mktemp("fuzz"))
        _RIGS[key].gate.rate = RateLimit(1_000_000, 60.0)  # the limit is tested elsewhere
    return _RIGS[key]


def test_listening_beyond_loopback_needs_an_explicit_setting() -> None:
    from mytrading.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="MT_SIGNALS_ALLOW_REMOTE"):
        load_settings(signals_host="0.0.0.0")
    assert load_settings(signals_host="0.0.0.0", signals_allow_remote=True).signals.host
    assert load_settings(signals_host="::1").signals.host == "::1"  # loopback


def test_a_failing_database_is_a_500_not_a_crash(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.store.close()  # the file gone from under the server: every query raises
    status, answer = r.send("tv", BUY)
    assert status == 500 and answer["message"].startswith("internal error")
    assert r.jobs == [] and r.gate.answered == {500: 1}
