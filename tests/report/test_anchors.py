"""External anchors (`report.anchors`) in a single-env report: the anchor sits beside the best config by mean final
return, with scipy's t-interval over its seeds, and its learning curve read at the anchor's budget; an anchor with a
curve gets the figure; an anchor beyond our budget says so; a study without anchors has no section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from ablations.report import build_report
from ablations.train import scores as sc

ANCHORS = [
    {"env_id": "CartPole-v1", "source": "inside our budget", "value": 300.0, "spread": 12.5, "steps": 10_000,
     "measures": "m", "differs": "d", "points": [[5_000, 200.0], [10_000, 300.0]]},
    {"env_id": "CartPole-v1", "source": "beyond our budget", "value": 490.0, "steps": 500_000, "measures": "m",
     "differs": "d"},
    {"env_id": "Acrobot-v1", "source": "another env", "value": -80.0, "steps": 500_000, "measures": "m",
     "differs": "d"},
]


def _with_anchors(path: Path, anchors: list[dict]) -> Path:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["study"]["report"]["anchors"] = anchors
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_an_anchor_sits_beside_the_best_config(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = _with_anchors(make_results(main={("returns", "rtg"): 120.0}), ANCHORS)
    text = build_report(results, tmp_path / "out", n_resamples=300).read_text()
    table = pd.read_csv(tmp_path / "out" / "tables" / "anchors.csv")
    assert list(table["source"]) == ["inside our budget", "beyond our budget"]  # Acrobot's is not this env's
    scores = pd.read_csv(tmp_path / "out" / "tables" / "scores.csv")
    means = scores.groupby("config")["final_return"].mean()
    best = table["best_config"].iloc[0]
    assert means[best] == means.max()
    x = scores.loc[scores["config"] == best, "final_return"].to_numpy(float)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert np.allclose(table.loc[0, ["best_final_return", "best_ci_low", "best_ci_high"]].to_numpy(float),
                       [x.mean(), low, high], rtol=1e-6)
    runs = scores[scores["config"] == best]
    grid = sc.env_step_grid(20_000)
    y = sc.binned_curves(pd.read_csv(results / "curves.csv"), runs["run_id"].tolist(), grid)
    j = int(np.argmin(np.abs(grid - 10_000)))
    assert np.isclose(table.loc[0, "best_at_steps"], y[:, j].mean(), rtol=1e-6)  # tables: 7 digits
    row = table.loc[0]
    assert row["best_at_steps_ci_low"] <= row["best_at_steps"] <= row["best_at_steps_ci_high"]
    assert np.isnan(table.loc[1, "best_at_steps"]) and np.isnan(table.loc[1, "spread"])
    assert "## External anchors" in text and "beyond our budget" in text and "300.0 ± 12.5" in text
    assert "(figures/anchor_curve.png)" in text and (tmp_path / "out" / "figures" / "anchor_curve.png").exists()


def test_no_anchor_no_section(make_results: Callable[..., Path], tmp_path: Path) -> None:
    text = build_report(_with_anchors(make_results(), ANCHORS[2:]), tmp_path / "out", n_resamples=200,
                        figures=False).read_text()
    assert "External anchors" not in text and not (tmp_path / "out" / "tables" / "anchors.csv").exists()
