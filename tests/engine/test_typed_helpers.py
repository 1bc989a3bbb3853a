"""The author's order helpers are typed as the wire's fields: mypy finds a misspelt
product, an unknown keyword and a price type outside the domain's set in a strategy before
it runs (an editor completes the same names). Before, the helpers took ``**kw: Any`` and
mypy passed all three."""

from __future__ import annotations

from pathlib import Path

from mypy import api

from mytrading.settings import PROJECT_ROOT

STRATEGY = """
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy, StrategyParams


class Typo(BaseStrategy[StrategyParams]):
    name = "typo"

    def on_bar(self, bar: wire.Bar) -> None:
        self.buy("NFO", bar.symbol, 65, product="NRMl")
        self.sell("NFO", bar.symbol, 65, pricetype="LIMIT", prise=1.0)
        self.target_position("NFO", bar.symbol, 0, pricetype="STOP")
        self.close("NFO", bar.symbol, product="NRML", pricetype="SL-M", trigger_price=9.5)
        self.modify("x", pricetype="LIMIT", price=10.0)
"""


def test_mypy_checks_an_authors_order_terms(tmp_path: Path) -> None:
    src = tmp_path / "typo.py"
    src.write_text(STRATEGY)
    # a cache of its own beside the project's, kept across runs (1-2 s, not 5-7): the
    # project's own (``main.py test`` fills it just before) is for other options, and
    # sharing it made each invalidate the other (13 s here, and the package's check cold
    # again at the next run)
    cache = PROJECT_ROOT / ".mypy_cache" / "authors"
    out, _, status = api.run([str(src), "--follow-imports=silent", "--cache-dir", str(cache)])
    errors = [line.split(": error: ", 1)[1] for line in out.splitlines() if ": error: " in line]
    assert status == 1
    assert len(errors) == 3, out  # the last two calls are right
    assert 'Argument "product" to "buy"' in errors[0] and "'NRMl'" in errors[0]
    assert 'Unexpected keyword argument "prise" for "sell"' in errors[1]
    assert 'Argument "pricetype" to "target_position"' in errors[2] and "'STOP'" in errors[2]
