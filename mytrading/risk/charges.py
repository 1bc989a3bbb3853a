"""Indian F&O and equity charges per trade, as a contract note shows them.

Rates come from ``config/charges.toml`` by trade date. Each component is computed on
the trade's turnover and rounded to the paisa, as brokers print them:
brokerage (flat per order; for futures capped at a fraction of turnover), STT (sell side),
exchange
transaction charges, SEBI turnover fee, stamp duty (buy side) and GST at 18 % on brokerage,
exchange charges and the SEBI fee. Equity splits delivery (CNC: STT on both sides,
stamp 0.015 %) from intraday (MIS: STT on the sell, stamp 0.003 %), rounds STT to the rupee
as equity contract notes do, and adds the depository (DP) charge once per scrip per day
on which a delivery sell is made (``fill``). Not included: IPFT and clearing charges, a few
rupees per crore that some brokers show separately.
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, NamedTuple

CRORE = Decimal(10_000_000)
PAISA = Decimal("0.01")


def _d(x: float | str) -> Decimal:
    return Decimal(str(x))


def _paise(x: Decimal) -> Decimal:
    """Half up to the paisa, as contract notes round (exact: no binary-float halves)."""
    return x.quantize(PAISA, rounding=ROUND_HALF_UP)


class Charges(NamedTuple):
    """One fill's charges, or a sum of them, in rupees (each a whole number of paise).

    A named tuple: made for every fill and added up by risk and the results, its
    construction is a fifth of a frozen dataclass's. Sums are worked in whole paise (exact,
    and the same floats as rounding each rupee sum to the paisa)."""

    brokerage: float
    stt: float
    exchange: float
    sebi: float
    stamp: float
    gst: float
    dp: float = 0.0  # the depository charge of a delivery sell (equity)

    @property
    def total(self) -> float:
        b, stt, e, sebi, stamp, gst, dp = self
        return round((b + stt + e + sebi + stamp + gst + dp) * 100) / 100

    def __add__(self, o: tuple[object, ...]) -> Charges:
        # a tuple's + concatenates: a sum of charges is their fields added, in whole paise
        if not isinstance(o, Charges):
            return NotImplemented
        b, stt, e, sebi, stamp, gst, dp = self
        b2, stt2, e2, sebi2, stamp2, gst2, dp2 = o
        return _new(
            Charges,
            (
                round((b + b2) * 100) / 100,
                round((stt + stt2) * 100) / 100,
                round((e + e2) * 100) / 100,
                round((sebi + sebi2) * 100) / 100,
                round((stamp + stamp2) * 100) / 100,
                round((gst + gst2) * 100) / 100,
                round((dp + dp2) * 100) / 100,
            ),
        )


_new = tuple.__new__


ZERO = Charges(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class ChargeTable:
    def __init__(self, brokerage: dict[str, float], periods: list[dict[str, Any]]) -> None:
        self._given = (brokerage, periods)  # made again from them when unpickled
        self.per_order = _d(brokerage["per_order"])
        self.fut_pct_cap = _d(brokerage["fut_pct_cap"])
        self.gst_rate = _d(brokerage["gst"])
        self.sebi_rate = _d(brokerage["sebi_per_crore"]) / CRORE
        self.eq_delivery = _d(brokerage.get("eq_delivery_per_order", 0))
        self.eq_intraday_cap = _d(brokerage.get("eq_intraday_pct_cap", brokerage["fut_pct_cap"]))
        self.dp_per_sell = _d(brokerage.get("dp_per_scrip_sell", 0))
        self.periods = sorted(
            ((date.fromisoformat(str(p["from"])), p) for p in periods), key=lambda x: x[0]
        )
        if not self.periods:
            raise ValueError("charges: no [[period]] of rates")
        self._recent: dict[tuple[str, str, str, int, float, date, str], Charges] = {}
        self._decimal_rates: dict[date, dict[str, Decimal]] = {}
        # the same rates as exact integer ratios, for fills in whole paise (``_fo_paise``)
        self._ratios: dict[int, dict[str, tuple[int, int]]] = {}  # by id of a period's rates
        self._by_period: dict[int, dict[str, Decimal]] = {}  # id of a period's row -> its rates
        self._per_order_paise = int(self.per_order * 100)
        self._fut_cap = self.fut_pct_cap.as_integer_ratio()
        self._sebi = self.sebi_rate.as_integer_ratio()
        self._gst = self.gst_rate.as_integer_ratio()

    def __reduce__(self) -> tuple[type[ChargeTable], tuple[dict[str, float], list[dict[str, Any]]]]:
        """Pickled as what made it (a sweep hands its workers the table): the compiled
        build's class is made by calling it, and its caches are rebuilt as they fill."""
        return (ChargeTable, self._given)

    def rates(self, day: date) -> dict[str, Any]:
        current = None
        for start, p in self.periods:
            if start <= day:
                current = p
        if current is None:
            raise ValueError(f"charges: no rates for {day} (first period {self.periods[0][0]})")
        return current

    def fill(
        self,
        book: str,
        exchange: str,
        symbol: str,
        kind: str,
        action: str,
        qty: int,
        price: float,
        day: date,
        product: str,
        dp_days: dict[tuple[str, str, str], date],
    ) -> Charges:
        """``trade``, plus the DP charge on ``book``'s first delivery sell of ``symbol``
        that day (the depository debits it once per scrip per day, whatever the fills).
        ``dp_days`` is the caller's record of the days it was charged: each ledger keeps
        its own (risk's books and a backtest's results both ask about the same fills)."""
        c = self.trade(exchange, kind, action, qty, price, day, product)
        if kind == "EQ" and product == "CNC" and action == "SELL" and self.dp_per_sell:
            key = (book, exchange, symbol)
            if dp_days.get(key) != day:
                dp_days[key] = day
                dp = _paise(self.dp_per_sell)
                gst = float(_paise(dp * self.gst_rate))
                c = c + Charges(0.0, 0.0, 0.0, 0.0, 0.0, gst, float(dp))
        return c

    def of_fill(
        self, f: Any, kind: str, day: date, dp_days: dict[tuple[str, str, str], date]
    ) -> Charges:
        """``fill`` for a ``wire.Fill`` of an instrument of ``kind``, booked by its strategy
        (a settlement's own charges for a settlement)."""
        how = getattr(f, "settlement", "")
        if how:
            signed = f.quantity if f.action == "BUY" else -f.quantity
            held = -signed if how != "delivery" else signed  # the position it settles
            value = f.price * f.quantity
            if how == "physical":
                value = 0.0  # the delivery pays the STT
            return settlement_charges(self, kind, how == "delivery", held, value, day)
        return self.fill(
            f.strategy,
            f.exchange,
            f.symbol,
            kind,
            f.action,
            f.quantity,
            f.price,
            day,
            f.product,
            dp_days,
        )

    def trade(
        self,
        exchange: str,
        kind: str,
        action: str,
        qty: int,
        price: float,
        day: date,
        product: str = "MIS",
    ) -> Charges:
        """Charges of one executed order (or fill) of ``qty`` at ``price``; the last few
        are remembered (risk and a backtest's results each ask for every fill)."""
        args = (exchange, kind, action, qty, price, day, product)
        got = self._recent.get(args)
        if got is None:
            got = self._recent[args] = self._trade(args)
            if len(self._recent) > 64:
                del self._recent[next(iter(self._recent))]
        return got

    def _trade(self, args: tuple[str, str, str, int, float, date, str]) -> Charges:
        """``trade``'s arguments, as it caches them."""
        exchange, kind, action, qty, price, day, product = args
        r = self._decimal_rates.get(day)
        if r is None:
            # one dict per period of rates, each day pointing at its period's (a backtest
            # meets a new day every few fills)
            period = self.rates(day)
            r = self._by_period.get(id(period))
            if r is None:
                r = self._by_period[id(period)] = {
                    k: _d(v) for k, v in period.items() if k != "from"
                }
            self._decimal_rates[day] = r
        paise = round(price * 100)
        if paise / 100 == price and kind != "EQ":  # a price in whole paise: integers
            return self._fo_paise(exchange, kind, action, qty * paise, day, r)
        turnover = _d(qty) * _d(price)
        if kind == "EQ":
            return self._equity(exchange, action, turnover, r, product == "CNC")
        option = kind in ("CE", "PE")
        seg = "opt" if option else "fut"
        brokerage = self.per_order if option else min(self.per_order, turnover * self.fut_pct_cap)
        brokerage = _paise(brokerage)
        zero = Decimal(0)
        stt = _paise(turnover * r[f"stt_{seg}_sell"]) if action == "SELL" else zero
        venue = "bse" if exchange == "BFO" else "nse"
        exch = _paise(turnover * r[f"{venue}_{seg}"])
        sebi = _paise(turnover * self.sebi_rate)
        stamp = _paise(turnover * r[f"stamp_{seg}_buy"]) if action == "BUY" else zero
        gst = _paise((brokerage + exch + sebi) * self.gst_rate)
        return Charges(*(float(x) for x in (brokerage, stt, exch, sebi, stamp, gst)))

    def _fo_paise(
        self,
        exchange: str,
        kind: str,
        action: str,
        turnover: int,
        day: date,
        r: dict[str, Decimal],
    ) -> Charges:
        """``_trade`` of a futures or options fill whose turnover is a whole number of paise:
        the same contract-note arithmetic in integers (each rate an exact ratio of two
        integers, each component rounded half up to the paisa), several times faster than
        in ``Decimal`` and equal to it for every such fill (``tests/risk/test_charges.py``
        compares them)."""
        f = self._ratios.get(id(r))  # per period, as ``r`` is
        if f is None:
            f = self._ratios[id(r)] = {k: v.as_integer_ratio() for k, v in r.items()}
        seg = "opt" if kind in ("CE", "PE") else "fut"
        per = self._per_order_paise
        if seg == "opt":
            brokerage = per
        else:
            n, d = self._fut_cap
            brokerage = per if per * d <= turnover * n else _times(turnover, self._fut_cap)
        stt = _times(turnover, f[f"stt_{seg}_sell"]) if action == "SELL" else 0
        exch = _times(turnover, f[f"{'bse' if exchange == 'BFO' else 'nse'}_{seg}"])
        sebi = _times(turnover, self._sebi)
        stamp = _times(turnover, f[f"stamp_{seg}_buy"]) if action == "BUY" else 0
        gst = _times(brokerage + exch + sebi, self._gst)
        return Charges(brokerage / 100, stt / 100, exch / 100, sebi / 100, stamp / 100, gst / 100)

    def _equity(
        self,
        exchange: str,
        action: str,
        turnover: Decimal,
        r: dict[str, Decimal],
        delivery: bool,
    ) -> Charges:
        zero = Decimal(0)
        if delivery:
            brokerage = _paise(self.eq_delivery)
            stt = _rupee(turnover * r["stt_eq_delivery"])
            stamp = _paise(turnover * r["stamp_eq_delivery_buy"]) if action == "BUY" else zero
        else:
            brokerage = _paise(min(self.per_order, turnover * self.eq_intraday_cap))
            stt = _rupee(turnover * r["stt_eq_intraday_sell"]) if action == "SELL" else zero
            stamp = _paise(turnover * r["stamp_eq_intraday_buy"]) if action == "BUY" else zero
        exch = _paise(turnover * r["bse_eq" if exchange == "BSE" else "nse_eq"])
        sebi = _paise(turnover * self.sebi_rate)
        gst = _paise((brokerage + exch + sebi) * self.gst_rate)
        return Charges(*(float(x) for x in (brokerage, stt, exch, sebi, stamp, gst)))


