"""``optimize``: grid, random and optuna searches of a real strategy, every set a real
backtest on worker processes; refused and failing sets; the luck figures on the result."""

from __future__ import annotations

import duckdb
import pytest

from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.research import InputError, optimize, walk_forward
from mytrading.settings import Settings

pytestmark = pytest.mark.integration  # every set a backtest on worker processes

DAYS = {"start": "2026-11-02", "end": "2026-11-04"}


def test_a_grid_search_ranks_lists_the_refused_and_counts_its_trials(settings: Settings) -> None:
    o = optimize(
        "sma_crossover", {"fast": [5, 8, 25], "slow": [20, 30]}, maximize="net_pnl", workers=2,
        **DAYS,
    )  # fmt: skip
    t = o.trials
    refused = t[t["status"] == "invalid"]
    assert len(refused) == 1 and (refused["fast"].iloc[0], refused["slow"].iloc[0]) == (25, 20)
    assert "fast (25) must be shorter than slow (20)" in refused["error"].iloc[0]
    ok = t[t["status"] == "ok"]
    assert len(ok) == o.n_trials == 5 and o.best["n_trials"] == 5
    assert o.best["score"] == ok["net_pnl"].astype(float).max()
    best_row = ok.loc[ok["net_pnl"].astype(float).idxmax()]
    assert o.best_params == {"fast": int(best_row["fast"]), "slow": int(best_row["slow"])}
    assert isinstance(o.best_params["fast"], int)  # plain Python values, not numpy's
    assert o.returns.shape == (3, 5)  # three days, five trials
    assert o.deflated is not None and 0.0 <= o.deflated.probability <= 1.0
    assert o.deflated.n_trials == 5
    assert o.pbo is None or 0.0 <= o.pbo.probability <= 1.0  # 3 days: too few blocks
    heat = o.heatmap()
    assert heat.data[0].type == "heatmap" and len(heat.data[0].z) == 2  # slow 20, 30
    # every trial stored, tagged with the search's id
    con = duckdb.connect(str(settings.stores.backtest_db), read_only=True)
    n = con.execute("SELECT count(*) FROM runs WHERE sweep = ?", [o.sweep_id]).fetchone()[0]
    con.close()
    assert n == 5
    # the best as a full backtest: the same figure, and the trials behind it
    r = o.result()
    assert r.stats["net_pnl"] == pytest.approx(float(o.best["net_pnl"]), abs=0.01)
    assert r.stats["n_trials"] == 5
    assert any(f"best of 5 trials of {o.sweep_id}" in n for n in r.notes)


def test_random_and_optuna_searches(settings: Settings) -> None:
    grid = {"fast": [3, 5, 8, 13], "slow": [20, 30, 40]}
    a = optimize("sma_crossover", grid, method="random", n_trials=3, seed=7, workers=2,
                 store_trials=False, **DAYS)  # fmt: skip
    b = optimize("sma_crossover", grid, method="random", n_trials=3, seed=7, workers=2,
                 store_trials=False, **DAYS)  # fmt: skip
    assert a.n_trials == 3
    assert a.trials[["fast", "slow"]].values.tolist() == b.trials[["fast", "slow"]].values.tolist()
    o = optimize("sma_crossover", grid, method="optuna", n_trials=4, workers=2,
                 maximize=lambda s: s["net_pnl"] - s["charges"], store_trials=False,
                 constraint=lambda p: p["slow"] >= 2 * p["fast"], **DAYS)  # fmt: skip
    ok = o.trials[o.trials["status"] == "ok"]
    assert len(ok) == 4 == o.n_trials
    assert len({(r.fast, r.slow) for r in ok.itertuples()}) == 4  # four different sets
    assert all(r.slow >= 2 * r.fast for r in ok.itertuples())
    assert o.maximize == "<lambda>"


class _FlakyParams(StrategyParams):
    x: int = 1


class _Flaky(BaseStrategy[_FlakyParams]):
    """Raises in its bar hook when x is 2: that trial fails, the others run."""

    name = "flaky_probe"

    def on_start(self) -> None:
        self.subscribe_bars(*self.near_future("NIFTY"), "1m")

    def on_bar(self, bar) -> None:  # type: ignore[no-untyped-def]
        if self.params.x == 2:
            raise RuntimeError("x is two")


def test_bad_input_is_refused_before_work_and_a_failing_trial_is_recorded() -> None:
    o = optimize(_Flaky, {"x": [1, 2, 3]}, workers=2, store_trials=False, start=DAYS["start"],
                 end=DAYS["start"])  # fmt: skip
    t = o.trials
    failed = t[t["status"] == "failed"]
    assert failed["x"].tolist() == [2]
    assert "RuntimeError: x is two" in failed["error"].iloc[0]
    assert "raise RuntimeError" in failed["traceback"].iloc[0]  # where it raised
    assert o.n_trials == 2 and set(t[t["status"] == "ok"]["x"]) == {1, 3}
    # a walk-forward window where every set fails: refused with the first failure's reason
    with pytest.raises(InputError, match=r"window 1 .*no set ran .*x is two"):
        walk_forward(_Flaky, {"x": [2]}, in_sample="1d", out_of_sample="1d", workers=2,
                     start=DAYS["start"], end=DAYS["end"], store_run=False)  # fmt: skip
    for kw, msg in [
        ({"grid": {}}, "empty grid"),
        ({"grid": {"fast": []}}, "no values"),
        ({"grid": {"fats": [3]}}, "has a parameter 'fats'; its parameters: contract, fast"),
        ({"grid": {"fast": ["many"]}}, "fast = 'many': Input should be a valid integer"),
        ({"grid": {"lots": [0]}}, "lots = 0: Input should be greater than or equal to 1"),
        ({"grid": {"fast": [5]}, "maximize": "luck"}, "maximize='luck'"),
        ({"grid": {"fast": [5]}, "method": "anneal"}, "method='anneal'"),
        ({"grid": {"fast": [5]}, "method": "random"}, "needs n_trials"),
        ({"grid": {"fast": [30]}}, "refuses them all"),
    ]:
        with pytest.raises(InputError, match=msg):
            optimize("sma_crossover", store_trials=False, **{**DAYS, **kw})  # type: ignore[arg-type]
