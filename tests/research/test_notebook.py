"""notebooks/research.ipynb runs headless, top to bottom, in a real kernel of this venv:
a change that breaks the notebook fails the suite."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from mytrading.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration  # a Jupyter kernel process, ~20 s


def test_the_research_notebook_runs_and_shows_its_figures(tmp_env: dict[str, str]) -> None:
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    path = PROJECT_ROOT / "notebooks" / "research.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # kept clean
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 3  # the backtest, the heatmap, the walk-forward
    backtest_fig = figures[0]["data"]["application/vnd.plotly.v1+json"]
    candles = next(t for t in backtest_fig["data"] if t["type"] == "candlestick")
    xs = candles["x"]
    if isinstance(xs, dict):  # a numpy array, sent as plotly's typed-array encoding
        xs = np.frombuffer(base64.b64decode(xs["bdata"]), dtype=np.dtype(xs["dtype"]))
    step = np.diff(np.asarray(xs))  # on trading time: evenly spaced (thinned to 4,000 points)
    assert len(xs) > 100 and (step == step[0]).all() and step[0] in (1, 2)
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "net_pnl" in text and "n_trials" in text
    assert re.search(r"<Optimization sma_crossover .* of \d+ trials", text)
    assert "deflated Sharpe ratio: " in text and "walk-forward efficiency" in text
    report = Path(re.findall(r"PosixPath\('([^']+report\.html)'\)", text)[-1])
    assert report.exists() and report.is_relative_to(tmp_env["MT_REPORT_DIR"])
