"""A run's metrics and the score grid: one home for "final return", "AUC" and "steps to threshold".

Owns the env-step grid (`GRID_POINTS` points up to a run's budget), the interpolation of a run's learning curve on it,
the per-run scores the report and the tuning choice use (`run_scores`, `run_metric`: each run's `return_mean`
linearly interpolated on the grid; `auc` is its mean, `final_return` its mean over the last `FINAL_FRACTION` of the
budget), the first step at which a run reaches a threshold (right-censored at the budget), and the engine's own
`final_return` of a run's curve rows (runs.csv's `final_return`: the mean over the updates that end in the last
`FINAL_FRACTION` of the budget). Pure functions over arrays and DataFrames; no torch, no env.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

#: Points of the env-step grid a run's curve is interpolated on.
GRID_POINTS = 100
#: The last fraction of the budget whose returns make a run's final return.
FINAL_FRACTION = 0.1


def env_step_grid(budget: float, points: int = GRID_POINTS) -> np.ndarray:
    """`points` equally spaced env-step values in (0, budget]: budget/points, 2·budget/points, …, budget."""
    return np.linspace(budget / points, budget, points)


def interpolate_curves(curves: pd.DataFrame, run_ids: Sequence[str], grid: np.ndarray) -> np.ndarray:
    """Each run's return_mean, linearly interpolated at `grid` env steps → [R, G]; held constant outside its data.

    A run with no curve rows gives a row of NaN.
    """
    out = np.full((len(run_ids), len(grid)), np.nan)
    c = curves[["run_id", "env_steps", "return_mean"]].dropna()
    c = c.sort_values(["run_id", "env_steps"], kind="stable")
    groups = {rid: g for rid, g in c.groupby("run_id", sort=False)}
    for i, rid in enumerate(run_ids):
        g = groups.get(rid)
        if g is not None and len(g):
            out[i] = np.interp(grid, g["env_steps"].to_numpy(float), g["return_mean"].to_numpy(float))
    return out


def steps_to_threshold(curves: pd.DataFrame, run_ids: Sequence[str], threshold: float,
                       budget: float) -> tuple[np.ndarray, np.ndarray]:
    """First env_steps at which an update's return_mean ≥ threshold, per run; never → budget (right-censored).

    Returns (steps [R], reached [R] bool).
    """
    hit = curves[curves["return_mean"] >= threshold]
    first = hit.groupby("run_id")["env_steps"].min()
    steps = first.reindex(list(run_ids)).to_numpy(float)
    reached = ~np.isnan(steps)
    return np.where(reached, np.minimum(steps, budget), budget), reached


def final_mask(grid: np.ndarray, budget: float, fraction: float = FINAL_FRACTION) -> np.ndarray:
    """Grid points in the last `fraction` of the budget: (1 − fraction)·budget < x ≤ budget."""
    return grid > (1 - fraction) * budget + 1e-9 * budget


def run_scores(curves: pd.DataFrame, runs: pd.DataFrame, *, budget: float, threshold: float,
               grid: np.ndarray) -> pd.DataFrame:
    """One row per run of `runs`: final_return, auc, steps_to_threshold, reached (and eval_return if present)."""
    ids = runs["run_id"].tolist()
    y = interpolate_curves(curves, ids, grid)
    steps, reached = steps_to_threshold(curves, ids, threshold, budget)
    out = pd.DataFrame({"run_id": ids})
    out["final_return"] = y[:, final_mask(grid, budget)].mean(axis=1)
    out["auc"] = y.mean(axis=1)
    out["steps_to_threshold"] = np.where(np.isnan(out["auc"]), np.nan, steps)
    out["reached"] = reached
    if "eval_return" in runs.columns and pd.to_numeric(runs["eval_return"], errors="coerce").notna().any():
        out["eval_return"] = pd.to_numeric(runs["eval_return"], errors="coerce").to_numpy()
    return out


def run_metric(runs: pd.DataFrame, curves: pd.DataFrame, metric: str) -> dict[str, float]:
    """run_id → `metric` ("auc" | "final_return") of each run of `runs` (columns run_id, total_steps), from its
    curve rows (run_id, env_steps, return_mean) on its own `env_step_grid(total_steps)`; NaN for a run with no curve
    rows. Cells may be text (as read back from a part) or numbers. The tuning choice's selection score."""
    if metric not in ("auc", "final_return"):
        raise ValueError(f"metric={metric!r}; allowed: auc | final_return")
    c = curves[["run_id", "env_steps", "return_mean"]].copy()
    c["env_steps"] = pd.to_numeric(c["env_steps"], errors="coerce")
    c["return_mean"] = pd.to_numeric(c["return_mean"], errors="coerce")
    c = c.dropna().sort_values(["run_id", "env_steps"], kind="stable")
    groups = {str(rid): g for rid, g in c.groupby("run_id", sort=False)}
    out: dict[str, float] = {}
    for rid, budget in zip(runs["run_id"].astype(str), pd.to_numeric(runs["total_steps"], errors="coerce")):
        g = groups.get(rid)
        if g is None or not len(g) or not math.isfinite(budget):
            out[rid] = float("nan")
            continue
        x = env_step_grid(budget)
        y = np.interp(x, g["env_steps"].to_numpy(float), g["return_mean"].to_numpy(float))
        out[rid] = float(y.mean()) if metric == "auc" else float(y[final_mask(x, budget)].mean())
    return out


def final_return(curves: list[dict[str, Any]], total_steps: int) -> float:
    """Mean training return over the updates that end in the last `FINAL_FRACTION` of the budget (at least the last
    update): runs.csv's `final_return`, written by the engine from a run's curve rows."""
    if not curves:
        return math.nan
    tail = [c["return_mean"] for c in curves
            if c["env_steps"] >= (1 - FINAL_FRACTION) * total_steps] or [curves[-1]["return_mean"]]
    return float(np.mean(tail))
