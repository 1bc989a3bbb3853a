"""The wire protocol: every message that crosses a process boundary, in one module.

Each message is a msgspec Struct in one tagged union, encoded as msgpack arrays
(``array_like``: the fastest of msgspec's forms for these small structs on this machine).
Every message carries a header: the publishing daemon (``src``), a sequence number
(``seq``, counted per publisher *and topic* so that a subscriber to a subset of topics
can still see a gap) and a ``time.time_ns()`` stamp (``ts``) set when it is sent.

A frame on the bus is ``topic + b" " + payload``: one ZeroMQ frame, so SUB prefix
filtering works on the topic and a garbage frame can never desynchronise a reader.
Decoding is strict: a frame that does not split, does not parse or does not match a
schema raises ``WireError``; the receiving daemon counts it, logs it and drops it.
"""

from __future__ import annotations

from typing import Any, Literal, cast, get_args

import msgspec

from mytrading.domain import Action, PriceType, Product

# --------------------------------------------------------------------------- enums

# Action, PriceType and Product are the domain's closed sets (domain/__init__.py, where an author's
# values are checked against them).
# OpenAlgo's statuses (docs/openalgo.md §2) plus our own pre-broker states.
OrderStatus = Literal[
    "new", "sent", "open", "trigger pending", "complete", "cancelled", "rejected", "unknown"
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"complete", "cancelled", "rejected"})
ORDER_STATUSES: frozenset[str] = frozenset(get_args(OrderStatus))


def order_status(value: str) -> OrderStatus:
    """A broker's status as an update carries it: one outside our set (a broker's own
    "validation pending", say) is an order still working, ``open``."""
    return cast(OrderStatus, value) if value in ORDER_STATUSES else "open"


# What an approved order asks of the broker: a new order, or a change to / cancellation of
# a working one.
OrderOp = Literal["place", "modify", "cancel"]
# How a fill came about other than by a trade: "" a trade; else how the exchange settled
# an expired contract (cash at intrinsic, physical delivery of a stock derivative, the
# shares that delivery gave).
Settlement = Literal["", "cash", "physical", "delivery"]
BarClose = Literal["data", "clock", "history"]


class Msg(
    msgspec.Struct,
    array_like=True,
    gc=False,
    tag_field="t",
    kw_only=True,
    forbid_unknown_fields=True,
):
    """Header shared by every message; the publisher fills it in at send time."""

    src: str = ""
    seq: int = 0
    ts: int = 0


# ---------------------------------------------------------------------- market data


class Tick(Msg, tag="tick"):
    exchange: str
    symbol: str
    ltp: float
    bid: float
    ask: float
    bid_qty: int
    ask_qty: int
    volume: int
    oi: int = 0
    exch_ns: int = 0  # market time of the tick (the simulated clock in the demo)


class Bar(Msg, tag="bar"):
    exchange: str
    symbol: str
    tf: str  # "1m", "5m", ...
    start_ns: int  # market time the bar opened, aligned to the session open
    open: float
    high: float
    low: float
    close: float
    volume: int
    # How it closed (bars.py): "data", a tick stamped past its end; "clock", the
    # instrument quiet past its end, lag and grace; "history", from the broker's history
    closed_by: BarClose = "data"
    late_ticks: int = 0  # ticks that came while it formed but belonged to a bar handed out


class Depth(Msg, tag="depth"):
    """Five levels a side (OpenAlgo's depth mode), for instruments a strategy asked depth
    of (``BaseStrategy.subscribe_depth``); best first."""

    exchange: str
    symbol: str
    bids: list[float]
    bid_qtys: list[int]
    asks: list[float]
    ask_qtys: list[int]
    exch_ns: int = 0


class Interest(Msg, tag="interest"):
    """What one daemon needs quoted, whole: the feed subscribes the union of every
    daemon's latest set, each instrument at the highest mode asked (``messaging/interest.py``).
    Sent every few seconds and when it changes, so a restarted feed catches up."""

    wants: list[str]  # "EXCHANGE:SYMBOL:MODE", MODE one of ltp, quote, depth


