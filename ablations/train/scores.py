"""A run's metrics, defined once (DESIGN.md invariant 7: metrics weigh episodes equally): final return, AUC, time to
threshold, and the learning curve drawn on a grid over the budget. Pure functions over arrays and DataFrames; no
torch, no env.

Input: curve rows `run_id, update, env_steps, return_mean` and, where given, `episodes` (cumulative, as in
curves.csv: an update's own episode count is the difference from the previous update, its `return_mean` the mean
return of those episodes; every update of a run collects the same N episodes).

- **final return** (`final_return`, the engine's runs.csv value, and the report's): the mean of `return_mean` over
  the updates that end in the last `FINAL_FRACTION` of the run's budget (at least the last update). Each update holds
  N episodes, so this is the mean return of the run's last episodes, each episode weighted equally.
- **AUC** (`auc`): the mean return over all of a run's training episodes (`return_mean` averaged over updates,
  weighted by each update's episode count: each episode weighs equally).
- **time to threshold** (`time_to_threshold`): a moving average of at least 2N episodes must reach the threshold in
  an update that ends within the budget; later crossings are censored at the budget (see `THRESHOLD_METHODS`).
- **curves** (`binned_curves`): on an env-step grid, each point the episode-weighted mean return of the run's updates
  that end in that grid cell (held from the previous cell when none does), so the figure weighs episodes as the
  scores do.

The budget and every x-axis above are in the run's budget unit (`BUDGET_UNITS`): env steps (`total_steps`, the
default) or, for a run with `total_episodes`, episodes (its curve rows' cumulative `episodes`).

`run_scores` (the report) and `run_metric` (the tuning choice) call the same definitions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: Points of the budget grid a run's curve is drawn on.
GRID_POINTS = 100
#: The units of a budget (`RunConfig.budget`), each the curves.csv column that counts it.
BUDGET_UNITS = ("env_steps", "episodes")
#: Each unit in words (axis labels, the report's text).
UNIT_WORDS = {"env_steps": "environment steps", "episodes": "episodes"}
#: The last fraction of the budget whose episodes make a run's final return.
FINAL_FRACTION = 0.1

THRESHOLD_COLUMNS = ["run_id", "steps_to_threshold", "reached", "window_updates"]
#: Methods text: the threshold rule and the Kaplan–Meier median convention (`report.survival`).
THRESHOLD_METHODS = (
    "A run reaches the threshold at the env steps of the first update where the mean return of its last W updates' "
    "episodes (each episode weighted equally; W = 2 updates, at least 2N episodes) is at or above the threshold, "
    "provided that update ends within the budget; a run that first gets there in the update that crosses the budget, "
    "or never, is censored at the budget. Updates before the window is full decide nothing, so a single lucky update "
    "does not count. The Kaplan–Meier median is the first time the survival curve S(t) falls to ½ or below "
    "(S(t) ≤ ½; lifelines takes S(t) < ½, which differs only where S(t) equals ½ exactly); where S stays above ½ up "
    "to the budget the median is reported as \"> budget\".")
#: Methods text: the per-run scores.
SCORE_METHODS = (
    f"*Final return*: the mean return of the run's episodes in the updates that end in the last "
    f"{FINAL_FRACTION:.0%} of its budget (at least its last update; every update collects the same N episodes, so "
    "each episode weighs equally; the same number as `runs.csv`'s `final_return`). *AUC*: the mean return over all of "
    "the run's training episodes (each episode weighted equally). Neither weighs an episode by its length.")


def _check_unit(unit: str) -> None:
    if unit not in BUDGET_UNITS:
        raise ValueError(f"unit={unit!r}; allowed: {' | '.join(BUDGET_UNITS)}")


def env_step_grid(budget: float, points: int = GRID_POINTS) -> np.ndarray:
    """`points` equally spaced values in (0, budget]: budget/points, 2·budget/points, …, budget (the budget's unit:
    env steps or episodes)."""
    return np.linspace(budget / points, budget, points)


def run_budgets(runs: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Each run's budget and its unit from runs.csv's columns: `total_episodes` where set (an episode budget), else
    `total_steps` (NaN where neither is a number)."""
    import pandas as pd  # here: the engine imports this module for `final_return` alone
    steps = (pd.to_numeric(runs["total_steps"], errors="coerce").to_numpy(float) if "total_steps" in runs.columns
             else np.full(len(runs), np.nan))
    episodes = (pd.to_numeric(runs["total_episodes"], errors="coerce").to_numpy(float)
                if "total_episodes" in runs.columns else np.full(len(runs), np.nan))
    by_episodes = np.isfinite(episodes)
    return np.where(by_episodes, episodes, steps), ["episodes" if e else "env_steps" for e in by_episodes]