def settlement_charges(
    table: ChargeTable, kind: str, physical: bool, signed_qty: int, value: float, day: date
) -> Charges:
    """What settling a position at expiry costs (docs/options.md): no brokerage, exchange
    fee or stamp on a cash settlement; STT on an exercised option, the buyer's, at
    ``stt_opt_exercise`` of its intrinsic value (``value``: intrinsic x quantity); a
    physically settled stock contract pays delivery STT (``stt_eq_delivery``) on its
    settlement value (``value``: the shares' value), buyer and seller alike."""
    r = table.rates(day)
    if physical:
        return Charges(0.0, float(_rupee(_d(value) * _d(r["stt_eq_delivery"]))), 0.0, 0.0, 0.0, 0.0)
    if kind in ("CE", "PE") and signed_qty > 0 and value > 0:
        return Charges(
            0.0, float(_paise(_d(value) * _d(r["stt_opt_exercise"]))), 0.0, 0.0, 0.0, 0.0
        )
    return Charges(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _times(paise: int, rate: tuple[int, int]) -> int:
    """``paise`` x ``rate`` (an exact ratio), non-negative, rounded half up to a paisa."""
    n, d = rate
    return (2 * paise * n + d) // (2 * d)


def _rupee(x: Decimal) -> Decimal:
    return x.quantize(Decimal(1), rounding=ROUND_HALF_UP)


def load_charges(config_dir: Path) -> ChargeTable:
    data = tomllib.loads((config_dir / "charges.toml").read_text())
    return ChargeTable(data["brokerage"], data["period"])
