"""A master contract of a real file's size and shape, for the benchmark and the tests.

Rows as OpenAlgo's ``instruments`` returns them (strings where the server sends strings;
instrument types as its broker plugins store them: ``FUT``, ``CE``, ``PE``, ``EQ``, ``INDEX``):
NSE and BSE equities and ETFs, index and stock futures (three monthly expiries), index
options (weekly and monthly) and stock options, SENSEX on BFO, and the indices. With the
defaults it is some 100,000 rows, about what NSE+NFO+BSE+BFO hold.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

INDICES = {  # name: (exchange of derivatives, lot, strike step, spot, weekly)
    "NIFTY": ("NFO", 65, 50, 24500, True),
    "BANKNIFTY": ("NFO", 30, 100, 52000, False),
    "FINNIFTY": ("NFO", 60, 50, 23500, False),
    "MIDCPNIFTY": ("NFO", 120, 25, 12500, False),
    "SENSEX": ("BFO", 20, 100, 81000, True),
}


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    d = nxt - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - weekday) % 7)


def _code(d: date) -> str:
    return d.strftime("%d%b%y").upper()


def _expiry(d: date) -> str:
    return d.strftime("%d-%b-%y").upper()


def _row(
    ex: str,
    sym: str,
    name: str,
    itype: str,
    expiry: str,
    strike: float,
    lot: int,
    tick: float,
    token: int,
) -> dict[str, Any]:
    return {
        "symbol": sym,
        "brsymbol": sym,
        "name": name,
        "exchange": ex,
        "brexchange": ex,
        "token": str(token),
        "expiry": expiry,
        "strike": strike,
        "lotsize": lot,
        "instrumenttype": itype,
        "tick_size": tick,
    }


def master_rows(
    today: date = date(2026, 11, 20),
    stocks: int = 240,
    nse_equities: int = 2400,
    bse_equities: int = 4500,
    strikes: int = 60,
    seed: int = 7,
) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    token = 1000
    months = [
        (today.year + (today.month - 1 + k) // 12, (today.month - 1 + k) % 12 + 1) for k in range(3)
    ]
    monthly = [_last_weekday(y, m, 1) for y, m in months]  # Tuesdays
    monthly = [d if d >= today else _last_weekday(*months[-1], 1) for d in monthly]
    for name in INDICES:
        ex = "BSE_INDEX" if name == "SENSEX" else "NSE_INDEX"
        token += 1
        rows.append(_row(ex, name, name, "INDEX", "", -1, 1, 0.05, token))
    for name, (ex, lot, step, spot, weekly) in INDICES.items():
        expiries = list(monthly)
        if weekly:
            d = today + timedelta(days=(1 - today.weekday()) % 7)
            expiries += [d + timedelta(weeks=w) for w in range(5)]
        for e in sorted(set(expiries)):
            if e in monthly:
                token += 1
                rows.append(
                    _row(ex, f"{name}{_code(e)}FUT", name, "FUT", _expiry(e), -1, lot, 0.05, token)
                )
            atm = round(spot / step) * step
            for k in range(-strikes, strikes + 1):
                strike = atm + k * step
                for right in ("CE", "PE"):
                    token += 1
                    rows.append(
                        _row(
                            ex,
                            f"{name}{_code(e)}{strike}{right}",
                            name,
                            right,
                            _expiry(e),
                            float(strike),
                            lot,
                            0.05,
                            token,
                        )
                    )
    for i in range(nse_equities):
        name = f"STOCK{i:04d}"
        price = rnd.uniform(20, 5000)
        tick = 0.01 if price < 250 else (0.05 if price < 1000 else 0.10)
        token += 1
        rows.append(_row("NSE", name, name, "EQ", "", -1, 1, tick, token))
        if i < stocks:  # the F&O stocks
            lot = rnd.choice([125, 250, 300, 500, 550, 700, 1000, 1250, 1500])
            step = 5 if price < 500 else (10 if price < 2000 else 20)
            for e in monthly:
                token += 1
                rows.append(
                    _row(
                        "NFO",
                        f"{name}{_code(e)}FUT",
                        name,
                        "FUT",
                        _expiry(e),
                        -1,
                        lot,
                        0.05,
                        token,
                    )
                )
                atm = round(price / step) * step
                for k in range(-strikes // 2, strikes // 2 + 1):
                    strike = atm + k * step
                    if strike <= 0:
                        continue
                    for right in ("CE", "PE"):
                        token += 1
                        rows.append(
                            _row(
                                "NFO",
                                f"{name}{_code(e)}{strike}{right}",
                                name,
                                right,
                                _expiry(e),
                                float(strike),
                                lot,
                                0.05,
                                token,
                            )
                        )
    for i in range(bse_equities):
        token += 1
        name = f"BSTK{i:04d}"
        rows.append(_row("BSE", name, name, "EQ", "", -1, 1, 0.01, token))
    return rows
