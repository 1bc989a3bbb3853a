"""Option symbol resolution the way OpenAlgo does it (``services/option_symbol_service.py``).

ATM is the listed strike nearest the underlying's LTP; for CE, ITMn is n strikes below
ATM and OTMn n above; for PE the other way round. An index on NSE_INDEX/BSE_INDEX routes
to NFO/BFO. Expiry dates are ``DDMMMYY`` (e.g. 25NOV26).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from mytrading.domain.refdata import RefData, RefDataError, Underlying, option_symbol
from mytrading.options import chain

_OFFSET = re.compile(r"^(ATM|ITM([1-9]\d?)|OTM([1-9]\d?))$")


class OptionError(ValueError):
    """An option request OpenAlgo would answer with 400."""


def underlying_for(refdata: RefData, name: str, exchange: str) -> Underlying:
    try:
        u = refdata.underlying(name)
    except RefDataError:
        raise OptionError(f"Underlying {name} not found") from None
    if exchange not in (u.spot_exchange, u.fo_exchange):
        raise OptionError(f"{name} options trade on {u.fo_exchange}, not {exchange}")
    return u


def parse_expiry(s: str) -> date:
    try:
        return datetime.strptime(s.strip().title(), "%d%b%y").date()
    except ValueError:
        raise OptionError(f"Invalid expiry_date {s!r}; expected DDMMMYY, e.g. 25NOV26") from None


def atm_strike(u: Underlying, ltp: float) -> float:
    return chain.atm_strike(ltp, u.strike_step)


def strike_for(u: Underlying, ltp: float, offset: str, right: str) -> float:
    m = _OFFSET.match(offset.upper())
    if not m:
        raise OptionError(f"Invalid offset {offset!r}; use ATM, ITM1-ITM50 or OTM1-OTM50")
    if m.group(1) != "ATM" and int(m.group(2) or m.group(3)) > 50:
        raise OptionError(f"Invalid offset {offset!r}; at most 50 strikes from ATM")
    return chain.strike_for(ltp, u.strike_step, right, offset.upper())  # the selectors' rule


def symbol_for(u: Underlying, expiry: date, strike: float, right: str) -> str:
    return option_symbol(u.name, expiry, strike, right)
