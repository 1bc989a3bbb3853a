"""The stack's identifiers, each a frozen value that prints and parses itself.

* ``Book``: whose position a fill moves: a strategy's own (``sma``) or a follower
  account's copy of it (``sma@acct2``).
* ``OrderId``: our id of one order: ``<strategy>.<intent>``; a follower's copy adds
  ``@<account>``; the ``k``-th part of an order split at the exchange's freeze quantity
  adds ``.<k>`` (``sma.r1-7@acct2.2``).
* A futures roll's two legs are intents of their own, ``<intent>~1`` (close the old
  contract) and ``<intent>~2`` (open the new one): ``roll_leg`` and ``roll_of``.
* ``Instrument``: ``<exchange>:<symbol>``.

Strategy and account names never hold ``.``, ``@``, ``~`` or ``:`` (``domain/names.py``), and
intent ids are the engine's ``<run>-<n>`` or the webhook service's own, so every form reads
back into what printed it. Parsing and printing live only here.
"""

from __future__ import annotations

import functools

import msgspec
from msgspec.structs import replace

LEG = "~"


class Book(msgspec.Struct, frozen=True, gc=False):
    strategy: str
    account: str = ""  # "": the strategy's own book, on its lead account

    def __str__(self) -> str:
        return f"{self.strategy}@{self.account}" if self.account else self.strategy

    @classmethod
    def parse(cls, text: str) -> Book:
        strategy, _, account = text.partition("@")
        return cls(strategy, account)

    @property
    def follower(self) -> bool:
        return bool(self.account)


class OrderId(msgspec.Struct, frozen=True, gc=False):
    strategy: str
    intent: str
    account: str = ""  # a follower account's copy
    child: int = 0  # 1..n: one part of an order split at the freeze quantity; 0: whole

    def __str__(self) -> str:
        out = f"{self.strategy}.{self.intent}"
        if self.account:
            out += f"@{self.account}"
        return f"{out}.{self.child}" if self.child else out

    @classmethod
    def parse(cls, text: str) -> OrderId:
        """Raises ``ValueError`` for text that is not an order id."""
        strategy, dot, rest = text.partition(".")
        if not dot or not strategy or not rest:
            raise ValueError(f"not an order id: {text!r} (want <strategy>.<intent>)")
        child = 0
        head, dot, tail = rest.rpartition(".")
        if dot and tail.isdigit():
            rest, child = head, int(tail)
        intent, _, account = rest.partition("@")
        if not intent:
            raise ValueError(f"not an order id: {text!r} (no intent)")
        return cls(strategy, intent, account, child)

    def part(self, k: int) -> OrderId:
        """The ``k``-th part (from 1) of this order split in several."""
        return replace(self, child=k)

    @property
    def whole(self) -> OrderId:
        """The order a part belongs to (itself when whole)."""
        return replace(self, child=0) if self.child else self

    def copy_for(self, account: str) -> OrderId:
        """A follower account's copy of this order."""
        return replace(self, account=account)

    @property
    def book(self) -> Book:
        return Book(self.strategy, self.account)


@functools.lru_cache(maxsize=4096)
def intent_of(order_id: str) -> str:
    """The intent id an order id carries ("" for text that is not an order id); the
    latest few kept (each order's updates and fills all ask)."""
    try:
        return OrderId.parse(order_id).intent
    except ValueError:
        return ""


def roll_leg(intent: str, leg: int) -> str:
    """The intent id of a roll's leg: 1 closes the old contract, 2 opens the new one."""
    return f"{intent}{LEG}{leg}"


def roll_of(intent: str) -> str:
    """The roll intent a leg's intent id belongs to ("" when it is not a leg)."""
    head, sep, leg = intent.rpartition(LEG)
    return head if sep and leg in ("1", "2") else ""


class Instrument(msgspec.Struct, frozen=True, gc=False):
    exchange: str
    symbol: str

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}"

    @classmethod
    def parse(cls, text: str) -> Instrument:
        exchange, sep, symbol = text.partition(":")
        if not sep or not exchange or not symbol:
            raise ValueError(f"not an instrument: {text!r} (want <exchange>:<symbol>)")
        return cls(exchange, symbol)
