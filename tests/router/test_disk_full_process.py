"""A full disk under the real router's journal (a small tmpfs as its state directory),
against the real simulator server: new orders are refused with the reason and an alert,
nothing reaches the broker unjournaled, a fill that arrives meanwhile is held (not
published before it is on the disk), and once space returns everything held is written,
the fill published once, and orders go again, by themselves."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import msgspec
import pytest
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher
from mytrading.router.journal import read
from mytrading.settings import Settings
from tests.procs import Watcher, spawn
from tests.simhelpers import at_broker, control, order
from tests.smallfs import fill_up, small_fs


@pytest.mark.integration
def test_full_disk_refuses_orders_holds_fills_and_resumes(
    sim_broker: tuple[str, dict[str, str]], settings: Settings
) -> None:
    host, env = sim_broker
    # answers come late but come (a timeout would hold the rest of a batch back: lanes.py)
    env = {**env, "MT_OPENALGO_TIMEOUT_S": "5.0"}
    with small_fs(Path(env["MT_STATE_DIR"]), "8m") as state:
        w = Watcher(settings, ("sys.status.", "exec."))
        ctx = zmq.Context()
        as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
        router = spawn("router", env)

        def last(oid: str) -> wire.OrderUpdate | None:
            ups = [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == oid]
            return ups[-1] if ups else None

        def fills(oid: str) -> list[wire.Fill]:
            return [m for _, m in w.seen if isinstance(m, wire.Fill) and m.order_id == oid]

        def qty(o: str) -> int:
            return 65 * 41 if o == "r99" else 65 * (int(o[1:]) + 1)

        def filled(o: str) -> int:
            return sum(f.quantity for f in fills(f"s.{o}"))

        def done(oid: str, status: str, timeout: float = 20) -> wire.OrderUpdate:
            w.wait(lambda: (u := last(oid)) is not None and u.status == status, timeout, oid)
            return last(oid)  # type: ignore[return-value]

        try:
            w.wait(lambda: "router" in w.status, 20, "the router")
            w.wait(lambda: as_risk.send(order("r0", 65)), 10, "the order pipe")
            done("s.r0", "complete")
            errors = w.status["router"].errors
            # every order's answer comes late (each is in flight 2.5 s): when the disk
            # refuses, orders are at the broker whose answers and fills come after
            control(host, "/_sim/faults", {"endpoint": "placeorder", "faults": ["hang_after"] * 40,
                                           "hang_s": 2.5})  # fmt: skip
            filler = fill_up(state)
            # the journal's last page still has room for a few records (tmpfs allocates
            # by page): orders go until it is taken, then one is refused
            refused = ""
            sent: list[str] = []
            for i in range(1, 40):
                oid = f"r{i}"
                as_risk.send(order(oid, 65 * (i + 1)))
                w.pump(0.5)
                u = last(f"s.{oid}")
                sent.append(oid)
                if u is not None and u.status == "rejected":
                    refused = oid
                    break
            if not refused:
                w.wait(lambda: any((u := last(f"s.{o}")) is not None and u.status == "rejected"
                                   for o in sent), 20, "a refusal")  # fmt: skip
                refused = next(o for o in sent if last(f"s.{o}").status == "rejected")  # type: ignore[union-attr]
            u = last(f"s.{refused}")
            assert u is not None and "No space left on device" in u.reason, u.reason
            w.wait(lambda: "journal_fault" in w.status["router"].detail, 5, "the fault shown")
            # the orders in flight are answered, one after another: their fills are held
            w.wait(lambda: w.status["router"].detail.get("fills_held", 0) >= 1, 30, "a held fill")
            d = w.status["router"].detail
            assert "No space left" in d["journal_fault"], json.dumps(d)
            assert d["fills_held"] >= 1, json.dumps(d)
            assert w.status["router"].errors > errors  # the alert
            (journal,) = state.glob("**/router/journal.bin")
            on_disk = {f.fill_no for f in read(journal).fills}
            published = [m for _, m in w.seen if isinstance(m, wire.Fill)]
            assert {f.fill_no for f in published} <= on_disk  # nothing heard before written
            # the heartbeat's last published fill leaves the held out: no reader fetches
            # a fill from the router before the journal has it
            assert d["last_fill_no"] == max((f.fill_no for f in published), default=0)
            # space returns: what was held is written, the fills published once, and
            # orders go again by themselves (an order queued behind the lane's late
            # answers is refused if its turn comes while the disk is full, else it goes)
            filler.unlink()

            def final(o: str) -> str:
                u = last(f"s.{o}")
                return u.status if u is not None and u.status in ("complete", "rejected") else ""

            w.wait(lambda: all(final(o) for o in sent), 30, "every order's end")
            refused_ids = [o for o in sent if final(o) == "rejected"]
            for o in refused_ids:  # never sent
                assert at_broker(host, qty(o)) == [], o
            went = [o for o in sent if o not in refused_ids]
            w.wait(lambda: all(filled(o) == qty(o) for o in went), 15, "the held fills")
            control(host, "/_sim/faults", {"endpoint": "placeorder", "faults": [], "hang_s": 0})
            # a sell (the orders before were buys: no margin needed)
            as_risk.send(msgspec.structs.replace(order("r99", qty("r99")), action="SELL"))
            done("s.r99", "complete")
            w.pump(1.5)
            assert "journal_fault" not in w.status["router"].detail
            for o in [*went, "r99"]:
                assert len(at_broker(host, qty(o))) == 1, o
                assert filled(o) == qty(o), o
            numbers = [m.fill_no for _, m in w.seen if isinstance(m, wire.Fill)]
            assert len(numbers) == len(set(numbers))  # each published once
            w.wait(
                lambda: w.status["router"].detail["last_fill_no"] == max(numbers),
                10,
                "the heartbeat to name the last fill published",
            )
        finally:
            as_risk.sock.close(0)
            ctx.term()
            router.send_signal(signal.SIGTERM)
            router.wait(timeout=10)
            w.close()
        rep = read(journal)
        assert not rep.damaged and rep.torn_bytes == 0
        for o in [*went, "r99"]:
            assert rep.orders[f"s.{o}"].state == "complete", o
        for o in refused_ids:
            assert rep.orders[f"s.{o}"].state == "rejected", o
        for o in ["r0", *went, "r99"]:
            assert sum(f.quantity for f in rep.fills if f.order_id == f"s.{o}") == qty(o), o
        assert len({f.fill_no for f in rep.fills}) == len(rep.fills)
