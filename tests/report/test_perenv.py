"""perenv: labels under each env's own Holm, "holds on all envs" only with per-env significance, Cochran's Q."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ablations.report import perenv as pe
from ablations.report.comparisons import holm


def _by_env(rows: list[tuple[str, str, str, float, float, float]], n: int = 10) -> pd.DataFrame:
    """(term, kind, env, estimate, se, p=None → from t) rows with t-intervals at n − 1 df."""
    out = []
    q = sps.t.ppf(0.975, n - 1)
    for term, kind, env, est, se, p in rows:
        p = 2 * sps.t.sf(abs(est / se), n - 1) if p is None else p
        out.append(dict(term=term, kind=kind, env_id=env, estimate=est, ci_low=est - q * se, ci_high=est + q * se,
                        se=se, p=p, n_seeds=n))
    return pd.DataFrame(out)


def test_holm_within_each_env_family_and_the_labels() -> None:
    by = _by_env([("a", "main", "E1", 5.0, 1.0, None), ("b", "main", "E1", 0.2, 1.0, None),
                  ("a", "main", "E2", 5.0, 1.0, None), ("b", "main", "E2", 0.01, 0.05, None),
                  ("a × b", "interaction", "E1", 1.0, 1.0, None)])
    lab = pe.env_labels(by, margin=0.5)
    e1 = lab[(lab["env_id"] == "E1") & (lab["kind"] == "main")]
    assert e1["p_holm"].to_numpy() == pytest.approx(holm(e1["p"].to_numpy()))
    inter = lab[lab["kind"] == "interaction"].iloc[0]
    assert inter["p_holm"] == pytest.approx(inter["p"])  # a family of its own
    v = lab.set_index(["term", "env_id"])["verdict"]
    assert v[("a", "E1")] == "helps" and v[("a", "E2")] == "helps"
    assert v[("b", "E1")] == "undecided" and v[("b", "E2")] == "equivalent"
    assert list(lab.columns) == pe.LABEL_COLUMNS


def test_env_reports_own_p_holm_is_used_when_given() -> None:
    by = _by_env([("a", "main", "E1", 2.5, 1.0, 0.03)]).assign(p_holm=0.137, p_tost_holm=np.nan)
    assert pe.env_labels(by, margin=0.5).iloc[0]["verdict"] == "undecided"


def test_holds_on_all_only_with_per_env_significance() -> None:
    by = _by_env([("a", "main", e, est, 1.0, None) for e, est in (("E1", 6.0), ("E2", 5.0), ("E3", 4.0))]
                 + [("b", "main", e, est, 1.0, None) for e, est in (("E1", 6.0), ("E2", 5.0), ("E3", 0.5))]
                 + [("c", "main", e, 0.0, 0.05, None) for e in ("E1", "E2", "E3")])
    claims = pe.env_claims(pe.env_labels(by, margin=0.5), margin_text="±0.5").set_index("term")
    assert claims.loc["a", "holds_on_all"] == "helps" and claims.loc["a", "claim"].startswith("helps on all 3 envs")
    # same sign everywhere but undecided on E3: not "holds on all"
    assert claims.loc["b", "holds_on_all"] == "" and claims.loc["b", "claim"] == (
        "not the same on every env: helps on E1, E2; undecided on E3")
    assert claims.loc["c", "claim"] == "equivalent within ±0.5 on all 3 envs"


def test_levels_of_one_term_are_told_apart_by_contrast() -> None:
    by = _by_env([("a", "main", e, est, 1.0, None) for e, est in (("E1", 6.0), ("E2", 5.0))]
                 + [("a", "main", e, est, 1.0, None) for e, est in (("E1", 0.1), ("E2", 0.2))])
    by["contrast"] = ["a=x vs o"] * 2 + ["a=y vs o"] * 2
    claims = pe.env_claims(pe.env_labels(by, margin=0.5)).set_index("contrast")
    assert claims.loc["a=x vs o", "holds_on_all"] == "helps"
    assert claims.loc["a=y vs o", "claim"] == "undecided on all 2 envs"


def test_heterogeneity_by_hand() -> None:
    # estimates 1, 3 with SE 1: pooled 2, Q = 1 + 1 = 2, df 1, p = P(χ²₁ > 2) = 0.1573, I² = (2 − 1)/2 = 0.5
    by = _by_env([("a", "main", "E1", 1.0, 1.0, None), ("a", "main", "E2", 3.0, 1.0, None)])
    c = pe.env_claims(pe.env_labels(by, margin=0.5)).iloc[0]
    assert c["cochran_q"] == pytest.approx(2.0) and c["q_df"] == 1 and c["i_squared"] == pytest.approx(0.5)
    assert c["q_p"] == pytest.approx(0.157299, abs=1e-6)
    assert c["heterogeneity"].startswith("no heterogeneity detected (Cochran's Q = 2, df = 1, p = 0.157, I² = 0.50)")
    assert "with 2 envs this is not evidence" in c["heterogeneity"]
    assert pe.heterogeneity_sentence(12.1, 3, 0.007, 0.75).startswith("its size differs across envs")
