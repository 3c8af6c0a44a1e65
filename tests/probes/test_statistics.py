"""statistics: exact small answers, the zero-direction convention, and the analytic bandit variances."""

import math

import numpy as np
import pytest

from ablations.probes.statistics import probe_statistics

from tests.helpers.synthetic_pools import bandit_moments, variance_se


def test_statistics_exact_small_answers():
    d = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    st = probe_statistics(d, d)
    # mean (2/3, 2/3); deviations (1/3,−2/3), (−2/3,1/3), (1/3,1/3): Σ‖·‖² = 5/9+5/9+2/9 = 4/3, /(K−1) = 2/3
    assert st["total_var"] == pytest.approx(2 / 3)
    assert st["mean_sq_norm"] == pytest.approx(8 / 9 - 2 / 9)
    assert st["snr"] == pytest.approx((8 / 9 - 2 / 9) / (2 / 3))
    assert st["pairwise_cos"] == pytest.approx((0 + 2 / math.sqrt(2)) * 2 / 6)  # pairs: 0, 1/√2, 1/√2
    assert st["bias_sq_norm"] == 0.0
    # batch k against the mean of the others: (1,0)·(.5,1); (0,1)·(1,.5); (1,1)·(.5,.5)
    cos = [0.5 / math.sqrt(1.25), 0.5 / math.sqrt(1.25), 1.0]
    assert st["cos_to_reference"] == pytest.approx(np.mean(cos))
    shifted = probe_statistics(d + np.array([3.0, 0.0]), d)  # a constant offset: bias ‖(3,0)‖² exactly
    assert shifted["bias_sq_norm"] == pytest.approx(9.0)
    assert shifted["total_var"] == pytest.approx(2 / 3)
    zero = probe_statistics(np.zeros((4, 3)), np.ones((4, 3)))
    # zero directions: cosine 0 by convention, counted, never NaN
    assert zero["snr"] == 0.0 and zero["pairwise_cos"] == 0.0 and zero["total_var"] == 0.0
    assert zero["cos_to_reference"] == 0.0 and zero["zero_batches"] == 4 and zero["reference_zero_batches"] == 0
    assert zero["bias_sq_norm"] == pytest.approx(3.0) and zero["rel_bias"] == pytest.approx(1.0)
    one_zero = probe_statistics(np.vstack([np.zeros((1, 3)), np.ones((3, 3))]), np.ones((4, 3)))
    assert one_zero["zero_batches"] == 1 and one_zero["cos_to_reference"] == pytest.approx(0.75)
    assert one_zero["pairwise_cos"] == pytest.approx(0.5)  # 6 of the 12 ordered pairs have cosine 1


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_statistics_on_synthetic_bandit_scores_match_the_analytic_variances(p):
    """Bernoulli policy, one logit θ, r = 1{a=1}: ψ = a − p. The single-episode estimator ψ(r − b) has variance
    p(1−p)³ (b = 0), p(1−p)(1−2p)² (b = p) and 0 (b* = E[ψ²r]/E[ψ²] = 1 − p); a batch of N averages N of them."""
    rng = np.random.default_rng(1)
    k, n = 2000, 4
    a = (rng.random((k, n)) < p).astype(float)
    psi = a - p
    for b, expected in [(0.0, p * (1 - p) ** 3), (p, p * (1 - p) * (1 - 2 * p) ** 2), (1 - p, 0.0)]:
        d = (psi * (a - b)).mean(axis=1)[:, None]  # [K, P=1]
        st = probe_statistics(d, d)
        var, m4 = bandit_moments(p, b, n)
        assert var == pytest.approx(expected / n)
        assert abs(st["total_var"] - var) <= 4 * variance_se(var, m4, k) + 1e-12
        mean_sq = (p * (1 - p) * (1 - b) + (1 - p) * p * b) ** 2  # E d = p(1−p): every b is unbiased here
        assert st["mean_sq_norm"] == pytest.approx(mean_sq, abs=4 * math.sqrt(4 * mean_sq * var / k) + 1e-9)
