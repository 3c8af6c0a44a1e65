"""directions: every estimator's batch directions on a pool: analytic bandit variances and biases end to end, the
normalization bias, and the trained estimator's direction is exactly minus the trainer's loss gradient."""

import math

import numpy as np
import pytest
import torch

from ablations.config import AXES, RunConfig
from ablations.envs.registry import make_cohort_env
from ablations.probes.directions import pool_directions
from ablations.probes.grid import Estimator, estimator_grid
from ablations.probes.rows import probe_rows
from ablations.train import estimators as est
from ablations.train.loss import run_update
from ablations.train.nets import Head, init_mlp
from ablations.train.rollout import Batch, collect

from tests.helpers.synthetic_pools import bandit_moments, bandit_pool, bandit_rows, bias_tolerance, flat, variance_se


def test_bandit_variances_bias_and_mean_shrinkage_end_to_end():
    p, n, k = 0.3, 4, 1000
    rows, pool = bandit_rows(p, n, k)
    idx = {e.label: j for j, e in enumerate(pool.base)}
    # the bias-only net: ψ = (0, a − p) (the weight sees a zero input), so the analytic variances apply directly
    # (1/L = 1/N here: one step per episode)
    for label, b, single in [("full/none/none/0", 0.0, p * (1 - p) ** 3),
                             ("rtg/value/none/0", p, p * (1 - p) * (1 - 2 * p) ** 2)]:  # cross-fitted V ≈ E r = p
        var, m4 = bandit_moments(p, b, n)
        assert single / n == pytest.approx(var)
        slack = 0.0 if b == 0 else 0.05 * var  # the fitted V is p only up to O(1/√(KN/2))
        assert abs(rows[label]["total_var"] - var) <= 4 * variance_se(var, m4, k) + slack, label
    # b* = E[‖s‖²R]/E[‖s‖²] = 1 − p, estimated on the other half: variance ≈ 0
    assert rows["full/optimal/none/0"]["total_var"] < 0.01 * rows["full/none/none/0"]["total_var"]
    assert rows["full/optimal/none/0"]["critic"] == "crossfit"
    # unbiased estimators: paired bias consistent with 0
    for label in ["full/none/none/0", "rtg/loo/none/0", "full/loo/none/0", "full/optimal/none/0"]:
        assert abs(rows[label]["bias_sq_norm"]) <= bias_tolerance(pool, idx[label]), label
    assert rows["rtg/loo/none/0"]["bias_sq_norm"] == pytest.approx(0.0, abs=1e-15)
    # mean baseline: exactly (1 − 1/N) × loo per batch, so E d_mean = (1 − 1/N) E d_none; bias = ‖∇J‖²/N²
    d_mean, d_loo = pool.directions[idx["full/mean/none/0"]], pool.directions[idx["full/loo/none/0"]]
    assert np.allclose(d_mean, (1 - 1 / n) * d_loo, atol=1e-7)
    grad_j_sq = (p * (1 - p)) ** 2
    tolerance = bias_tolerance(pool, idx["full/mean/none/0"])
    assert abs(rows["full/mean/none/0"]["bias_sq_norm"] - grad_j_sq / n**2) <= tolerance
    ratio = rows["full/mean/none/0"]["mean_sq_norm"] / rows["full/none/none/0"]["mean_sq_norm"]
    assert ratio == pytest.approx((1 - 1 / n) ** 2, rel=0.15)
    # the row flags the trained estimator, and only that one
    assert [r["estimator"] for r in rows.values() if r["is_trained_estimator"]] == ["full/none/none/0"]


def exact_normalized_bias(p, n):
    """returns-normalized, no baseline, one step: Σ_i w_i(a_i − p) = (n−1)·s (s the sample std of the batch's
    rewards), so d = (n−1)s/n on the 1/L = 1/n scale; its large-N limit is σ = √(p(1−p)) = ∇J/σ."""
    from scipy.stats import binom
    c = np.arange(n + 1)
    s = np.sqrt(c * (n - c) / (n * (n - 1)))
    mean_d = float((binom.pmf(c, n, p) * (n - 1) * s / n).sum())
    return (mean_d - math.sqrt(p * (1 - p))) ** 2


