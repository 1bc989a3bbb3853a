"""Sweeps: the axes a user writes, and the same sweep on a Dask cluster (a local one, with
worker processes) giving exactly the results of running each combination here."""

from __future__ import annotations

import os
from datetime import date

import pytest

from mytrading.backtest.session import InputError, Request, prepare
from mytrading.backtest.sweep import combos, execute_jobs, jobs_for, parse_axes, run_job
from mytrading.engine.strategy import BaseStrategy, StrategyParams


def test_axes_ranges_include_the_stop_and_lists_stay_as_given() -> None:
    axes = parse_axes(["fast=5:30:5", "slow=20,50", "k=0.5:1.5:0.5"])
    assert axes == {
        "fast": ["5", "10", "15", "20", "25", "30"],
        "slow": ["20", "50"],
        "k": ["0.5", "1", "1.5"],
    }
    assert len(combos(axes)) == 6 * 2 * 3
    for bad in ("fast", "fast=", "fast=a:b:c", "fast=5:30:0"):
        with pytest.raises(InputError):
            parse_axes([bad])


def test_a_value_the_strategy_refuses_is_refused_before_anything_runs(settings) -> None:
    p = prepare(settings, Request(["sma_crossover"], date(2026, 11, 2), date(2026, 11, 3)))
    with pytest.raises(InputError, match="lots"):
        jobs_for(p, {"lots": ["1", "0"]})  # lots >= 1
    with pytest.raises(
        InputError,
        match=r"no strategy of .* has a parameter .nosuch.; its parameters: contract, fast,",
    ):
        jobs_for(p, {"nosuch": ["1"]})


@pytest.mark.integration  # a local Dask cluster: worker processes, 10 s of the fast suite
def test_the_sweep_on_a_dask_cluster_equals_the_sweep_here(settings) -> None:
    distributed = pytest.importorskip("distributed")  # in the dev extra: CI has it
    p = prepare(settings, Request(["sma_crossover"], date(2026, 11, 2), date(2026, 11, 3)))
    jobs = jobs_for(p, parse_axes(["fast=5,8", "slow=20,30"]))
    here = {tuple(j.combo.items()): run_job(j)["metrics"] for j in jobs}
    from mytrading.research import walk_forward

    wf = {"grid": {"fast": [5, 8], "slow": [20, 30]}, "in_sample": "3d", "out_of_sample": "2d",
          "start": "2026-11-02", "end": "2026-11-11", "store_run": False}  # fmt: skip
    local = walk_forward("sma_crossover", workers=2, **wf)  # type: ignore[arg-type]
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        there = execute_jobs(jobs, 0, cluster.scheduler_address)
        remote = walk_forward("sma_crossover", cluster=cluster.scheduler_address, **wf)  # type: ignore[arg-type]
    # the walk-forward on the cluster: the same choices and the same out-of-sample fills
    assert len(local.windows) == 2
    assert remote.chosen().equals(local.chosen())
    cols = ["time", "symbol", "action", "quantity", "price"]
    assert len(local.fills) > 0 and remote.fills[cols].equals(local.fills[cols])
    assert len(there) == 4
    assert {tuple(r["combo"].items()): r["metrics"] for r in there} == here
    pids = {r["pid"] for r in there}
    assert os.getpid() not in pids  # the cluster's worker processes ran it


def test_a_worker_keeps_a_source_only_for_the_same_data(settings) -> None:
    """A source a worker kept (a Dask worker's, or the caller's in a one-worker search) is
    served again only to jobs of the same seed, origin and reference data."""
    import copy
    import dataclasses

    from mytrading.backtest.data import DuckBars, GeneratedBars
    from mytrading.backtest.sweep import _source, refdata_digest

    p = prepare(settings, Request(["sma_crossover"], date(2026, 11, 2), date(2026, 11, 3)))
    job = jobs_for(p, {"fast": ["5"]})[0]
    assert job.refdata_key == refdata_digest(p.refdata)
    first = _source(job, GeneratedBars, DuckBars)
    assert _source(dataclasses.replace(job, combo={"fast": 8}), GeneratedBars, DuckBars) is first
    assert refdata_digest(p.refdata) == job.refdata_key  # the same object, the same key
    other = copy.deepcopy(p.refdata)
    other.underlyings.pop(next(iter(other.underlyings)))  # reference data of another config
    changed = dataclasses.replace(job, refdata=other, refdata_key=refdata_digest(other))
    assert changed.refdata_key != job.refdata_key
    assert _source(changed, GeneratedBars, DuckBars) is not first


def test_a_kept_worker_loads_a_changed_strategy_file_again(tmp_path) -> None:
    from mytrading.backtest.sweep import _classes, _stamp

    code = (
        "from mytrading.engine.strategy import BaseStrategy, StrategyParams\n"
        "class P(StrategyParams):\n    n: int = {n}\n"
        "class S(BaseStrategy[P]):\n    name = 'stamp_probe'\n"
    )
    f = tmp_path / "probe.py"
    f.write_text(code.format(n=1))
    first = _classes(str(tmp_path), _stamp(str(tmp_path)))["stamp_probe"]
    assert _classes(str(tmp_path), _stamp(str(tmp_path)))["stamp_probe"] is first  # kept
    f.write_text(code.format(n=22))  # an edit between two searches
    again = _classes(str(tmp_path), _stamp(str(tmp_path)))["stamp_probe"]
    assert again.Params().n == 22 and first.Params().n == 1


class _DiesParams(StrategyParams):
    """No parameters: the probe only dies."""


class _Dies(BaseStrategy[_DiesParams]):
    """Kills the worker process that runs it, as a crash would."""

    name = "dies_probe"

    def on_start(self) -> None:
        os._exit(3)


@pytest.mark.integration  # worker processes
def test_a_dead_worker_fails_its_search_and_the_next_one_gets_new_workers(settings) -> None:
    from concurrent.futures.process import BrokenProcessPool

    from mytrading.backtest import sweep

    p = prepare(settings, Request(["sma_crossover"], date(2026, 11, 2), date(2026, 11, 2)))
    fine = jobs_for(p, {"fast": ["5", "8"]})
    dying = prepare(settings, Request(["dies_probe"], date(2026, 11, 2), date(2026, 11, 2),
                                      classes={"dies_probe": _Dies}))  # fmt: skip
    with pytest.raises(BrokenProcessPool):
        execute_jobs([sweep.job_for(dying, {})], 2, None)
    assert 2 not in sweep._POOLS  # not kept
    done = execute_jobs(fine, 2, None)
    assert len(done) == 2 and not any("error" in r for r in done)
    assert {r["pid"] for r in done} and os.getpid() not in {r["pid"] for r in done}


def test_the_digest_cache_keeps_no_reference_data_alive(settings) -> None:
    """Each ``prepare`` loads its own reference data: the digest made for the sweep's jobs
    must not keep every one of them (and its master contract) alive for the process."""
    import gc
    import weakref

    from mytrading.backtest import sweep

    p = prepare(settings, Request(["sma_crossover"], date(2026, 11, 2), date(2026, 11, 3)))
    digest = sweep.refdata_digest(p.refdata)
    gone = weakref.ref(p.refdata)
    again = prepare(settings, Request(["sma_crossover"], date(2026, 11, 2), date(2026, 11, 3)))
    assert again.refdata is not p.refdata
    assert sweep.refdata_digest(again.refdata) == digest  # the same content, the same key
    del p
    gc.collect()
    assert gone() is None  # nothing held it
    assert sweep.refdata_digest(again.refdata) == digest
