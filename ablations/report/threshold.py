"""Time to threshold as a right-censored run metric, decided on a moving average that weighs episodes equally.

Pure numpy / pandas, importing nothing from the package, so it can live with the other run metrics (the train
layer's scores) unchanged.

Input: curves rows `run_id, update, env_steps, episodes, return_mean` (`episodes` cumulative, as in curves.csv; an
update's own episode count is the difference from the previous update, its `return_mean` the mean return of those
episodes). A run with N episodes per update reaches the threshold at the env_steps of the first update u at which

    MA_u = Σ_{v = u−W+1..u} n_v · return_mean_v / Σ_{v = u−W+1..u} n_v  ≥ threshold   and   env_steps_u ≤ budget,

with W = ⌈min_episodes / N⌉ updates (default min_episodes = 2N, so W = 2: the window holds at least 2N episodes and
each episode counts once, whatever update it came from). Updates before the window is full decide nothing, so one
lucky update does not count. Otherwise the run is censored at the budget, including a run whose first crossing is
in the update that crosses the budget (it ends after the budget, so the run did not reach the threshold within it).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

THRESHOLD_COLUMNS = ["run_id", "steps_to_threshold", "reached", "window_updates"]
#: Methods text: the threshold rule and the Kaplan–Meier median convention (`stats.km_median`).
THRESHOLD_METHODS = (
    "A run reaches the threshold at the env steps of the first update where the mean return of its last W updates' "
    "episodes (each episode weighted equally; W = 2 updates, at least 2N episodes) is at or above the threshold, "
    "provided that update ends within the budget; a run that first gets there in the update that crosses the budget, "
    "or never, is censored at the budget. Updates before the window is full decide nothing, so a single lucky update "
    "does not count. The Kaplan–Meier median is the first time the survival curve S(t) falls to ½ or below "
    "(S(t) ≤ ½; lifelines takes S(t) < ½, which differs only where S(t) equals ½ exactly); where S stays above ½ up "
    "to the budget the median is reported as \"> budget\".")


def _first_crossing(g: pd.DataFrame, threshold: float, budget: float, min_episodes: float | None
                    ) -> tuple[float, bool, int]:
    g = g.sort_values("update", kind="stable")
    cum = g["episodes"].to_numpy(float)
    n = np.diff(cum, prepend=0.0)
    per_update = float(np.median(n)) if len(n) else 0.0
    if per_update <= 0:
        return budget, False, 0
    w = max(1, math.ceil((2 * per_update if min_episodes is None else min_episodes) / per_update - 1e-9))
    ret = g["return_mean"].to_numpy(float)
    num = np.cumsum(n * ret)
    den = np.cumsum(n)
    num_w = num - np.concatenate([np.zeros(w), num[:-w]])[: len(num)]
    den_w = den - np.concatenate([np.zeros(w), den[:-w]])[: len(den)]
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = num_w / den_w
    steps = g["env_steps"].to_numpy(float)
    full = np.arange(len(ma)) >= w - 1
    hit = np.flatnonzero(full & (ma >= threshold) & (steps <= budget))
    return (float(steps[hit[0]]), True, w) if hit.size else (budget, False, w)


def time_to_threshold(curves: pd.DataFrame, run_ids: Sequence[str], threshold: float, budget: float, *,
                      min_episodes: float | None = None) -> pd.DataFrame:
    """One row per run of `run_ids` (`THRESHOLD_COLUMNS`): steps_to_threshold (the env_steps of the first qualifying
    update, else `budget`), reached (bool), window_updates (W). A run with no curve rows: NaN steps, not reached, W 0.
    `min_episodes`: the episodes the moving average must hold (default 2N, N the run's median episodes per update)."""
    groups = {rid: g for rid, g in curves.groupby("run_id", sort=False)}
    rows = []
    for rid in run_ids:
        g = groups.get(rid)
        if g is None or g.empty:
            rows.append(dict(run_id=rid, steps_to_threshold=np.nan, reached=False, window_updates=0))
            continue
        steps, reached, w = _first_crossing(g, threshold, budget, min_episodes)
        rows.append(dict(run_id=rid, steps_to_threshold=steps, reached=reached, window_updates=w))
    return pd.DataFrame(rows, columns=THRESHOLD_COLUMNS)
