"""A scenario's own risk limits (``Options.risk``) go into the seed's risk.toml under the
strategy's one table: TOML refuses a table declared twice, and risk would not start."""

from __future__ import annotations

import tomllib
from pathlib import Path

from mytrading.settings import PROJECT_ROOT
from mytrading.simulation.stack import risk_limit


def test_a_scenarios_limit_goes_under_the_strategys_table_or_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text((PROJECT_ROOT / "config" / "risk.toml").read_text())
    risk_limit(path, "sma_crossover", "max_orders_per_min", 3)  # it has a table
    risk_limit(path, "t_strangle", "max_orders_per_min", 5)  # it has none
    risk_limit(path, "sma_crossover", "max_loss", 900.0)  # its own line replaced
    got = tomllib.loads(path.read_text())["strategies"]
    assert got["sma_crossover"]["max_orders_per_min"] == 3
    assert got["sma_crossover"]["max_loss"] == 900.0
    assert got["rsi_mean_reversion"]["trailing_value"] == 800.0  # the other tables kept
    assert got["t_strangle"] == {"max_orders_per_min": 5}
