"""scores: the env-step grid, interpolation, steps to threshold, final mask, run_scores, run_metric (the tuning's
score) and the engine's final_return, on small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ablations.train import scores as sc

CURVES = pd.DataFrame({"run_id": ["r"] * 4, "env_steps": [25, 50, 75, 100], "return_mean": [0.0, 10, 20, 30]})


def test_grid_and_final_mask() -> None:
    grid = sc.env_step_grid(100, points=4)
    assert list(grid) == [25.0, 50.0, 75.0, 100.0]
    assert list(sc.final_mask(grid, 100)) == [False, False, False, True]  # only 100 is in (90, 100]
    assert list(sc.final_mask(grid, 100, fraction=0.5)) == [False, False, True, True]  # (50, 100]: 50 is out
    assert len(sc.env_step_grid(1000)) == sc.GRID_POINTS == 100 and sc.FINAL_FRACTION == 0.1


def test_interpolation_holds_ends_constant() -> None:
    y = sc.interpolate_curves(CURVES, ["r", "none"], np.array([0.0, 37.5, 100.0, 200.0]))
    assert list(y[0]) == [0.0, 5.0, 30.0, 30.0]  # 37.5 is halfway from 25 (0) to 50 (10)
    assert np.isnan(y[1]).all()


def test_steps_to_threshold_is_censored_at_the_budget() -> None:
    steps, reached = sc.steps_to_threshold(CURVES, ["r", "none"], 15.0, 100)
    assert list(steps) == [75.0, 100.0] and list(reached) == [True, False]


def test_scores_on_env_step_grid() -> None:
    runs = pd.DataFrame({"run_id": ["r", "missing"]})
    grid = sc.env_step_grid(100, points=4)
    out = sc.run_scores(CURVES, runs, budget=100, threshold=15, grid=grid)
    assert out.loc[0, "auc"] == pytest.approx(15.0)
    assert out.loc[0, "final_return"] == pytest.approx(30.0)  # grid point 100 is the only one in (90, 100]
    assert out.loc[0, "steps_to_threshold"] == 75 and bool(out.loc[0, "reached"])
    assert np.isnan(out.loc[1, "auc"])
    never = sc.run_scores(CURVES, runs.iloc[:1], budget=100, threshold=1e9, grid=grid)
    assert never.loc[0, "steps_to_threshold"] == 100 and not never.loc[0, "reached"]


def test_eval_return_is_copied_when_present() -> None:
    runs = pd.DataFrame({"run_id": ["r"], "eval_return": ["42.5"]})
    out = sc.run_scores(CURVES, runs, budget=100, threshold=15, grid=sc.env_step_grid(100, points=4))
    assert out.loc[0, "eval_return"] == 42.5


def test_run_metric_on_a_linear_curve() -> None:
    """return_mean = env_steps / 10 on 0..1000: the 100-point grid 10, 20, …, 1000 gives AUC = mean(1..100) = 50.5
    and the final return the mean over 910..1000 → mean(91..100) = 95.5; text cells (as read from a part) too."""
    curves = pd.DataFrame({"run_id": "a", "env_steps": [str(x) for x in (0, 1000)], "return_mean": ["0", "100"]})
    runs = pd.DataFrame({"run_id": ["a", "b"], "total_steps": ["1000", "1000"]})
    assert sc.run_metric(runs, curves, "auc")["a"] == pytest.approx(50.5)
    assert sc.run_metric(runs, curves, "final_return")["a"] == pytest.approx(95.5)
    assert math.isnan(sc.run_metric(runs, curves, "auc")["b"])
    with pytest.raises(ValueError, match="allowed: auc"):
        sc.run_metric(runs, curves, "median")


def test_run_metric_equals_run_scores() -> None:
    rng = np.random.default_rng(0)
    curves = pd.DataFrame({"run_id": np.repeat(["a", "b"], 7),
                           "env_steps": np.tile([90, 240, 410, 555, 700, 860, 1010], 2),
                           "return_mean": rng.normal(50, 20, 14)})
    runs = pd.DataFrame({"run_id": ["a", "b"], "total_steps": [1000, 1000]})
    ref = sc.run_scores(curves, runs, budget=1000, threshold=60.0, grid=sc.env_step_grid(1000)).set_index("run_id")
    for metric in ("auc", "final_return"):
        mine = sc.run_metric(runs, curves, metric)
        assert np.allclose([mine[r] for r in ("a", "b")], ref.loc[["a", "b"], metric], rtol=0, atol=1e-12)


def test_engine_final_return() -> None:
    """Updates ending at ≥ 90% of the budget: 900 and 1000 of 1000 → mean(4, 6) = 5; none there → the last update."""
    rows = [{"env_steps": s, "return_mean": r} for s, r in ((500, 1.0), (899, 2.0), (900, 4.0), (1000, 6.0))]
    assert sc.final_return(rows, 1000) == 5.0
    assert sc.final_return(rows[:2], 1000) == 2.0
    assert math.isnan(sc.final_return([], 1000))