def test_returns_normalization_has_a_bias_that_shrinks_with_n():
    p, k = 0.3, 1000
    measured, tolerance = {}, {}
    for n in (2, 16):
        rows, pool = bandit_rows(p, n, k, seed=n)
        row = rows["full/none/returns/0"]
        tolerance[n] = bias_tolerance(pool, pool.base.index(Estimator("full", "none", "returns", 0.0)),
                                      row["reference_scale"])
        # the reference scale is 1/σ̂ from the pool; the finite-N bias matches the exact one
        assert row["reference_scale"] == pytest.approx(1 / math.sqrt(p * (1 - p)), rel=0.05)
        exact = exact_normalized_bias(p, n)
        assert abs(row["bias_sq_norm"] - exact) <= tolerance[n] + 0.1 * exact
        measured[n] = row["bias_sq_norm"]
    assert exact_normalized_bias(p, 2) > 10 * exact_normalized_bias(p, 16)
    assert measured[2] > 2 * tolerance[2]  # nonzero: more than 10 standard errors
    assert measured[16] < measured[2] / 5


def _random_net_pool(cfg, net_seed, env_seed, action_seed):
    """(head, policy, critic, pool): randomly initialized nets of cfg's sizes (no run dimension) and a pool of
    K×N episodes of cfg's env collected with that policy."""
    from ablations.envs.registry import describe
    from ablations.train.nets import head_for, policy_sizes, value_sizes
    spec = describe(cfg.env_id)
    head = head_for(spec)
    gen = torch.Generator().manual_seed(net_seed)
    pol = [p[0] for p in init_mlp(policy_sizes(spec, cfg.hidden), [gen], out_gain=1.0)]
    val = [p[0] for p in init_mlp(value_sizes(spec, cfg.hidden), [gen], out_gain=1.0)]
    env = make_cohort_env([cfg], num_envs=cfg.probe_batches * cfg.episodes_per_update)
    pool = collect(env, np.array([0]), [env_seed], [p.unsqueeze(0) for p in pol], "tanh", head,
                   [np.random.default_rng(action_seed)])
    env.close()
    return head, pol, val, pool


# ---- the probe measures exactly what the trainer applies ------------------------------------------------------
@pytest.mark.parametrize("cfg", [
    RunConfig(returns="rtg", baseline="value", normalize="advantages", entropy_coef=0.05),
    RunConfig(returns="full", baseline="mean", normalize="returns", entropy_coef=0.0),
    RunConfig(returns="rtg", baseline="loo", normalize="none", entropy_coef=0.01),
    RunConfig(returns="full", baseline="value", normalize="returns", entropy_coef=0.0),
    RunConfig(returns="gpomdp", baseline="mean", normalize="none", entropy_coef=0.02, aggregate="step"),
    RunConfig(returns="rtg", baseline="value", normalize="advantages", entropy_coef=0.05, aggregate="step"),
])
def test_the_trained_estimators_direction_is_minus_the_trainers_loss_gradient(cfg):
    cfg = cfg.replace(episodes_per_update=3, probe_batches=4, hidden=(8, 8), gamma=0.95)
    k, n = cfg.probe_batches, cfg.episodes_per_update
    head, pol, val, pool = _random_net_pool(cfg, net_seed=5, env_seed=7, action_seed=0)
    dirs = pool_directions(cfg, head, "tanh", pol, val, pool, k, np.random.default_rng(1))
    trained = [j for j, e in enumerate(estimator_grid([0.0, cfg.entropy_coef] if cfg.entropy_coef else [0.0], n))
               if e.trained_by(cfg)]
    assert len(trained) == 1
    e = dirs.base[trained[0] % len(dirs.base)]
    entropy_grad = dirs.entropy_grads[AXES["aggregate"].index(e.aggregate)]
    d = dirs.directions[dirs.base.index(e)] + cfg.entropy_coef * entropy_grad
    for b in range(k):
        sl = slice(b * n, (b + 1) * n)
        t = int(pool.lengths[0, sl].max())
        mine = Batch(pool.obs[:, sl, :t], pool.actions[:, sl, :t], pool.rewards[:, sl, :t], pool.mask[:, sl, :t],
                     pool.lengths[:, sl], pool.terminated[:, sl], pool.truncated[:, sl])
        ps = [p.clone().requires_grad_(True) for p in pol]
        rtg = est.reward_to_go(mine.rewards, mine.mask, cfg.gamma)
        loss = run_update(cfg, head, "tanh", ps, val, mine, rtg).loss
        want = -flat(torch.autograd.grad(loss, ps)).double().numpy()
        assert np.allclose(d[b], want, rtol=2e-4, atol=1e-6 * np.abs(want).max()), b


