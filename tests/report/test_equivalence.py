"""equivalence: TOST against a hand computation, the margin parser and its errors, pooled SD, the classes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from ablations.report import equivalence as eq


def test_tost_paired_matches_a_hand_computation() -> None:
    # d = [1, 2, 0.5, 1.5, 1], margin 2: mean 1.2; squared deviations .04 .64 .49 .09 .04 sum 1.30, var 1.30/4 = .325,
    # se = sqrt(.325/5) = 0.254951; t⁻ = (1.2 + 2)/se = 12.5514, t⁺ = (1.2 − 2)/se = −3.13786, 4 df
    d = np.array([1.0, 2.0, 0.5, 1.5, 1.0])
    se = np.sqrt(0.325 / 5)
    assert se == pytest.approx(0.254951, abs=1e-6)
    p_lower = sps.t.sf((1.2 + 2) / se, 4)
    p_upper = sps.t.cdf((1.2 - 2) / se, 4)
    assert (1.2 - 2) / se == pytest.approx(-3.13786, abs=1e-5)
    assert p_upper == pytest.approx(0.01745, abs=5e-5)  # t_4 tail at 3.138, from tables
    q = sps.t.ppf(0.95, 4)  # 2.131847
    out = eq.tost_paired(d, 2.0)
    assert out["p_lower"] == pytest.approx(p_lower, rel=1e-9)
    assert out["p_upper"] == pytest.approx(p_upper, rel=1e-9)
    assert out["p_tost"] == pytest.approx(p_upper, rel=1e-9)
    assert out["ci90_low"] == pytest.approx(1.2 - q * se) and out["ci90_high"] == pytest.approx(1.2 + q * se)
    # the summary form gives the same numbers; p_tost < .05 ⇔ the 90% CI is inside ±margin
    vec = eq.tost(1.2, se, 4, 2.0)
    assert float(vec["p_tost"]) == pytest.approx(out["p_tost"], rel=1e-9)
    assert out["p_tost"] < 0.05 and -2 < out["ci90_low"] and out["ci90_high"] < 2
    # margin 1.6 < the CI's upper end 1.7435: not equivalent
    assert eq.tost_paired(d, 1.6)["p_tost"] > 0.05


def test_tost_constant_and_missing() -> None:
    assert float(eq.tost(0.5, 0.0, 4, 1.0)["p_tost"]) == 0.0
    assert float(eq.tost(1.5, 0.0, 4, 1.0)["p_tost"]) == 1.0
    assert np.isnan(eq.tost(0.5, 0.1, 4, np.nan)["p_tost"])
    assert np.isnan(eq.tost_paired(np.array([1.0]), 1.0)["p_tost"])


def test_margin_resolve_and_default() -> None:
    assert eq.DEFAULT_MARGIN.resolve(8.0) == 2.0
    assert eq.Margin(5.0, "metric").resolve(np.nan) == 5.0
    assert np.isnan(eq.DEFAULT_MARGIN.resolve(np.nan))
    assert "0.25" in eq.MARGIN_METHODS and "TOST" in eq.MARGIN_METHODS


def test_pooled_sd_by_hand() -> None:
    # (n, s) = (5, 2), (3, 4), (1, nan): sqrt((4·4 + 2·16) / 6) = sqrt(8)
    assert eq.pooled_sd(np.array([5, 3, 1]), np.array([2.0, 4.0, np.nan])) == pytest.approx(np.sqrt(8))
    assert np.isnan(eq.pooled_sd(np.array([1]), np.array([np.nan])))


def test_classify() -> None:
    cls = eq.classify([5, -5, 0.1, 3, 5], [1, -9, -0.5, -1, 1], [9, -1, 0.7, 7, 9], [0.01, 0.01, 0.9, 0.3, 0.01],
                      [0.9, 0.9, 0.01, 0.4, 0.01])
    assert list(cls) == ["helps", "hurts", "equivalent", "undecided", "helps"]
    assert list(eq.classify([5], [1], [9], [0.01], [0.9], higher_is_better=False)) == ["hurts"]
