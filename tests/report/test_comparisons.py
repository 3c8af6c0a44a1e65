"""comparisons: Holm, Hedges' g, P(improvement), paired comparisons against scipy, aliases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ablations.report import comparisons as cmp
from tests.helpers.synthetic_results import long_scores as _long


def test_holm_matches_hand_case() -> None:
    # p sorted: 0.01, 0.02, 0.03, 0.04 with m = 4 → 4·0.01 = 0.04, 3·0.02 = 0.06, 2·0.03 = 0.06, 1·0.04 = 0.04 → 0.06
    p = [0.03, 0.01, 0.04, 0.02]
    np.testing.assert_allclose(cmp.holm(p), [0.06, 0.04, 0.06, 0.06])
    np.testing.assert_allclose(cmp.holm([0.5, np.nan, 0.01]), [0.5, np.nan, 0.02])
    from statsmodels.stats.multitest import multipletests
    q = np.random.default_rng(0).uniform(0, 0.2, 15)
    np.testing.assert_allclose(cmp.holm(q), multipletests(q, method="holm")[1])


def test_hedges_g_matches_hand_case() -> None:
    # a = [1, 2, 3], b = [4, 5, 6]: pooled SD 1, d = -3, df = 4, J(4) = Γ(2)/(√2·Γ(1.5)) = 1/(√2·0.886227) = 0.797885
    assert cmp.hedges_g(np.array([1.0, 2, 3]), np.array([4.0, 5, 6])) == pytest.approx(-3 * 0.7978846, rel=1e-6)
    assert cmp.small_sample_factor(28) == pytest.approx(1 - 3 / (4 * 28 - 1), abs=1e-4)


def test_probability_of_improvement_hand_case() -> None:
    # pairs (x, y): 3>1, 3>2, 3=3 → 2.5; 1<.., 1=1 → .5; 2>1, 2=2 → 1.5 → total 4.5 / 9 = 0.5
    assert cmp.prob_improvement(np.array([3.0, 1, 2]), np.array([1.0, 2, 3])) == pytest.approx(0.5)
    assert cmp.prob_improvement(np.array([5.0, 6]), np.array([1.0, 2])) == 1.0
    assert cmp.prob_improvement(np.array([1.0]), np.array([1.0, 2])) == pytest.approx(0.25)


def test_compare_columns_and_holm_family() -> None:
    df = _long()
    df.loc[df["config"] == "c", "value"] += 60
    out = cmp.compare(df, cmp.comparison_pairs(["a", "b", "c"], "a"), metric="final_return", n_resamples=2_000)
    assert list(out.columns) == cmp.COMPARISON_COLUMNS
    assert list(out["config"]) == ["b", "c"]
    np.testing.assert_allclose(out["p_holm"], cmp.holm(out["p"]))
    c = out.set_index("config").loc["c"]
    assert c["ci_low"] > 0 and c["p_holm"] < 0.001 and c["prob_improvement"] > 0.9
    assert len(cmp.comparison_pairs(["a", "b", "c", "d"], "a", all_pairs=True)) == 6


def test_compare_is_paired_by_seed_and_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    shared = rng.normal(0, 10, 12)  # seed effect shared by both configs (common random numbers)
    a, b = 100 + shared + rng.normal(0, 1, 12), 103 + shared + rng.normal(0, 1, 12)
    df = pd.DataFrame({"config": ["a"] * 12 + ["b"] * 12, "seed": list(range(12)) * 2, "value": np.r_[a, b]})
    row = cmp.compare(df, [("b", "a")], metric="m").iloc[0]
    ref = sps.ttest_rel(b, a)
    assert row["p"] == pytest.approx(ref.pvalue) and row["ci_method"] == "paired t"
    ci = ref.confidence_interval()
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row["p_rank"] == pytest.approx(sps.wilcoxon(b - a).pvalue)
    assert row["ci_low"] > 0  # the unpaired Welch interval would cover 0 here
    assert sps.ttest_ind(b, a, equal_var=False).confidence_interval().low < 0


def test_constant_metric_gets_no_test() -> None:
    df = pd.DataFrame({"config": ["a"] * 5 + ["b"] * 5, "seed": list(range(5)) * 2, "value": 20_000.0})
    row = cmp.compare(df, [("b", "a")], metric="m").iloc[0]
    assert np.isnan(row["p"]) and np.isnan(row["p_holm"]) and row["ci_method"] == "constant"
    assert row["diff"] == 0 and row["ci_low"] == row["ci_high"] == 0


def test_aliases_detected() -> None:
    scores = pd.DataFrame({"config": ["x"] * 3 + ["y"] * 3 + ["z"] * 3, "seed": [0, 1, 2] * 3,
                           "final_return": [1.0, 2, 3, 1, 2, 3, 1, 2, 4]})
    al = cmp.aliases(scores, ["final_return"], ["x", "y", "z"]).set_index("config")
    assert al.loc["y", "alias_of"] == "x" and al.loc["z", "alias_of"] == "z"
    assert al.loc["x", "group"] == "x ≡ y" and al.loc["z", "n_members"] == 1