def test_one_episode_batches_drop_loo_and_use_the_unbiased_no_baseline_reference():
    rows, pool = bandit_rows(0.4, 1, 50)
    assert not any(r["baseline"] == "loo" for r in rows.values())
    assert rows["full/none/none/0"]["bias_sq_norm"] == 0.0 and rows["full/none/none/0"]["reference"] == \
        "full/none/none/0"
    for nz in ("none", "advantages"):  # w = x − x = 0: zero directions, counted, cosines 0, no NaN
        r = rows[f"rtg/mean/{nz}/0"]
        assert r["snr"] == 0.0 and r["zero_batches"] == r["k_batches"] and r["cos_to_reference"] == 0.0


def test_a_constant_return_signal_gives_zero_normalized_directions_and_a_zero_reference_scale():
    n, k = 4, 6
    pool = bandit_pool(0.5, n * k, np.random.default_rng(0))
    pool.actions.fill_(1.0)
    pool.rewards.fill_(1.0)  # every episode earns the same: σ = 0
    config = RunConfig(episodes_per_update=n, probe_batches=k, returns="full", baseline="none", normalize="none")
    dirs = pool_directions(config, Head("bernoulli", 1), "tanh", [torch.zeros(1, 1), torch.zeros(1)], [], pool, k,
                           np.random.default_rng(1))
    rows = {r["estimator"]: r for r in probe_rows(config, 0, 0, dirs)}
    for label in ["full/none/returns/0", "rtg/mean/advantages/0", "full/loo/returns/0"]:
        assert rows[label]["reference_scale"] == 0.0 and rows[label]["total_var"] == 0.0
        assert rows[label]["bias_sq_norm"] == 0.0
    assert rows["full/none/none/0"]["total_var"] == 0.0  # ψ = a − p = 0.5 always: d is constant


@pytest.mark.parametrize("cfg", [
    RunConfig(returns="rtg", baseline="value", normalize="advantages", entropy_coef=0.05),
    RunConfig(returns="gae", gae_lambda=0.8, baseline="value", normalize="none", entropy_coef=0.0, aggregate="step"),
])
def test_the_factored_statistics_equal_those_of_the_materialized_directions(cfg):
    """`PoolDirections.statistics` forms every Gram from the weight rows' Grams (the optimal baseline's row less b*
    times the ones row, the divisors applied after): it equals `probe_statistics` on each row's materialized [K, P]
    directions and its rescaled reference, row by row, β levels and both aggregations included."""
    from ablations.probes.statistics import probe_statistics
    cfg = cfg.replace(episodes_per_update=4, probe_batches=6, hidden=(8, 8), gamma=0.97)
    k, n = cfg.probe_batches, cfg.episodes_per_update
    head, pol, val, pool = _random_net_pool(cfg, net_seed=3, env_seed=11, action_seed=2)
    dirs = pool_directions(cfg, head, "tanh", pol, val, pool, k, np.random.default_rng(4))
    stats = dirs.statistics()
    d0, h = dirs.directions, dirs.entropy_grads
    u0 = d0[dirs.base.index(Estimator("full", "loo", "none", 0.0))]
    grid = estimator_grid(dirs.betas, n, dirs.lambdas)
    assert any(e.baseline == "optimal" for e in grid) and len(grid) == len(dirs.betas) * len(dirs.base)
    for j, e in enumerate(grid):
        b = j % len(dirs.base)
        he = h[AXES["aggregate"].index(e.aggregate)]
        want = probe_statistics(d0[b] + e.entropy_coef * he, dirs.scales[b] * u0 + e.entropy_coef * he)
        for name in ("total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos", "bias_sq_norm"):
            scale = abs(want["total_var"]) + abs(want["mean_sq_norm"]) if name in ("total_var", "mean_sq_norm",
                                                                                  "bias_sq_norm") else 1.0
            assert stats[name][j] == pytest.approx(want[name], rel=1e-9, abs=1e-9 * scale), (e.label, name)
