#!/usr/bin/env python3
"""Risk's judging of one order, warm and cold, in one process: what ``bench/latency.py``
cannot resolve.

The stack's tick-to-order figure moves 50-100 us between runs of one build on this VM,
so a change of 5-25 us in risk's work cannot be seen there. This runs risk's core as its
daemon builds it (``risk.daemon.build_core``: the configuration of the latency bench,
limits that cannot bind, the daemon's market clock) with no sockets, and times
``RiskCore.on_intent`` for a one-lot MARKET order of the near future:

* **warm**: orders back to back (the figure a burst of orders sees);
* **cold**: an order after 100 ms of ticks, one a millisecond into the same core (what
  an order every 100 ms meets in the daemon: its own code and data gone from the CPU's
  caches, the interpreter's loop still warm). On this VM the cold figure is 7-15 times
  the warm one, and it is the one the latency bench's p50 is made of;
* **rehearsed**: the same, with the daemon's rehearsal (``RiskCore.rehearse``, the last
  order judged again and encoded, nothing sent) every ``--rehearse-ms`` (the daemon's
  default, ``MT_RISK_REHEARSE_MS``) during the ticks.

Each order is cancelled by an order update before the next, so the book stays as small
as it is in the latency bench. With ``--opcodes`` (interpreted build only:
``MT_PURE_PYTHON=1``) it also counts the Python operations one judging executes, by
function: the footprint that a cold path pays for line by line.

    .venv/bin/python bench/risk_judging.py [--samples 100] [--rehearse-ms 10] [--opcodes]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import unlimited_config  # noqa: E402

FUT_UNDERLYING = "NIFTY"
STRATEGY = "tick_echo"


class Ports:
    """Risk's ports as the daemon's, into lists: orders out, events kept."""

    def __init__(self) -> None:
        self.orders: list[Any] = []
        self.events: list[Any] = []
        self.saved: list[str] = []  # why the trading states were saved (none expected)

    def send(self, order: Any) -> bool:
        self.orders.append(order)
        return True

    def emit(self, event: Any) -> None:
        self.events.append(event)

    def save_states(self, states: Any, reason: str) -> None:
        self.saved.append(reason)

    def broker_net(self, key: Any, account: str) -> int | None:
        return None

    def want_funds(self, account: str) -> None:
        raise RuntimeError("funds are given before the first intent")

    def room(self) -> int:
        return 1000

    def error(self, what: str, **ctx: object) -> None:
        raise RuntimeError(what)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--samples", type=int, default=100, help="cold orders (100 ms apart)")
    ap.add_argument("--opcodes", action="store_true", help="count one judging's operations")
    ap.add_argument("--rehearse-ms", type=int, default=None,
                    help="the rehearsal's interval (default: MT_RISK_REHEARSE_MS's)")  # fmt: skip
    args = ap.parse_args()
    os.environ["MT_CONFIG_DIR"] = str(unlimited_config(Path(tempfile.mkdtemp())))

    import mytrading.risk.core as risk_core
    from mytrading.domain.accounts import Accounts
    from mytrading.domain.clock import MarketClock
    from mytrading.domain.refdata import IST, future_symbol, load_refdata
    from mytrading.messaging import wire
    from mytrading.risk.daemon import build_core
    from mytrading.settings import load_settings

    settings = load_settings()
    refdata = load_refdata(Path(os.environ["MT_CONFIG_DIR"]))
    # a weekday's 10:00 in India now, whatever the wall says: the market is open
    last = refdata.calendar.last_trading_day("NSE", datetime.now(IST).date())
    opens = int(datetime(last.year, last.month, last.day, 10, 0, tzinfo=IST).timestamp())
    clock = MarketClock(time.time_ns(), opens * 10**9, 1.0)
    ports = Ports()
    core = build_core(settings, refdata, Accounts(by_name={}), ports, clock.now, "bench", None,
                      clock=clock)  # fmt: skip
    core.on_funds("main", 1e9, time.time_ns())
    u = refdata.underlying(FUT_UNDERLYING)
    exchange = u.fo_exchange
    symbol = future_symbol(FUT_UNDERLYING, refdata.calendar.near_future_expiry(u, last))
    lot = refdata.instrument(exchange, symbol).lot_size
    seq = [0]

    def judge() -> float:
        """One order judged, microseconds; then cancelled, so the book stays small."""
        seq[0] += 1
        msg = wire.PlaceIntent(
            intent_id=f"i{seq[0]}", strategy=STRATEGY, exchange=exchange, symbol=symbol,
            action="BUY" if seq[0] % 2 else "SELL", quantity=lot, product="MIS",
            pricetype="MARKET", decided_ns=clock.now_ns(),
        )  # fmt: skip
        t0 = time.perf_counter_ns()
        core.on_intent(msg)
        took = (time.perf_counter_ns() - t0) / 1000
        if len(ports.orders) != seq[0]:
            raise SystemExit(f"order {seq[0]} not approved: {ports.events[-1:]}")
        o = ports.orders[-1]
        core.on_update(
            wire.OrderUpdate(order_id=o.order_id, intent_id=o.intent_id, strategy=o.strategy,
                             exchange=o.exchange, symbol=o.symbol, action=o.action,
                             quantity=o.quantity, status="cancelled")
        )  # fmt: skip
        return took

    every = settings.risk.rehearse_ms if args.rehearse_ms is None else args.rehearse_ms
    costs: list[float] = []  # each rehearsal's own time

    def ticks(ms: int, rehearse: bool = False) -> None:
        for k in range(ms):
            core.on_tick(
                wire.Tick(exchange=exchange, symbol=symbol, ltp=24_000.0 + k % 7, bid=24_000.0,
                          ask=24_000.5, bid_qty=65, ask_qty=65, volume=k, ts=time.time_ns())
            )  # fmt: skip
            time.sleep(0.001)
            if rehearse and every and (k + 1) % every == 0:  # as the daemon's timer
                t0 = time.perf_counter_ns()
                order = core.rehearse()
                if order is None:
                    raise SystemExit("nothing to rehearse: the last order was refused")
                wire.encode("order", order)
                costs.append((time.perf_counter_ns() - t0) / 1000)

    for _ in range(300):
        judge()
    warm = [judge() for _ in range(500)]
    cold = []
    for _ in range(args.samples):
        ticks(100)
        cold.append(judge())
    rehearsed: list[float] = []
    for _ in range(args.samples if every else 0):
        ticks(100, rehearse=True)
        rehearsed.append(judge())
    if ports.saved:  # a state change (a loss limit, a halt) would make these other orders
        raise SystemExit(f"risk changed a trading state during the run: {ports.saved}")
    build = "interpreted" if risk_core.__file__.endswith(".py") else "compiled"
    q = statistics.quantiles(cold, n=4)
    print(f"risk's judging of one MARKET order ({build} build, {symbol}, the daemon's clock)")
    print(f"  warm  p50 {statistics.median(warm):7.1f} us   (orders back to back, 500)")
    print(f"  cold  p50 {statistics.median(cold):7.1f} us   p25 {q[0]:.1f}  p75 {q[2]:.1f}"
          f"   (an order after 100 ms of ticks, {args.samples})")  # fmt: skip
    if rehearsed:
        q = statistics.quantiles(rehearsed, n=4)
        print(f"  rehearsed  p50 {statistics.median(rehearsed):7.1f} us   p25 {q[0]:.1f}"
              f"  p75 {q[2]:.1f}   (the same, rehearsed every {every} ms meanwhile)")  # fmt: skip
        print(f"  a rehearsal itself  p50 {statistics.median(costs):5.1f} us: "
              f"{statistics.median(costs) / (every * 10):.2f} % of a core")  # fmt: skip
    if args.opcodes:
        if build != "interpreted":
            print("  --opcodes counts Python operations: run it with MT_PURE_PYTHON=1")
            return 0
        counts: collections.Counter[str] = collections.Counter()

        def trace(frame: FrameType, event: str, arg: object) -> Any:
            frame.f_trace_opcodes = True
            code = frame.f_code
            if event == "opcode" and code.co_filename != __file__:  # the bench's own left out
                counts[f"{code.co_filename.split('mytrading/')[-1]}:{code.co_name}"] += 1
            return trace

        sys.settrace(trace)
        judge()
        sys.settrace(None)
        print(f"  one judging and its cancel: {sum(counts.values())} Python operations; the most:")
        for name, n in counts.most_common(15):
            print(f"    {n:6d}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