def budget_unit(runs: pd.DataFrame) -> str:
    """The budget unit shared by every run of `runs` ("env_steps" without a `total_episodes` column); `ValueError`
    when some runs have an episode budget and others a step budget (their curves share no x-axis)."""
    units = set(run_budgets(runs)[1]) or {"env_steps"}
    if len(units) > 1:
        raise ValueError("the runs mix budgets in env steps (total_steps) and in episodes (total_episodes); allowed: "
                         "one unit for every run (report them as separate studies)")
    return units.pop()


def _episode_counts(g: pd.DataFrame) -> np.ndarray:
    """Each update's own episode count (differences of the cumulative `episodes`); ones without that column."""
    import pandas as pd  # here: the engine imports this module for `final_return` alone
    if "episodes" not in g.columns:
        return np.ones(len(g))
    cum = pd.to_numeric(g["episodes"], errors="coerce").to_numpy(float)
    n = np.diff(cum, prepend=0.0)
    return np.where(np.isfinite(n) & (n > 0), n, 0.0)


def final_return(curves: list[dict[str, Any]], budget: float, unit: str = "env_steps") -> float:
    """Mean training return over the updates that end in the last `FINAL_FRACTION` of the budget (at least the last
    update): runs.csv's `final_return`, written by the engine from a run's curve rows, and the report's.

    unit: the budget's (`BUDGET_UNITS`). env_steps: the updates whose `env_steps` ≥ 0.9 × budget; episodes: the
    updates whose cumulative `episodes` > 0.9 × budget (with N | 0.9 × budget, exactly the last 10% of the episodes)."""
    _check_unit(unit)
    if not curves:
        return math.nan
    cut = (1 - FINAL_FRACTION) * budget
    tail = [c["return_mean"] for c in curves
            if (c["episodes"] > cut if unit == "episodes" else c["env_steps"] >= cut)] or [curves[-1]["return_mean"]]
    return float(np.mean(tail))


def auc(g: pd.DataFrame) -> float:
    """The mean return over all of a run's episodes: `return_mean` averaged over its updates (rows of `g`), weighted
    by each update's episode count; NaN without rows."""
    if not len(g):
        return math.nan
    n = _episode_counts(g)
    r = g["return_mean"].to_numpy(float)
    return float(np.average(r, weights=n)) if n.sum() > 0 else float(r.mean())


def _clean(curves: pd.DataFrame, unit: str = "env_steps") -> dict[str, pd.DataFrame]:
    """run_id → its curve rows with numeric cells, sorted by `unit` (text cells, as read from a part, too)."""
    import pandas as pd  # here: the engine imports this module for `final_return` alone
    _check_unit(unit)
    cols = [c for c in ("run_id", "update", "env_steps", "episodes", "return_mean") if c in curves.columns]
    c = curves[cols].copy()
    for col in cols[1:]:
        c[col] = pd.to_numeric(c[col], errors="coerce")
    c = c.dropna(subset=[unit, "return_mean"]).sort_values(["run_id", unit], kind="stable")
    return {str(rid): g for rid, g in c.groupby(c["run_id"].astype(str), sort=False)}


def _first_crossing(g: pd.DataFrame, threshold: float, budget: float, min_episodes: float | None,
                    unit: str = "env_steps") -> tuple[float, bool, int]:
    n = _episode_counts(g)
    per_update = float(np.median(n)) if len(n) else 0.0
    if per_update <= 0:
        return budget, False, 0
    w = max(1, math.ceil((2 * per_update if min_episodes is None else min_episodes) / per_update - 1e-9))
    num, den = np.cumsum(n * g["return_mean"].to_numpy(float)), np.cumsum(n)
    num_w = num - np.concatenate([np.zeros(w), num[:-w]])[: len(num)]
    den_w = den - np.concatenate([np.zeros(w), den[:-w]])[: len(den)]
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = num_w / den_w
    steps = g[unit].to_numpy(float)
    full = np.arange(len(ma)) >= w - 1
    hit = np.flatnonzero(full & (ma >= threshold) & (steps <= budget))
    return (float(steps[hit[0]]), True, w) if hit.size else (budget, False, w)


def time_to_threshold(curves: pd.DataFrame, run_ids: Sequence[str], threshold: float, budget: float, *,
                      min_episodes: float | None = None, unit: str = "env_steps") -> pd.DataFrame:
    """One row per run of `run_ids` (`THRESHOLD_COLUMNS`): steps_to_threshold (the env_steps of the first update u
    whose moving average MA_u = Σ_{v=u−W+1..u} n_v·return_mean_v / Σ n_v reaches `threshold` with env_steps_u ≤
    `budget`, else `budget`: right-censored), reached (bool), window_updates (W = ⌈min_episodes / N⌉ updates, default
    min_episodes = 2N, N the run's median episodes per update; updates before the window is full decide nothing).
    A run with no curve rows: NaN steps, not reached, W 0. With unit="episodes" (an episode budget) every env_steps
    above reads `episodes`: steps_to_threshold then counts episodes."""
    import pandas as pd  # here: the engine imports this module for `final_return` alone
    groups = _clean(curves, unit)
    rows = []
    for rid in run_ids:
        g = groups.get(str(rid))
        if g is None or g.empty:
            rows.append(dict(run_id=rid, steps_to_threshold=np.nan, reached=False, window_updates=0))
            continue
        g = g.sort_values("update", kind="stable") if "update" in g.columns else g
        steps, reached, w = _first_crossing(g, threshold, budget, min_episodes, unit)
        rows.append(dict(run_id=rid, steps_to_threshold=steps, reached=reached, window_updates=w))
    return pd.DataFrame(rows, columns=THRESHOLD_COLUMNS)


