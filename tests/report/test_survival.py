"""survival: steps to threshold by Kaplan–Meier, RMST and log-rank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ablations.report import survival as sv


def test_censored_outcome_uses_kaplan_meier_rmst_and_logrank() -> None:
    # config a: events at 10, 20, 30 and two censored at the budget 100; b: all five censored
    t_a, e_a = np.array([10.0, 20, 30, 100, 100]), np.array([True, True, True, False, False])
    assert sv.km_median(t_a, e_a) == 30.0  # S drops to 0.4 at 30
    # RMST = ∫ S: 1·10 + 0.8·10 + 0.6·10 + 0.4·70 = 52 = mean(min(T, 100))
    assert sv.rmst(t_a, e_a, 100.0) == pytest.approx(52.0)
    scores = pd.DataFrame({"config": ["a"] * 5 + ["b"] * 5 + ["c"] * 5, "seed": list(range(5)) * 3,
                           "steps_to_threshold": np.r_[t_a, [100.0] * 10],
                           "reached": np.r_[e_a, [False] * 10]})
    km = sv.km_table(scores, ["b", "a", "c"], "b", 100.0, n_resamples=500).set_index("config")
    ref = sps.logrank(sps.CensoredData(uncensored=t_a[e_a], right=t_a[~e_a]),
                      sps.CensoredData(right=np.full(5, 100.0)))
    assert km.loc["a", "p_logrank"] == pytest.approx(ref.pvalue)
    assert np.isnan(km.loc["c", "p_logrank"])  # both arms fully censored: no test on a constant
    assert np.isnan(km.loc["b", "km_median"]) and km.loc["b", "rmst"] == 100.0


def test_aliased_configs_enter_the_log_rank_family_once() -> None:
    """b and b2 are the same runs (aliases): the log-rank family is {b, c} (2 tests), not 3."""
    rng = np.random.default_rng(1)
    t_ref = rng.uniform(50, 100, 8)
    t_b, t_c = rng.uniform(10, 40, 8), rng.uniform(20, 60, 8)
    rows = [dict(config=c, seed=s, steps_to_threshold=t, reached=True)
            for c, ts in (("ref", t_ref), ("b", t_b), ("b2", t_b), ("c", t_c)) for s, t in enumerate(ts)]
    scores = pd.DataFrame(rows)
    out = sv.km_table(scores, ["ref", "b", "b2", "c"], "ref", 100.0, n_resamples=200,
                      alias_of={"ref": "ref", "b": "b", "b2": "b", "c": "c"}).set_index("config")
    p = out["p_logrank"]
    assert p["b"] == p["b2"]
    lo, hi = sorted([p["b"], p["c"]])
    assert out.loc["b", "p_logrank_holm"] == pytest.approx(min(1, (2 * p["b"]) if p["b"] == lo else max(2 * lo, hi)))
    assert out.loc["b", "p_logrank_holm"] == out.loc["b2", "p_logrank_holm"]
