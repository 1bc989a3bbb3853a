"""What the router tells the bus, and when: order updates and fills, in the order they
happened, each fill only once it is on the disk.

* A fill is journaled before anyone hears of it, then booked, then published
  (``record``). While the disk refuses the journal, a fill is booked but held
  (``unflushed``): a restart would number it again, so nobody may hear of it before it is
  written; the router's journal retry hands them out, in order, once it is
  (``release_unflushed``).
* A new router process holds everything back (``held``) until its subscribers have
  reconnected (a PUB drops what it sends before they are there), then sends the journal's
  fills again and what it held (``release``); readers drop the fill numbers they have.
* The last fill number published is the router's heartbeat's ``last_fill_no``: a reader
  that missed the day's last fill sees it even when no later fill comes.

A part the router's shell (``router/daemon.py``) composes: given the publisher, the order
table (its journal) and the books.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from mytrading.messaging import wire
from mytrading.router.books import Books
from mytrading.router.table import OrderTable


class Publishing(Protocol):
    """Where the router publishes (its host's PUB)."""

    def publish(self, topic: str, msg: wire.Msg) -> None: ...


class Publications:
    def __init__(
        self,
        pub: Publishing,
        table: OrderTable,
        books: Books,
        journal_down: Callable[[], bool],
        crash: Callable[[str], None],
    ) -> None:
        self.pub = pub
        self.table = table
        self.books = books
        self.journal_down = journal_down  # says the fault once (an alert) and whether it is
        self.crash = crash  # fault injection for the journal tests (``MT_ROUTER_CRASH_AT``)
        # until subscribers have reconnected to this new process (``release``)
        self.held: list[tuple[str, wire.Msg]] | None = []
        self.unflushed: list[wire.Fill] = []  # booked while the disk refused them
        self.published_fill_no = 0  # the last fill on the bus (held ones are not)

    def record(self, fill: wire.Fill) -> None:
        """A numbered fill: journaled before anyone hears of it, booked, published."""
        self.table.fill(fill)
        self.crash("fill")
        self.books.book(fill)
        if self.table.journal.fault or self.unflushed:
            # not on the disk: a restart would number it again, so nobody hears of it
            # before it is (``release_unflushed``)
            self.unflushed.append(fill)
            self.journal_down()
            return
        self.out(f"exec.fill.{fill.strategy}", fill)

    def release_unflushed(self) -> int:
        """The disk took the journal again: the fills held meanwhile go out, in order."""
        fills, self.unflushed = self.unflushed, []
        for f in fills:
            self.out(f"exec.fill.{f.strategy}", f)
        return len(fills)

    def release(self, journaled_fills: list[wire.Fill]) -> int:
        """Subscribers are back: publish the journal's fills (readers drop the numbers they
        have; a crash may have cut the last one's publication), then what was held back,
        in order; from now on everything goes at once. How many were held."""
        held, self.held = self.held or [], None
        for f in journaled_fills:
            self.send(f"exec.fill.{f.strategy}", f)
        for topic, msg in held:
            self.send(topic, msg)
        return len(held)

    def out(self, topic: str, msg: wire.Msg) -> None:
        """An order's update or a fill: now, or held while subscribers reconnect."""
        if self.held is not None:
            self.held.append((topic, msg))
        else:
            self.send(topic, msg)

    def send(self, topic: str, msg: wire.Msg) -> None:
        """Publish; a fill's number is then the last published."""
        self.pub.publish(topic, msg)
        if isinstance(msg, wire.Fill) and msg.fill_no > self.published_fill_no:
            self.published_fill_no = msg.fill_no