def binned_curves(curves: pd.DataFrame, run_ids: Sequence[str], grid: np.ndarray, unit: str = "env_steps"
                  ) -> np.ndarray:
    """Each run's learning curve on `grid` (in `unit`: env steps or episodes) → [R, G]: point j is the
    episode-weighted mean return of the run's updates ending in (grid[j−1], grid[j]] (grid[−1] taken as 0), held from
    the last point with updates when none ends there (and, before the first update, the first update's value). A run
    with no curve rows gives a row of NaN."""
    import pandas as pd  # here: the engine imports this module for `final_return` alone
    out = np.full((len(run_ids), len(grid)), np.nan)
    groups = _clean(curves, unit)
    edges = np.concatenate([[-np.inf], np.asarray(grid, float)])
    for i, rid in enumerate(run_ids):
        g = groups.get(str(rid))
        if g is None or not len(g):
            continue
        n = _episode_counts(g)
        n = np.where(n > 0, n, 1.0) if n.sum() <= 0 else n
        r, x = g["return_mean"].to_numpy(float), g[unit].to_numpy(float)
        cell = np.searchsorted(edges, x, side="left") - 1  # cell j holds grid[j-1] < x <= grid[j]
        inside = (cell >= 0) & (cell < len(grid))
        num = np.bincount(cell[inside], weights=(n * r)[inside], minlength=len(grid))
        den = np.bincount(cell[inside], weights=n[inside], minlength=len(grid))
        row = pd.Series(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)).ffill()
        out[i] = row.fillna(r[0]).to_numpy(float)
    return out


def run_scores(curves: pd.DataFrame, runs: pd.DataFrame, *, budget: float, threshold: float,
               unit: str = "env_steps") -> pd.DataFrame:
    """One row per run of `runs`: final_return (`final_return` of its curve rows and its own budget, `total_steps`
    or `total_episodes` (`run_budgets`), else `budget`), auc (`auc`), steps_to_threshold and reached
    (`time_to_threshold` at `budget`, in `unit`), and eval_return when `runs` has it. NaN scores for a run with no
    curve rows. `unit` is every run's budget unit (`budget_unit(runs)`)."""
    import pandas as pd  # here: the engine imports this module for `final_return` alone
    ids = runs["run_id"].astype(str).tolist()
    groups = _clean(curves, unit)
    totals = run_budgets(runs)[0]
    finals, aucs = [], []
    for rid, total in zip(ids, totals):
        g = groups.get(rid)
        g = g if g is not None else pd.DataFrame(columns=["env_steps", "episodes", "return_mean"])
        cols = ["env_steps", "return_mean"] + (["episodes"] if unit == "episodes" else [])
        finals.append(final_return(g[cols].to_dict("records"), total if math.isfinite(total) else budget, unit))
        aucs.append(auc(g))
    th = time_to_threshold(curves, ids, threshold, budget, unit=unit)
    out = pd.DataFrame({"run_id": runs["run_id"].tolist(), "final_return": finals, "auc": aucs})
    out["steps_to_threshold"] = th["steps_to_threshold"].to_numpy(float)
    out["reached"] = th["reached"].to_numpy(bool)
    if "eval_return" in runs.columns and pd.to_numeric(runs["eval_return"], errors="coerce").notna().any():
        out["eval_return"] = pd.to_numeric(runs["eval_return"], errors="coerce").to_numpy()
    return out


def run_metric(runs: pd.DataFrame, curves: pd.DataFrame, metric: str) -> dict[str, float]:
    """run_id → `metric` ("auc" | "final_return") of each run of `runs` (columns run_id, total_steps), by the same
    definitions as `run_scores`; NaN for a run with no curve rows or no budget. Cells may be text (as read back from a
    part) or numbers. The tuning choice's selection score."""
    if metric not in ("auc", "final_return"):
        raise ValueError(f"metric={metric!r}; allowed: auc | final_return")
    groups = _clean(curves)
    out: dict[str, float] = {}
    for rid, budget, unit in zip(runs["run_id"].astype(str), *run_budgets(runs)):
        g = groups.get(rid)
        if g is None or not len(g) or not math.isfinite(budget):
            out[rid] = float("nan")
        elif metric == "auc":
            out[rid] = auc(g)
        else:
            cols = ["env_steps", "return_mean"] + (["episodes"] if unit == "episodes" else [])
            out[rid] = final_return(g[cols].to_dict("records"), budget, unit)
    return out