# ------------------------------------------------------------------------ execution


class BracketSpec(msgspec.Struct, forbid_unknown_fields=True):
    """The exits a bracket entry gets as it fills (``BaseStrategy.bracket``): a stop at a
    price, a distance (rupees) or a fraction of the fill price, its limit ``stop_buffer``
    beyond the trigger, and an optional LIMIT target."""

    exit_action: Action
    product: Product
    stop_trigger: float | None = None
    stop_distance: float | None = None
    stop_pct: float | None = None
    stop_buffer: float = 0.0
    target: float | None = None


class OrderLink(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What the engine must still know of an order after its own restart: it travels with
    the intent and the order, is journaled by the router and comes back in its snapshot."""

    bracket: BracketSpec | None = None  # a bracket entry: the exits to place as it fills
    protective: bool = False  # a bracket exit (kept working even in quarantine)
    oco: str = ""  # the intent id of its sibling exit: one fills, the other goes
    protects: str = ""  # a bracket exit: the fill (fill_id) of the entry it protects
    roll: str = ""  # a leg of a futures roll: "OLD>NEW" (risk/roll.py)


class IntentBase(Msg, kw_only=True):
    """What every intent names: itself, its strategy, the instrument and the order's side,
    size and product. Never on the wire alone: one of the four intents below is."""

    intent_id: str  # unique per strategy run; risk refuses a repeat
    strategy: str
    exchange: str
    symbol: str
    action: Action
    quantity: int
    product: Product = "MIS"
    origin_ns: int = 0  # ts of the market event that caused it (latency tracing)
    # market-clock time it was decided (0: not said): risk refuses one older than its
    # ``max_intent_age_s`` as stale, so a decision held up on the way is never acted on late
    decided_ns: int = 0
    # the start (market ns) of the bar whose ``on_bar`` decided it (0: a tick, a fill, a
    # timer): the day's shadow pairs a live order with the backtest's on it
    bar_ns: int = 0
    # the intent whose fill it answers (a stop placed on its entry's fill; "": none): the
    # day's shadow pairs it through that intent's pair
    fill_of: str = ""
    # the router's fill number its sender had booked when it decided (0: not said): risk
    # books as far before judging it, so a stop sent the instant its entry filled is judged
    # on the position that fill made, not as an entry (risk/daemon.py, ``_book_as_far``)
    fills_seen: int = 0


class PricedBase(IntentBase, kw_only=True):
    pricetype: PriceType = "MARKET"
    price: float = 0.0
    trigger_price: float = 0.0


class PlaceIntent(PricedBase, tag="place"):
    """A new order a strategy wants; nothing reaches a broker until risk turns it into an
    ``Order``. ``quantity`` 0 with ``sizing``: risk sizes it from margin (conservative, A,
    ...)."""

    sizing: str = ""
    # with ``sizing``: the margin of one lot of this order together with the rest of its
    # multi-leg set (a builder strategy's legs), so the set, not this leg, is sized; risk
    # never sizes by less than this order's own margin
    sizing_per_lot: float = 0.0
    link: OrderLink | None = None


class AmendIntent(PricedBase, tag="amend"):
    """A change to a working order (``ref_intent_id``): its new terms, restated whole as
    OpenAlgo's ``modifyorder`` takes them; risk judges them as it judges a new order's."""

    ref_intent_id: str


class CancelIntent(IntentBase, tag="cancel"):
    """Cancel a working order (``ref_intent_id``, every child of it if it was split); the
    instrument, side and size are the working order's, for the books and the audit."""

    ref_intent_id: str


class RollIntent(IntentBase, tag="roll"):
    """A futures roll: close this position (``symbol``, ``action``, ``quantity`` at MARKET)
    and open the same lots in ``roll_to``; risk approves or refuses the pair as one
    (risk/roll.py)."""

    roll_to: str


# What a strategy (or the webhook, or signals) sends to risk: one of four commands, each
# with only the fields it needs.
Intent = PlaceIntent | AmendIntent | CancelIntent | RollIntent
# An intent that carries terms a broker order is made of: what the pre-trade rules judge.
PricedIntent = PlaceIntent | AmendIntent


class Order(Msg, tag="order"):
    """An intent that risk approved: the only thing the router will send."""

    order_id: str  # our deterministic client id, derived from the intent id
    intent_id: str
    strategy: str
    exchange: str
    symbol: str
    action: Action
    quantity: int
    pricetype: PriceType
    product: Product
    price: float
    trigger_price: float
    approved_by: str
    origin_ns: int = 0
    op: OrderOp = "place"
    ref_order_id: str = ""  # modify/cancel: our id of the working order
    part: int = 0  # a child of a split intent: 1..parts (0: not split)
    parts: int = 1
    exit: bool = False  # it reduces a position: the router sends it ahead of entries
    link: OrderLink | None = None  # the engine's, carried through unchanged
    account: str = "main"  # the OpenAlgo account it goes to (mytrading/domain/accounts.py)
    bar_ns: int = 0  # the intent's: the bar that decided it (0: not a bar's decision)
    fill_of: str = ""  # the intent's: the intent whose fill it answers
    decided_ns: int = 0  # the intent's: when its strategy decided (market clock; 0: not said)


class OrderUpdate(Msg, tag="order_update"):
    order_id: str
    intent_id: str
    strategy: str
    exchange: str
    symbol: str
    action: Action
    quantity: int
    status: OrderStatus
    broker_order_id: str = ""
    filled_qty: int = 0
    avg_price: float = 0.0
    reason: str = ""
    origin_ns: int = 0
    sent_ns: int = 0  # when the router handed the order to the broker adapter
    part: int = 0  # of a split intent: which child (see Order)
    parts: int = 1
    account: str = "main"


class Fill(Msg, tag="fill"):
    fill_no: int  # router-wide running number: lets a reader prove it saw every fill
    fill_id: str
    order_id: str
    broker_order_id: str
    strategy: str
    exchange: str
    symbol: str
    product: Product
    action: Action
    quantity: int
    price: float
    exch_ns: int
    account: str = "main"
    # not a trade: "cash" (an expiring contract closed at its settlement price),
    # "physical" (... of a physically settled one), "delivery" (the shares it leaves)
    settlement: Settlement = ""


class PositionSnapshot(Msg, tag="position"):
    strategy: str
    exchange: str
    symbol: str
    product: Product
    quantity: int
    avg_price: float
    realized_pnl: float
    unrealized_pnl: float
    ltp: float
    account: str = "main"


class BrokerPosition(msgspec.Struct, array_like=True, gc=False, forbid_unknown_fields=True):
    exchange: str
    symbol: str
    product: str
    quantity: int
    avg_price: float


# ----------------------------------------------------------------- risk and control


class Funds(Msg, tag="funds"):
    """The broker's funds, polled by the router (OpenAlgo ``funds``)."""

    available: float  # availablecash
    utilised: float  # utiliseddebits
    realized: float
    unrealized: float
    account: str = "main"


class MarginQuote(Msg, tag="margin_quote"):
    """The broker's margin for one lot (OpenAlgo ``margin``), polled by the router for the
    instruments it has traded; risk prefers it to its table while it is fresh."""

    exchange: str
    symbol: str
    action: Action
    product: Product
    per_lot: float


class RiskEvent(Msg, tag="risk_event"):
    strategy: str
    kind: str  # e.g. "rejected", "kill_switch"
    rule: str  # which rule fired
    reason: str
    intent_id: str = ""
    threshold: float = 0.0
    value: float = 0.0
    action: str = ""
    order_ids: list[str] = msgspec.field(default_factory=list)
    # kind "control", action "params" | "enable": the parameters, JSON (``Command.ref``
    # as the command layer gave it: the day's shadow replays the change)
    detail: str = ""


class ReconEvent(Msg, tag="recon"):
    """A difference between our books and the broker's, naming both sides."""

    exchange: str
    symbol: str
    product: str
    ours: int  # position: net quantity; trade: filled quantity; order: 1 if we have it
    broker: int
    action: str  # "external": the broker's difference, held apart from every strategy
    kind: Literal["position", "order", "trade"] = "position"
    order_id: str = ""  # the broker's order id (order and trade kinds)
    detail: str = ""
    account: str = "main"


class Status(Msg, tag="status"):
    name: str
    pid: int
    state: str  # "starting" | "running" | "degraded" | "stopping"
    started_ns: int
    uptime_s: float
    msgs_in: int
    msgs_out: int
    errors: int
    gaps: int
    lat_p50_us: float
    lat_p99_us: float
    peers_down: list[str] = msgspec.field(default_factory=list)
    detail: dict[str, Any] = msgspec.field(default_factory=dict)


class Command(Msg, tag="command"):
    """To risk, the keeper of trading states: the kill switch, one book's state, or (from
    the router) one of a strategy's orders unknown at the broker and, later, resolved:
    the strategy is halted meanwhile and resumes by itself (risk/state.py, ``Hold``)."""

    command: Literal["kill_switch", "state", "stop", "unknown", "strategy"]
    # kill_switch: "on" | "off" | "flatten"; state: "active" | "reducing" | "halted";
    # stop: one strategy halted and its positions closed (value unused); unknown: "open"
    # | "resolved" | "census" (the router's start: ``ref`` every order id unknown now,
    # comma-separated; a hold for any other is released); strategy: "enable" | "disable"
    # | "params", config/strategies.toml changed for one strategy by the command layer:
    # risk says it to the engine (a ``RiskEvent`` of kind "control") and takes its
    # schedule again
    value: str
    reason: str = ""
    issued_by: str = ""
    target: str = ""  # state and unknown: a strategy, or "" / "*" for the whole stack
    # unknown: our order id (census: all of them, comma-separated); strategy params: what
    # changed, JSON {"before": {...}, "after": {...}} (risk's event keeps it: ``detail``)
    ref: str = ""


# ------------------------------------------------------------------ request / reply


class BrokerQuery(Msg, tag="broker_query"):
    kind: Literal["positions", "fills", "funds", "strategy_positions", "orders", "adopt"]
    since_fill_no: int = 0
    account: str = "main"  # positions, funds and adopt: whose
    # adopt (the reconciler): our unknown order ``order_id`` is the broker's ``broker_id``
    order_id: str = ""
    broker_id: str = ""


class WorkingOrder(msgspec.Struct, forbid_unknown_fields=True):
    """An order not yet final at the router, for a daemon catching up after a restart."""

    order: Order
    status: OrderStatus
    filled_qty: int = 0
    avg_price: float = 0.0
    broker_order_id: str = ""
    sent_ns: int = 0  # market time it was handed to the broker (0: not yet)
    done_ns: int = 0  # market time it became final (0: not final, or not known)


class BrokerReply(Msg, tag="broker_reply"):
    ok: bool
    error: str = ""
    positions: list[BrokerPosition] = msgspec.field(default_factory=list)
    fills: list[Fill] = msgspec.field(default_factory=list)
    last_fill_no: int = 0
    funds: Funds | None = None
    snapshots: list[PositionSnapshot] = msgspec.field(default_factory=list)
    working: list[WorkingOrder] = msgspec.field(default_factory=list)
    # strategy_positions: positions the broker's book did not confirm at the router's
    # start, "<account>|<exchange>|<symbol>|<product>": nothing acts on them (recovery.py)
    unconfirmed: list[str] = msgspec.field(default_factory=list)
    # accounts whose position book the router has not read since its start: their
    # positions are in ``unconfirmed`` until it has
    unread: list[str] = msgspec.field(default_factory=list)


Message = (
    Tick
    | Bar
    | Depth
    | Interest
    | PlaceIntent
    | AmendIntent
    | CancelIntent
    | RollIntent
    | Order
    | OrderUpdate
    | Fill
    | PositionSnapshot
    | Funds
    | MarginQuote
    | RiskEvent
    | ReconEvent
    | Status
    | Command
    | BrokerQuery
    | BrokerReply
)

# every message type, read from the union itself so that a new one cannot be left out
MESSAGE_TYPES: tuple[type[Msg], ...] = get_args(Message)


class WireError(ValueError):
    """A frame that is not a valid message; carries the topic when it could be read."""

    def __init__(self, reason: str, topic: str = "") -> None:
        super().__init__(reason)
        self.topic = topic


_SEP = b" "
_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def encode(topic: str, msg: Msg) -> bytes:
    """One frame: the topic, a space, the msgpack body. A topic holding a space would be
    split there by every reader (names follow ``names.IDENT`` so none should): refused."""
    head = topic.encode()
    if _SEP in head:
        raise WireError(f"a topic cannot hold a space: {topic!r}")
    return head + _SEP + _encoder.encode(msg)


def decode(frame: bytes) -> tuple[str, Msg]:
    """Split and strictly decode one frame, or raise WireError."""
    idx = frame.find(_SEP)
    if idx <= 0:
        raise WireError("frame has no topic separator")
    try:
        topic = frame[:idx].decode("ascii")
    except UnicodeDecodeError as exc:
        raise WireError("topic is not ASCII") from exc
    try:
        return topic, _decoder.decode(frame[idx + 1 :])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise WireError(f"bad payload: {exc}", topic) from exc


_raw = msgspec.msgpack.Decoder()
# per intent tag, where its strategy and id sit in its array (the tag first, then the
# fields in the struct's own order, which puts a subclass's defaults first)
_IDENTITY_AT: dict[str, tuple[int, int]] = {
    str(cls.__struct_config__.tag): (
        1 + cls.__struct_fields__.index("strategy"),
        1 + cls.__struct_fields__.index("intent_id"),
    )
    for cls in get_args(Intent)
}


def intent_identity(frame: bytes) -> tuple[str, str] | None:
    """(strategy, intent_id) of an intent frame that does not decode strictly, when those
    two can still be read, so the receiver can refuse that intent by name; else None."""
    idx = frame.find(_SEP)
    try:
        raw = _raw.decode(frame[idx + 1 :]) if idx > 0 else None
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        return None
    at = _IDENTITY_AT.get(raw[0])
    if at is None or len(raw) <= max(at):
        return None
    strategy, intent_id = raw[at[0]], raw[at[1]]
    if isinstance(strategy, str) and isinstance(intent_id, str) and strategy and intent_id:
        return strategy, intent_id
    return None


def encode_body(msg: Msg) -> bytes:
    """A bare message, for request/reply sockets where there is no topic."""
    return _encoder.encode(msg)


def decode_body(data: bytes) -> Msg:
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise WireError(f"bad payload: {exc}") from exc


# ------------------------------------------------------------------------- topics


def tick_topic(exchange: str, symbol: str) -> str:
    return f"md.tick.{exchange}.{symbol}"


def bar_topic(tf: str, exchange: str, symbol: str) -> str:
    return f"md.bar.{tf}.{exchange}.{symbol}"


def exact(topic: str) -> str:
    """A subscription prefix that matches this topic only (not NIFTY vs NIFTYNXT50)."""
    return topic + " "


def depth_topic(exchange: str, symbol: str) -> str:
    return f"md.depth.{exchange}.{symbol}"


def interest_topic(daemon: str) -> str:
    return f"ctl.interest.{daemon}"


def status_topic(daemon: str) -> str:
    return f"sys.status.{daemon}"
