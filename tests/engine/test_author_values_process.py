"""The live half of ``test_author_values.py``, on real daemons: a strategy with a misspelt
product fails at its call with the backtest's message, sends nothing, and the strategy
beside it trades; an intent frame risk cannot decode is refused to its sender by name."""

from __future__ import annotations

import signal
from pathlib import Path

import msgspec
import pytest

from mytrading.messaging import wire
from mytrading.settings import Settings
from tests.engine.test_author_values import TYPO_ERROR, TYPO_STRATEGY
from tests.procs import Watcher, spawn
from tests.stack.test_going_live_process import Bus, intent, seen


@pytest.mark.integration
def test_a_misspelt_product_fails_live_as_in_a_backtest_and_a_bad_frame_is_answered(
    settings: Settings, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "typo.py").write_text(TYPO_STRATEGY)
    env = {
        **tmp_env,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "typo",
        "MT_SIM_SPEED": "60",
        "MT_RISK_ANY_HOUR": "true",
    }
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    bus = Bus(settings)
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def typo() -> dict:
        eng = w.status.get("engine")
        return eng.detail["strategies"].get("typo", {}) if eng else {}

    try:
        w.wait(lambda: typo().get("hook_errors", 0) >= 1, 60, "the typo strategy's first bar")
        assert typo()["last_error"] == TYPO_ERROR  # word for word the backtest's
        assert typo()["open_orders"] == 0
        assert w.status["risk"].detail.get("approved", 0) == 0  # nothing reached risk
        log = (settings.log_dir / "engine.log").read_text()
        assert "product 'NRMl' is not one of MIS, NRML, CNC" in log

        # A frame that still does not decode (another sender's bug): refused by name.
        raw = msgspec.msgpack.decode(wire.encode_body(intent("bad1", "BUY")))
        raw[raw.index("NRML")] = "NRMl"
        w.wait(
            lambda: bus.engine.sock.send(b"intent " + msgspec.msgpack.encode(raw)) is None,
            5,
            "the intent pipe",
        )
        w.wait(lambda: seen(w, wire.RiskEvent, intent_id="bad1"), 10, "risk's answer")
        (ev,) = seen(w, wire.RiskEvent, intent_id="bad1")
        assert (ev.kind, ev.rule, ev.strategy) == ("rejected", "malformed", "s")
        assert "risk could not read it" in ev.reason and "NRMl" in ev.reason
        risk_log = (settings.log_dir / "risk.log").read_text()
        assert "malformed frame dropped" in risk_log  # counted and logged as well
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=10)
        bus.close()
        w.close()


AMENDER = '''
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class Amender(BaseStrategy):
    """A LIMIT buy below the market, moved once, then cancelled."""

    name = "amender"

    def on_start(self) -> None:
        self.subscribe_bars(*self.near_future("NIFTY"), "1m")
        self.entry = self.amend = self.cancelled = ""

    def on_bar(self, bar: wire.Bar) -> None:
        if not self.entry:
            px = self.round_price(bar.exchange, bar.symbol, bar.close * 0.99)
            self.entry = self.buy(bar.exchange, bar.symbol, self.lot_size(bar.exchange,
                                  bar.symbol), pricetype="LIMIT", price=px)

    def on_order_update(self, u: wire.OrderUpdate) -> None:
        if u.intent_id == self.entry and u.status == "open" and not self.amend:
            o = self.open_orders[self.entry]
            self.amend = self.modify(self.entry, price=self.round_price(o.exchange, o.symbol,
                                                                        o.price * 0.995))
        elif u.intent_id == self.amend and u.status == "complete" and not self.cancelled:
            self.cancelled = self.cancel(self.entry)
'''


@pytest.mark.integration
def test_an_amend_and_a_cancel_that_were_done_are_answered_not_timed_out(
    settings: Settings, tmp_env: dict[str, str], tmp_path: Path
) -> None:
    """Found against the real OpenAlgo: the router answered a refused amend but not a done
    one, so the engine settled every done modify and cancel as 'no answer from risk'. Each
    is now answered ``complete`` (after the working order's own update), in time."""
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "amender.py").write_text(AMENDER)
    env = {
        **tmp_env,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "amender",
        "MT_SIM_SPEED": "60",
        "MT_RISK_ANY_HOUR": "true",
        "MT_RISK_WAIT_S": "0.5",
        "MT_INTENT_ANSWER_S": "3",  # the least allowed: a done amend unanswered shows fast
    }
    w = Watcher(settings, ("sys.status.", "exec."))
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}
    try:
        w.wait(
            lambda: bool(seen(w, wire.OrderUpdate, strategy="amender", status="cancelled")),
            60,
            "the entry cancelled",
        )
        w.pump(4.5)  # longer than MT_INTENT_ANSWER_S after the last intent
        done = [u.intent_id for u in seen(w, wire.OrderUpdate, status="complete")]
        assert len(done) == 2, done  # the modify and the cancel, each answered itself
        eng = w.status["engine"].detail
        assert eng["unanswered"] == 0 and eng["late_answers"] == 0, eng
        router = w.status["router"].detail
        assert router.get("modify_ok") == 1 and router.get("cancel_ok") == 1, router
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(timeout=10)
        w.close()
