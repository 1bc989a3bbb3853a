"""What must hold whatever a day brings, checked as the simulated day goes and at its end.

Each invariant has a name; a broken one is a ``Violation`` naming it, the seed, the step
(the world's event count) and the market time, with what was seen. They are checked on
what the daemons do (a message published, an order at the broker), not on what they say
of themselves, and against the simulated broker (the truth of what was placed and
filled), so a daemon that is wrong cannot vouch for itself:

``approved``     no order reaches the broker that risk did not approve
``once``         no approved order is placed at the broker twice
``fills``        every broker fill becomes the router's fills, numbered without a hole or
                 a repeat; risk, each strategy, the reconciler and signals book each of
                 them once (their positions equal the router's when the day is quiet)
``positions``    when the day is quiet, every account's positions equal the broker's, per
                 symbol and product
``caps``         no order risk approves breaks a cap given what risk knew: whole lots, on
                 the price's tick, within the order's lot cap, no entry while its book is
                 halted, reducing or the kill switch is on
``kill_switch``  after the kill switch is confirmed, no entry reaches the broker
``bars``         every (instrument, minute) bar is handed once and in order, and its
                 volume is what its ticks traded (a late tick's trades carried to the
                 next bar)
``pnl``          risk's P&L per account equals the broker's: realised, less what the open
                 positions cost (the day's cash flow, charges apart)
``person``       nothing waits for a person at the day's end but what an injected fault or
                 the operator left, and that is said
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mytrading.domain.ids import Book
from mytrading.domain.refdata import IST, RefDataError
from mytrading.messaging import wire

# the ``SimStack`` (``simulation/stack.py``) that composes this part: typed loosely,
# so that no part imports the module that imports it
Sim = Any

if TYPE_CHECKING:
    from mytrading.simulation.host import SimHost

NAMES = ("approved", "once", "fills", "positions", "caps", "kill_switch", "bars", "pnl", "person")
KILL_GRACE_NS = 1_000_000_000  # an entry approved before the switch, already on its way
Content = tuple[str, str, str, str, str, str, str, int, float, float]


@dataclass(frozen=True)
class Violation:
    invariant: str
    seed: int
    step: int
    market_time: str
    detail: str

    def line(self) -> str:
        return (
            f"seed {self.seed}: {self.invariant} broken at step {self.step} "
            f"({self.market_time}): {self.detail}"
        )


@dataclass
class _Line:
    """One instrument's bars as the feed hands them, modelled from the ticks it
    published: the bar open, what was folded in, the volume it counts from."""

    start: int = -1
    end: int = -1
    base: int = -1  # cumulative volume before the bar's first trade (-1: not known)
    high: int = -1  # the highest cumulative volume folded into it
    handed_end: int = 0
    last_t: int = 0
    last_vol: int = -1
    expected: dict[int, int] = field(default_factory=dict)  # bar start -> volume (-1: unknown)
    handed: set[int] = field(default_factory=set)
    last_handed: int = -1  # the latest minute handed (bars go out in order)


class Invariants:
    def __init__(self, stack: Sim) -> None:
        self.stack = stack
        self.violations: list[Violation] = []
        self.checks: collections.Counter[str] = collections.Counter()
        self.approved: dict[str, wire.Order] = {}  # order id -> the place risk approved
        self.approved_content: collections.Counter[Content] = collections.Counter()
        self.placed_content: collections.Counter[Content] = collections.Counter()
        self.placed: list[tuple[str, str, Content, int]] = []  # (account, broker id, ...)
        self.placed_ns: dict[tuple[str, str], int] = {}  # (account, broker id) -> when
        # the router's positions from its published fills: (account, strategy, ex, sym, product)
        self.held: collections.Counter[tuple[str, ...]] = collections.Counter()
        self.fill_nos: dict[int, tuple[str, str]] = {}  # number -> (account, fill id) published
        self.router_fills: dict[int, wire.Fill] = {}
        self._trades: set[tuple[str, str]] = set()
        self.kill_on_ns = 0  # when the kill switch was confirmed on (0: off)
        self.kill_since: dict[str, int] = {}
        self._feed: dict[int, dict[tuple[str, str], _Line]] = {}  # feed pid -> lines
        self.orders = 0
        self.fills = 0
        stack.bus.observers.append(self._published)
        stack.bus.pipe_observers.append(self._pushed)

    # ------------------------------------------------------------------ reporting

    def broken(self, invariant: str, detail: str) -> None:
        s = self.stack
        when = datetime.fromtimestamp(s.clock.now_ns() / 1e9, IST).strftime("%H:%M:%S")
        v = Violation(invariant, s.seed, s.world.steps, when, detail)
        self.violations.append(v)
        s.trace_event("violation", v.line())

    # ------------------------------------------------------------------ the bus

    def _pushed(self, src: SimHost, pipe: str, msg: wire.Msg) -> None:
        """What goes down the order pipe: only risk's (the router refuses the rest, and
        what reaches the broker is judged there: ``approved``)."""
        if pipe == "pipe.orders" and isinstance(msg, wire.Order) and src.name != "risk":
            self.stack.trace_event("note", f"an order on the pipe from {src.name}")

    def approval(self, msg: wire.Order) -> None:
        """Risk's core approved ``msg`` (its ``send`` port, at the moment it decided)."""
        self.checks["caps"] += 1
        if msg.op == "place" and msg.order_id not in self.approved:
            self.approved[msg.order_id] = msg
            self.approved_content[content(msg.account, msg)] += 1
            self.orders += 1
            self._caps(msg)

    def _caps(self, o: wire.Order) -> None:
        """An approval judged against what risk held when it made it."""
        risk = self.stack.cores.get("risk")
        try:
            inst = self.stack.refdata.instrument(o.exchange, o.symbol)
        except RefDataError:
            self.broken("caps", f"{o.order_id}: approved for an unknown instrument {o.symbol}")
            return
        if inst.kind != "EQ" and o.quantity % inst.lot_size:
            self.broken("caps", f"{o.order_id}: {o.quantity} is not whole lots of {inst.lot_size}")
        for name, px in (("price", o.price), ("trigger", o.trigger_price)):
            if px and abs(round(px / inst.tick_size) * inst.tick_size - px) > 1e-6:
                self.broken("caps", f"{o.order_id}: {name} {px} is off the tick {inst.tick_size}")
        if risk is None or o.exit:
            return
        core = getattr(risk, "core", None)
        if core is None:
            return
        lim = core.limits.of(o.strategy)
        if inst.kind != "EQ" and o.quantity > lim.max_order_lots * inst.lot_size:
            self.broken("caps", f"{o.order_id}: {o.quantity} over {lim.max_order_lots} lots")
        book = core.book
        key = (o.strategy, o.exchange, o.symbol)
        held = book.positions.get(key, 0)
        signed = o.quantity if o.action == "BUY" else -o.quantity
        if abs(held + signed) <= abs(held):
            return  # it reduces: exits pass whatever the state
        states = book.states
        if states.kill_switch:
            self.broken("caps", f"{o.order_id}: an entry approved with the kill switch on")
        strategy = Book.parse(o.strategy).strategy
        for who in (o.strategy, strategy):
            st = states.of(who) if hasattr(states, "of") else ""
            if st in ("halted", "reducing"):
                self.broken("caps", f"{o.order_id}: an entry approved while {who} is {st}")
                break

    def _published(self, src: SimHost, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Tick):
            if src.name == "feed":
                self._tick(src.pid, msg)
        elif isinstance(msg, wire.Bar):
            if src.name == "feed":
                self._bar(src.pid, msg)
        elif isinstance(msg, wire.Fill):
            if src.name == "router":
                self._fill(msg)
        elif isinstance(msg, wire.Status) and msg.name == "risk":
            mode = msg.detail.get("kill_mode")
            if mode in ("on", "flatten") and not self.kill_on_ns:
                self.kill_on_ns = self.stack.world.now_ns
            elif mode == "off":
                self.kill_on_ns = 0

    def _fill(self, f: wire.Fill) -> None:
        self.checks["fills"] += 1
        trade = (f.account, f.fill_id)
        seen = self.fill_nos.get(f.fill_no)
        if seen is not None:
            if seen != trade:
                self.broken("fills", f"fill number {f.fill_no} given to {seen} and {trade}")
            return  # a republication: readers drop it
        last = max(self.fill_nos, default=0)
        if f.fill_no != last + 1 and f.fill_no > last:
            missing = [n for n in range(last + 1, f.fill_no) if n not in self.fill_nos]
            if missing:  # published later is fine (held, then released in order): noted
                self.stack.trace_event("note", f"fill numbers {missing} not published yet")
        if trade in self._trades and not f.settlement:
            self.broken("fills", f"trade {trade} numbered twice ({f.fill_no})")
        self._trades.add(trade)
        self.fill_nos[f.fill_no] = trade
        self.router_fills[f.fill_no] = f
        self.fills += 1
        key = (f.account, f.strategy, f.exchange, f.symbol, f.product)
        before = self.held[key]
        self.held[key] += f.quantity if f.action == "BUY" else -f.quantity
        if abs(self.held[key]) > abs(before) and not f.settlement:
            self._grew_after_kill(f, before)

    def _grew_after_kill(self, f: wire.Fill, before: int) -> None:
        """A fill that grew a position, of an order placed after the kill switch was
        confirmed: an entry, whatever its order was called (an exit sized without the
        orders still working turns the position round: seed 80)."""
        placed = self.placed_ns.get((f.account, f.broker_order_id))
        self.checks["kill_switch"] += 1
        if not self.kill_on_ns or placed is None or placed < self.kill_on_ns + KILL_GRACE_NS:
            return
        after = self.held[(f.account, f.strategy, f.exchange, f.symbol, f.product)]
        self.broken("kill_switch", f"{f.order_id} ({f.broker_order_id}), placed after the kill "
                    f"switch, took {f.strategy}'s {f.symbol} from {before} to {after}")  # fmt: skip

    # ----------------------------------------------------------------- the broker

    def placed_at_broker(self, account: str, fields: dict[str, Any], broker_id: str) -> None:
        """An order the broker took (whatever became of its answer)."""
        c = request_content(account, fields)
        self.placed_content[c] += 1
        self.placed.append((account, broker_id, c, self.stack.world.now_ns))
        self.placed_ns[(account, broker_id)] = self.stack.world.now_ns
        self.checks["approved"] += 1
        self.checks["once"] += 1
        if self.placed_content[c] > self.approved_content[c]:
            what = " ".join(map(str, c))
            kind = "once" if self.approved_content[c] else "approved"
            self.broken(kind, f"{what} placed {self.placed_content[c]} times, approved "
                        f"{self.approved_content[c]}")  # fmt: skip
        self._kill_switch(c, broker_id)

    def _kill_switch(self, c: Content, broker_id: str) -> None:
        self.checks["kill_switch"] += 1
        if not self.kill_on_ns or self.stack.world.now_ns < self.kill_on_ns + KILL_GRACE_NS:
            return
        # the n-th placement of this content is its n-th approval (the first such order
        # is often an entry long done: a later exit of the same size is not it)
        same = [o for o in self.approved.values() if content(o.account, o) == c]
        order = same[min(self.placed_content[c], len(same)) - 1] if same else None
        if order is None or order.exit:
            return
        router = self.stack.cores.get("router")
        books = getattr(router, "books", None)
        if books is not None:
            key = (order.strategy, order.exchange, order.symbol, order.product, order.account)
            held = books.ledger.net().get(key, 0)
            signed = order.quantity if order.action == "BUY" else -order.quantity
            if abs(held + signed) <= abs(held):
                return  # it reduces
        self.broken("kill_switch", f"entry {order.order_id} ({broker_id}) reached the broker "
                    "after the kill switch was confirmed")  # fmt: skip

    # ------------------------------------------------------------------- bars

    def _tick(self, pid: int, t: wire.Tick) -> None:
        lines = self._feed.setdefault(pid, {})
        ln = lines.get((t.exchange, t.symbol))
        if ln is None:
            ln = lines[(t.exchange, t.symbol)] = _Line()
        stamp = t.exch_ns or self.stack.clock.now_ns()
        if stamp == ln.last_t and t.volume == ln.last_vol:
            return  # a quote without a trade
        late = stamp < (ln.start if ln.start >= 0 else ln.handed_end)
        if late:
            return
        builder = self._builder()
        before, before_t = ln.last_vol, ln.last_t
        if stamp >= ln.last_t:
            ln.last_t, ln.last_vol = stamp, t.volume
        if ln.start >= 0 and stamp >= ln.end:
            self._close(ln)
        if ln.start < 0:
            ln.start, ln.end = builder.span(t.exchange, stamp)
            day = builder._session_ns(t.exchange, ln.start)
            same_day = before_t and builder._session_ns(t.exchange, before_t) == day
            if before >= 0 and same_day and before <= t.volume:
                ln.base = before
            elif ln.start == builder._session_ns(t.exchange, ln.start)[0]:
                ln.base = 0
            else:
                ln.base = -1  # joined mid-session: what came before is not known
            ln.high = t.volume
        elif t.volume > ln.high:
            ln.high = t.volume

    def _close(self, ln: _Line) -> None:
        ln.expected[ln.start] = ln.high - ln.base if ln.base >= 0 else -1
        ln.handed_end = ln.end
        ln.start = ln.end = -1

    def _bar(self, pid: int, b: wire.Bar) -> None:
        if b.tf != "1m" or b.closed_by == "history":
            return
        self.checks["bars"] += 1
        ln = self._feed.setdefault(pid, {}).setdefault((b.exchange, b.symbol), _Line())
        if b.start_ns in ln.handed:
            self.broken("bars", f"{b.symbol} {_hm(b.start_ns)} handed twice by the feed")
            return
        if b.start_ns < ln.last_handed:
            self.broken("bars", f"{b.symbol} {_hm(b.start_ns)} handed after "
                        f"{_hm(ln.last_handed)}: out of order")  # fmt: skip
        ln.handed.add(b.start_ns)
        ln.last_handed = max(ln.last_handed, b.start_ns)
        if ln.start == b.start_ns:  # closed by the clock: the model closes it too
            self._close(ln)
        want = ln.expected.pop(b.start_ns, None)
        if want is not None and want >= 0 and want != b.volume:
            self.broken("bars", f"{b.symbol} {_hm(b.start_ns)} volume {b.volume}, its ticks "
                        f"traded {want}")  # fmt: skip

    def _builder(self) -> Any:
        from mytrading.domain.bars import BarBuilder

        b = getattr(self, "_bb", None)
        if b is None:
            b = self._bb = BarBuilder(self.stack.refdata.calendar, "1m")
        return b

    # ------------------------------------------------------------ the day's end

    def day_end(self) -> None:
        """The day is over and quiet: the books against the broker and each other."""
        s = self.stack
        router = s.cores.get("router")
        if router is None:
            self.broken("positions", "the router is not running at the day's end")
            return
        self._router_vs_broker(router)
        self._readers_vs_router(router)
        self._fills_vs_broker(router)
        self._pnl(router)
        self._person()

    def _person(self) -> None:
        """What the morning check would list must be what the day left on purpose."""
        from mytrading.monitor.rules import waiting_for_a_person
        from mytrading.monitor.view import View

        s = self.stack
        view = View(tuple(s.hosts))
        for st in s.operator.view.daemons().values():
            view.on_status(st, s.world.monotonic())
        faults = s.faults.injected
        why = (view.detail("risk").get("states") or {}).get("why") or {}
        said_by_risk = {e.strategy for _, e in s.events.events if e.kind == "trigger"}
        for need in waiting_for_a_person(view):
            self.checks["person"] += 1
            stack_wide = "kill switch" in need or "the stack is" in need
            who = (
                "*"
                if stack_wide
                else next((n for n in why if n != "*" and f"strategy {n} is " in need), "")
            )
            by = str((why.get(who) or {}).get("by", "")) if who else ""
            ok = (
                ("kill switch" in need and s.operator.kill_switch != "off")
                or (who and by.startswith("cli:"))  # the operator stopped or paused it
                or (who and by == "risk" and who in said_by_risk)  # a limit, said as such
                or ("session expired" in need and faults["session_expired"])
                or ("journal cannot be written" in need and faults["disk_full"])
                or ("clock" in need and bool(s.clock_offset_s))
            )
            if not ok:
                self.broken("person", f"waits for a person with no fault or command to say "
                            f"why (set by {by or 'nobody'}): {need}")  # fmt: skip
        self.checks["person"] += 1

    def _router_vs_broker(self, router: Any) -> None:
        ours = router.books.net_by_account()
        for account, broker in self.broker_positions(router).items():
            self.checks["positions"] += 1
            mine = {k[1:]: q for k, q in ours.items() if k[0] == account and q}
            theirs = {k: q for k, q in broker.items() if q}
            if mine != theirs:
                diff = {k: (mine.get(k, 0), theirs.get(k, 0)) for k in set(mine) | set(theirs)
                        if mine.get(k, 0) != theirs.get(k, 0)}  # fmt: skip
                self.broken("positions", f"{account}: ours vs the broker's {diff}")

    def broker_positions(self, router: Any) -> dict[str, dict[tuple[str, str, str], int]]:
        """Each account's positions as its broker holds them."""
        out: dict[str, dict[tuple[str, str, str], int]] = {}
        ex = self.stack.main.exchange
        out["main"] = {k: p.qty for k, p in ex.ledger.positions.items()}
        for name, lane in router.lanes.items():
            local = getattr(getattr(lane.broker, "sdk", None), "local", None)
            owner = getattr(local, "__self__", None)
            if owner is not None and name != "main":
                out[name] = {k: p.qty for k, p in owner.exchange.ledger.positions.items()}
        return out

    def _readers_vs_router(self, router: Any) -> None:
        s = self.stack
        net = router.books.ledger.net()
        # A position the broker's book did not confirm at the router's start is kept out
        # of what risk and the strategies restore (an alert asks a person): not compared.
        unconfirmed = {(ex, sym) for _a, ex, sym, _p in router.recovery.unconfirmed}
        by_book: dict[tuple[str, str, str], int] = collections.defaultdict(int)
        for (strategy, ex, sym, _prod, _acct), q in net.items():
            if (ex, sym) not in unconfirmed:
                by_book[(strategy, ex, sym)] += q
        last = router.bus_out.published_fill_no
        risk = s.cores.get("risk")
        if risk is not None:
            self.checks["fills"] += 1
            theirs = {k: q for k, q in risk.core.book.positions.items()
                      if q and k[1:] not in unconfirmed}  # fmt: skip
            mine = {k: q for k, q in by_book.items() if q}
            if theirs != mine:
                self.broken("fills", f"risk's positions differ from the router's: "
                            f"{_diff(mine, theirs)}")  # fmt: skip
        engine = s.cores.get("engine")
        if engine is not None:
            self.checks["fills"] += 1
            for name, ctx in engine.runner.contexts.items():
                mine2 = {(ex, sym): q for (st, ex, sym), q in by_book.items() if st == name and q}
                theirs2 = {k: q for k, q in ctx.ledger.net().items()
                           if q and k not in unconfirmed}  # fmt: skip
                if mine2 != theirs2:
                    self.broken("fills", f"strategy {name}'s positions differ from the router's:"
                                f" {_diff(mine2, theirs2)}")  # fmt: skip
        rec = s.cores.get("reconciler")
        if rec is not None and rec.synced:
            self.checks["fills"] += 1
            merged: dict[tuple[str, str, str, str], int] = collections.defaultdict(int)
            for (_, ex, sym, p, a), q in net.items():  # the strategies' books of an account
                merged[(a, ex, sym, p)] += q
            theirs_a = {k: q for k, q in rec.ledger.net().items() if q}
            if {k: q for k, q in merged.items() if q} != theirs_a:
                self.broken("fills", f"the reconciler's positions differ from the router's: "
                            f"{_diff(dict(merged), theirs_a)}")  # fmt: skip
        for name, core in (("risk", risk), ("engine", engine), ("reconciler", rec),
                           ("signals", s.cores.get("signals"))):  # fmt: skip
            seq = getattr(core, "fill_seq", None)
            if seq is not None and seq.last is not None and (seq.last < last or seq.holes):
                self.broken("fills", f"{name} booked fills up to {seq.last} of {last}, holes "
                            f"{sorted(seq.holes)}")  # fmt: skip

    def _fills_vs_broker(self, router: Any) -> None:
        """Every broker trade is in the router's fills (per order: the quantity)."""
        ex = self.stack.main.exchange
        broker: dict[str, int] = collections.defaultdict(int)
        for t in ex.trades:
            if t.get("orderid"):
                broker[str(t["orderid"])] += int(t["quantity"])
        ours: dict[str, int] = collections.defaultdict(int)
        for f in router.books.fills:
            if f.account == "main" and not f.settlement:
                ours[f.broker_order_id] += f.quantity
        self.checks["fills"] += 1
        for oid in set(broker) | set(ours):
            if broker.get(oid, 0) != ours.get(oid, 0):
                self.broken("fills", f"broker order {oid}: filled {broker.get(oid, 0)} at the "
                            f"broker, {ours.get(oid, 0)} in the router's fills")  # fmt: skip
        known = {jo.broker_id for jo in router.table.orders.values() if jo.broker_id}
        for account, broker_id, c, _ in self.placed:
            if account == "main" and broker_id and broker_id not in known:
                self.broken("once", f"broker order {broker_id} ({' '.join(map(str, c))}) is no "
                            "order of the router's")  # fmt: skip

    def _pnl(self, router: Any) -> None:
        risk = self.stack.cores.get("risk")
        if risk is None:
            return
        # Realised alone depends on how positions are split: two strategies long and short
        # the same contract have realised nothing, the account that nets them has. The
        # realised plus the open quantity at one common mark (zero) does not: it is the
        # day's cash flow, however the fills are split into books.
        mine: dict[str, float] = collections.defaultdict(float)
        for book, b in risk.post.books.items():
            account = self.stack.accounts.account_of(book)
            mine[account] += sum(p.realized - p.qty * p.avg for p in b.ledger.positions.values())
        ex = self.stack.main.exchange
        theirs = {"main": sum(p.realized - p.qty * p.avg for p in ex.ledger.positions.values())}
        for account, value in theirs.items():
            self.checks["pnl"] += 1
            if abs(mine.get(account, 0.0) - value) > 0.05:
                self.broken("pnl", f"{account}: risk's realised less the open positions' "
                            f"cost {mine.get(account, 0.0):.2f}, the broker's {value:.2f}; fills "
                            f"priced otherwise than the broker's trades: "
                            f"{self._priced_otherwise(router)}")  # fmt: skip

    def _priced_otherwise(self, router: Any) -> list[str]:
        """Broker orders whose trades' value differs from the router's fills' value."""
        ex = self.stack.main.exchange
        value: dict[str, float] = collections.defaultdict(float)
        for t in ex.trades:
            if t.get("orderid"):
                value[str(t["orderid"])] += int(t["quantity"]) * float(t["average_price"])
        ours: dict[str, float] = collections.defaultdict(float)
        for f in router.books.fills:
            if f.account == "main" and not f.settlement:
                ours[f.broker_order_id] += f.quantity * f.price
        return [f"{oid}: {value.get(oid, 0.0):.2f} vs {ours.get(oid, 0.0):.2f}"
                for oid in sorted(set(value) | set(ours))
                if abs(value.get(oid, 0.0) - ours.get(oid, 0.0)) > 0.005][:8]  # fmt: skip


def content(account: str, o: wire.Order) -> Content:
    return (account, o.strategy, o.exchange, o.symbol, o.action, o.product, o.pricetype,
            o.quantity, round(o.price, 2), round(o.trigger_price, 2))  # fmt: skip


def request_content(account: str, f: dict[str, Any]) -> Content:
    return (
        account,
        str(f.get("strategy", "")),
        str(f.get("exchange", "")),
        str(f.get("symbol", "")),
        str(f.get("action", "")),
        str(f.get("product", "")),
        str(f.get("pricetype", "")),
        int(float(f.get("quantity", 0))),
        round(float(f.get("price") or 0), 2),
        round(float(f.get("trigger_price") or 0), 2),
    )


def _diff(a: dict[Any, int], b: dict[Any, int]) -> dict[Any, tuple[int, int]]:
    return {k: (a.get(k, 0), b.get(k, 0)) for k in set(a) | set(b) if a.get(k, 0) != b.get(k, 0)}


def _hm(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, IST).strftime("%H:%M")
