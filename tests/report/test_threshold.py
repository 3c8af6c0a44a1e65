"""threshold: a moving average over ≥ 2N episodes, crossings past the budget censored, one lucky update ignored."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations.report import threshold as th
from ablations.train.scores import steps_to_threshold


def _curve(rid: str, steps: list[float], returns: list[float], per_update: list[int] | int = 8) -> pd.DataFrame:
    n = per_update if isinstance(per_update, list) else [per_update] * len(steps)
    return pd.DataFrame({"run_id": rid, "update": np.arange(1, len(steps) + 1), "env_steps": steps,
                         "episodes": np.cumsum(n), "return_mean": returns})


def test_crossing_in_the_update_that_crosses_the_budget_is_censored() -> None:
    c = _curve("r", [400, 800, 1030], [0.0, 0.0, 20.0])  # MA at update 3 = 10 ≥ 5, but it ends at 1030 > 1000
    out = th.time_to_threshold(c, ["r"], 5.0, 1000.0)
    assert out.iloc[0]["steps_to_threshold"] == 1000.0 and not out.iloc[0]["reached"]
    # the old rule counted it as reached at the budget
    steps, reached = steps_to_threshold(c, ["r"], 5.0, 1000.0)
    assert reached[0] and steps[0] == 1000.0
    # crossing in an update that ends exactly at the budget counts
    ok = th.time_to_threshold(_curve("r", [400, 800, 1000], [0.0, 0.0, 20.0]), ["r"], 5.0, 1000.0)
    assert ok.iloc[0]["reached"] and ok.iloc[0]["steps_to_threshold"] == 1000.0


def test_a_single_lucky_update_does_not_count() -> None:
    c = _curve("r", [100, 200, 300, 400], [0.0, 30.0, 0.0, 0.0])  # MAs: −, 15, 15, 0
    out = th.time_to_threshold(c, ["r"], 20.0, 1000.0)
    assert not out.iloc[0]["reached"] and out.iloc[0]["window_updates"] == 2
    assert steps_to_threshold(c, ["r"], 20.0, 1000.0)[1][0]  # the single-update rule said reached
    # nor does the first update alone, before the window holds 2N episodes
    first = th.time_to_threshold(_curve("r", [100, 200], [30.0, 0.0]), ["r"], 20.0, 1000.0)
    assert not first.iloc[0]["reached"]


def test_each_episode_weighs_equally_and_a_sustained_crossing_counts() -> None:
    # 8 episodes at 10 then 4 episodes at 40: (80 + 160) / 12 = 20 ≥ 20 (the mean of the two updates' means is 25)
    c = _curve("r", [100, 200], [10.0, 40.0], per_update=[8, 4])
    assert th.time_to_threshold(c, ["r"], 20.0, 1000.0).iloc[0]["reached"]
    assert not th.time_to_threshold(c, ["r"], 20.5, 1000.0).iloc[0]["reached"]
    c = _curve("r", [100, 200, 300, 400], [0.0, 25.0, 25.0, 25.0])
    out = th.time_to_threshold(c, ["r", "missing"], 20.0, 1000.0)
    assert out.iloc[0]["steps_to_threshold"] == 300.0 and out.iloc[0]["reached"]
    assert np.isnan(out.iloc[1]["steps_to_threshold"]) and not out.iloc[1]["reached"]
    assert list(out.columns) == th.THRESHOLD_COLUMNS


def test_min_episodes_sets_the_window() -> None:
    c = _curve("r", [100, 200, 300, 400], [0.0, 25.0, 25.0, 25.0])
    out = th.time_to_threshold(c, ["r"], 20.0, 1000.0, min_episodes=24)  # W = 3 updates of 8
    assert out.iloc[0]["window_updates"] == 3 and out.iloc[0]["steps_to_threshold"] == 400.0
