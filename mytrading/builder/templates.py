"""Ready builder files for ``main.py strategy new NAME --template T``: the common option
structures, each a complete strategy that trades on the simulator as written. Every key
is in docs/options.md; the comments say what a trader would change first."""

from __future__ import annotations

import re

COMMON = """\
# {name}: {title}.
# A builder strategy (docs/options.md lists every key): enable it with
# MT_STRATEGIES=...,{name}; backtest it: python3 main.py backtest --strategy {name}
underlying = "NIFTY"
product = "MIS"              # MIS (intraday, squared off) or NRML (carried overnight)

[schedule]
days = "{days}"                # any | expiry (the underlying's expiry day only) | non_expiry
entry = "{entry}"              # IST, market time: legs are chosen and sent from here
last_entry = "14:30"         # no entry or re-entry after this
squareoff = "15:10"          # every leg closed, working stops cancelled

[sizing]
mode = "fixed"               # fixed | conservative | balanced | aggressive (40/65/80 % of margin)
lots = 1                     # fixed: sets of the legs below

[exits]
max_loss = {max_loss}             # rupees, the whole strategy since entry (0: off)
max_profit = {max_profit}           # rupees (0: off)
trail_after = 0              # trailing stop: once P&L reaches this ...
trail_by = 0                 # ... exit when it falls this far from its peak
stop_to_cost = {stop_to_cost}  # a leg's stop fills: the other legs exit at their cost
# supertrend = {{ timeframe = "5m", period = 10, multiplier = 3.0, exit_on = "flip" }}

[reentry]
count = {reentry}                    # re-enter a stopped leg, at most this many times a day
delay = 120                  # seconds after its stop
"""

LEG = """
[[legs]]
instrument = "{instrument}"            # CE | PE | FUT
action = "{action}"
lots = 1
expiry = "{expiry}"           # weekly | next_week | monthly | next_month
{strike}{exits}"""


def _leg(
    instrument: str,
    action: str,
    strike: str,
    expiry: str = "weekly",
    stop_pct: float | None = None,
    target_pct: float | None = None,
) -> str:
    exits = ""
    if stop_pct is not None:
        exits += f"stop_pct = {stop_pct:g}                # % of the fill price against the leg\n"
    if target_pct is not None:
        exits += f"target_pct = {target_pct:g}              # % of the fill price in its favour\n"
    return LEG.format(
        instrument=instrument, action=action, expiry=expiry, strike=strike + "\n", exits=exits
    )


_ATM = 'strike = "ATM"               # ATM, ATM+n, ATM-n, ITMn, OTMn, or a number'

TEMPLATES: dict[str, tuple[str, dict[str, object], list[str]]] = {
    "straddle": (
        "sell the ATM call and put of the weekly expiry, a stop on each leg",
        {"max_loss": 3000, "max_profit": 0, "stop_to_cost": "true", "reentry": 1},
        [
            _leg("CE", "SELL", _ATM, stop_pct=25),
            _leg("PE", "SELL", _ATM, stop_pct=25),
        ],
    ),
    "strangle": (
        "sell the 0.25-delta call and put of the weekly expiry",
        {"max_loss": 3000, "max_profit": 0, "stop_to_cost": "false", "reentry": 1},
        [
            _leg(
                "CE",
                "SELL",
                "delta_near = 0.25            # the strike whose |delta| is nearest",
                stop_pct=30,
            ),
            _leg("PE", "SELL", "delta_near = 0.25", stop_pct=30),
        ],
    ),
    "iron_condor": (
        "a short strangle two strikes out, hedged with wings four strikes out",
        {"max_loss": 4000, "max_profit": 2500, "stop_to_cost": "false", "reentry": 0},
        [
            _leg("CE", "SELL", 'strike = "OTM2"'),
            _leg("PE", "SELL", 'strike = "OTM2"'),
            _leg("CE", "BUY", 'strike = "OTM6"'),
            _leg("PE", "BUY", 'strike = "OTM6"'),
        ],
    ),
    "iron_fly": (
        "a short ATM straddle with wings bought near a 15-rupee premium",
        {"max_loss": 4000, "max_profit": 3000, "stop_to_cost": "false", "reentry": 0},
        [
            _leg("CE", "SELL", _ATM),
            _leg("PE", "SELL", _ATM),
            _leg("CE", "BUY", "premium_near = 15            # the strike priced nearest 15 rupees"),
            _leg("PE", "BUY", "premium_near = 15"),
        ],
    ),
    "bull_call_spread": (
        "buy the ATM call, sell the call three strikes up",
        {"max_loss": 2500, "max_profit": 4000, "stop_to_cost": "false", "reentry": 0},
        [
            _leg("CE", "BUY", _ATM, target_pct=80),
            _leg("CE", "SELL", 'strike = "ATM+3"'),
        ],
    ),
    "bear_put_spread": (
        "buy the ATM put, sell the put three strikes down",
        {"max_loss": 2500, "max_profit": 4000, "stop_to_cost": "false", "reentry": 0},
        [
            _leg("PE", "BUY", _ATM, target_pct=80),
            _leg("PE", "SELL", 'strike = "ATM-3"'),
        ],
    ),
    "calendar": (
        "sell this week's ATM call, buy next week's",
        {"max_loss": 2500, "max_profit": 2500, "stop_to_cost": "false", "reentry": 0},
        [
            _leg("CE", "SELL", _ATM, "weekly"),
            _leg("CE", "BUY", _ATM, "next_week"),
        ],
    ),
}


def render(name: str, template: str) -> str:
    """The text of a builder file ``name`` from ``template`` (a key of ``TEMPLATES``)."""
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    title, values, legs = TEMPLATES[template]
    head = COMMON.format(name=name, title=title, days="any", entry="09:30", **values)
    return "\n".join(_align(line) for line in (head + "".join(legs)).split("\n"))


def _align(line: str) -> str:
    """``key = value   # why`` with every comment at one column, as a person writes it."""
    m = re.match(r"^([^#\s].*?)\s+(# .*)$", line)
    if m is None:
        return line
    return f"{m.group(1):<28} {m.group(2)}"
