import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ablations.train import estimators as est
from ablations.config import AXES, RunConfig
from ablations.train.engine import run_update, train_cohort
from ablations.envs.registry import make_cohort_env
from ablations.train.nets import Head, init_mlp
from ablations.probes.variance import (OPTIMAL, Estimator, estimator_grid, layer_scores, pool_directions, probe_rows,
                              probe_statistics)
from ablations.train.rollout import Batch, collect


# ---- helpers ---------------------------------------------------------------------------------------------------------
def flat(grads):
    return torch.cat([g.reshape(-1) for g in grads])


def padded_rows(m, lengths, dim, rng):
    """A [M, T] mask with the given episode lengths and random observations [S, dim] on its valid rows."""
    mask = torch.zeros(m, max(lengths), dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    return mask, torch.from_numpy(rng.standard_normal((int(mask.sum()), dim)).astype(np.float32))


def actions_for(head, s, rng):
    if head.kind == "categorical":
        return torch.from_numpy(rng.integers(0, head.act_dim, s))
    if head.kind == "gaussian":
        return torch.from_numpy(rng.standard_normal((s, head.act_dim)).astype(np.float32))
    return torch.from_numpy((rng.random((s, head.act_dim)) < 0.5).astype(np.float32))


def two_point_moments(values, probs, n):
    """Exact variance and 4th central moment of the mean of n iid draws of a two-point variable."""
    x1, x0 = values
    p = probs
    mean, var = p * x1 + (1 - p) * x0, p * (1 - p) * (x1 - x0) ** 2
    m4 = p * (x1 - mean) ** 4 + (1 - p) * (x0 - mean) ** 4
    return var / n, m4 / n**3 + 3 * (n - 1) * var**2 / n**3


def bandit_moments(p, b, n):
    """Variance and 4th central moment of a batch mean of n single-episode estimates (a − p)(a − b), a ~ B(p)."""
    return two_point_moments(((1 - p) * (1 - b), p * b), p, n)


def variance_se(var, m4, k):
    """Standard error of the unbiased sample variance of k iid draws with variance var and 4th central moment m4."""
    return math.sqrt(max(m4 - var**2 * (k - 3) / (k - 1), 0.0) / k)


# ---- per-step scores ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,obs_dim,act_dim", [("categorical", 4, 2), ("gaussian", 3, 2), ("bernoulli", 5, 3)])
def test_per_episode_scores_equal_a_loop_of_backward_and_torch_func(kind, obs_dim, act_dim):
    rng = np.random.default_rng(0)
    head = Head(kind, act_dim)
    sizes = [obs_dim, 16, 16, head.out_dim]
    params = [p[0] for p in init_mlp(sizes, [torch.Generator().manual_seed(1)], out_gain=1.0)]
    params = [p + 0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)) for p in params]
    lengths = [3, 1, 7, 4]
    mask, obs = padded_rows(len(lengths), lengths, obs_dim, rng)
    acts = actions_for(head, obs.shape[0], rng)
    scores, _ = layer_scores(head, "tanh", params, obs, acts)
    per_episode = scores.episode_sums(mask, [None])[0]
    episode = mask.nonzero()[:, 0]
    onehot = (episode.unsqueeze(0) == torch.arange(len(lengths)).unsqueeze(1)).float()
    by_contraction = scores.contract(onehot)
    psi = scores.vectors()
    from ablations.train.nets import forward_single
    loop = []
    for i in range(len(lengths)):
        ps = [p.detach().clone().requires_grad_(True) for p in params]
        rows = episode == i
        head.log_prob(forward_single(ps, obs[rows], "tanh"), acts[rows]).sum().backward()
        loop.append(flat([p.grad for p in ps]))
    loop = torch.stack(loop)
    assert torch.allclose(per_episode, loop, atol=1e-5, rtol=1e-4)
    assert torch.allclose(by_contraction, loop, atol=1e-5, rtol=1e-4)
    assert torch.allclose(onehot @ psi, loop, atol=1e-5, rtol=1e-4)
    # torch.func.vmap over grad gives the same per-step ψ
    from torch.func import grad, vmap

    def logp(ps, o, a):
        return head.log_prob(forward_single(ps, o.unsqueeze(0), "tanh"), a.unsqueeze(0))[0]

    per_step = vmap(grad(logp), in_dims=(None, 0, 0))(tuple(p.detach() for p in params), obs, acts)
    assert torch.allclose(flat_rows(per_step, obs.shape[0]), psi, atol=1e-5, rtol=1e-4)


def flat_rows(grads, s):
    return torch.cat([g.reshape(s, -1) for g in grads], dim=1)


def test_contraction_through_a_basis_is_exact_also_outside_its_span():
    rng = np.random.default_rng(3)
    head = Head("categorical", 3)
    params = [p[0] for p in init_mlp([4, 8, 3], [torch.Generator().manual_seed(0)], out_gain=1.0)]
    obs = torch.from_numpy(rng.standard_normal((50, 4)).astype(np.float32))
    scores, _ = layer_scores(head, "tanh", params, obs, actions_for(head, 50, rng))
    basis = torch.from_numpy(rng.standard_normal((3, 50)))
    w = torch.cat([torch.from_numpy(rng.standard_normal((4, 3))) @ basis, torch.from_numpy(rng.standard_normal((2, 50)))])
    direct = scores.contract(w.float()).double()
    assert torch.allclose(scores.contract_in_span(w, basis), direct, atol=1e-4, rtol=1e-4)


# ---- statistics -----------------------------------------------------------------------------------------------------
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


# ---- the bandit end to end through pool_directions ------------------------------------------------------------------
def bandit_pool(p, m, rng):
    """m one-step episodes of a Bernoulli bandit with P(a=1) = p and r = a; observations are a constant 0."""
    a = torch.from_numpy((rng.random(m) < p).astype(np.float32))
    ones = torch.ones(1, m, dtype=torch.bool)
    return Batch(obs=torch.zeros(1, m, 1, 1), actions=a.reshape(1, m, 1, 1), rewards=a.reshape(1, m, 1).clone(),
                 mask=torch.ones(1, m, 1, dtype=torch.bool), lengths=torch.ones(1, m, dtype=torch.long),
                 terminated=ones, truncated=~ones)


def bandit_rows(p, n, k, seed=0, **cfg):
    """The probe rows of the bandit under the package's Bernoulli head with a bias-only network (logit = b₀)."""
    theta = math.log(p / (1 - p))
    pol = [torch.zeros(1, 1), torch.tensor([theta])]
    cfg = {"returns": "full", "baseline": "none", "normalize": "none", **cfg}
    config = RunConfig(episodes_per_update=n, probe_batches=k, gamma=0.9, **cfg)
    rng = np.random.default_rng(seed)
    pool = pool_directions(config, Head("bernoulli", 1), "tanh", pol, [], bandit_pool(p, n * k, rng), k, rng)
    return {r["estimator"]: r for r in probe_rows(config, 0, 0, pool)}, pool


def bias_tolerance(pool, label_index, c=1.0):
    """5 standard errors of the unbiased ‖E(d − u)‖² estimate (plug-in, as for a Gaussian mean of the differences)."""
    d, u = pool.directions[label_index], c * pool.directions[pool.base.index(Estimator("rtg", "loo", "none", 0.0))]
    diff = d - u
    k = diff.shape[0]
    mu2 = float((diff.mean(axis=0) ** 2).sum())
    var = float(((diff - diff.mean(axis=0)) ** 2).sum() / (k - 1))
    return 5 * math.sqrt(4 * mu2 * var / k + 2 * var**2 / k**2) + 1e-12


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
    assert abs(rows["full/mean/none/0"]["bias_sq_norm"] - grad_j_sq / n**2) <= bias_tolerance(pool, idx["full/mean/none/0"])
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


# ---- the probe measures exactly what the trainer applies --------------------------------------------------------------
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
    from ablations.envs.registry import describe
    from ablations.train.nets import head_for, policy_sizes, value_sizes
    spec = describe(cfg.env_id)
    head = head_for(spec)
    gen = torch.Generator().manual_seed(5)
    pol = [p[0] for p in init_mlp(policy_sizes(spec, cfg.hidden), [gen], out_gain=1.0)]
    val = [p[0] for p in init_mlp(value_sizes(spec, cfg.hidden), [gen], out_gain=1.0)]
    env = make_cohort_env([cfg], num_envs=k * n)
    rng = np.random.default_rng(0)
    pool = collect(env, np.array([0]), [7], [p.unsqueeze(0) for p in pol], "tanh", head, [rng])
    env.close()
    dirs = pool_directions(cfg, head, "tanh", pol, val, pool, k, np.random.default_rng(1))
    trained = [j for j, e in enumerate(estimator_grid([0.0, cfg.entropy_coef] if cfg.entropy_coef else [0.0], n))
               if e.trained_by(cfg)]
    assert len(trained) == 1
    e = dirs.base[trained[0] % len(dirs.base)]
    d = dirs.directions[dirs.base.index(e)] + cfg.entropy_coef * dirs.entropy_grads[AXES["aggregate"].index(e.aggregate)]
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


# ---- the engine hook ------------------------------------------------------------------------------------------------
SMALL = RunConfig(total_steps=1200, hidden=(16, 16), episodes_per_update=4, probe_batches=3, eval_episodes=2,
                  policy_lr=1e-2)
MIX = [SMALL.replace(seed=1, baseline="value", entropy_coef=0.01),
       SMALL.replace(seed=2, returns="full", baseline="loo", normalize="none")]

DESIGN_COLUMNS = ["run_id", "update", "env_steps", "estimator", "returns", "baseline", "normalize", "entropy_coef",
                  "n_episodes", "k_batches", "total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos",
                  "bias_sq_norm", "is_trained_estimator"]


def without_id(rows):
    return [{k: v for k, v in r.items() if k != "run_id"} for r in rows]


def same_rows(a, b):
    return len(a) == len(b) and all(x.keys() == y.keys() and all(
        x[c] == y[c] or (isinstance(x[c], float) and math.isnan(x[c]) and math.isnan(y[c])) for c in x)
        for x, y in zip(a, b))


@pytest.mark.parametrize("backend", ["native", "gymnasium"])
def test_probes_on_leave_training_rows_bit_identical_and_probe_rows_do_not_depend_on_batch_mates(backend):
    off = train_cohort([c.replace(env_backend=backend) for c in MIX])
    on_cfgs = [c.replace(env_backend=backend, probe_every=2) for c in MIX]
    on = train_cohort(on_cfgs)
    assert same_rows(without_id(off.curves), without_id(on.curves))
    assert [r["eval_return"] for r in off.runs] == [r["eval_return"] for r in on.runs]
    # a run's probe rows are the same alone as inside the cohort
    alone = train_cohort([on_cfgs[1]])
    mine = [r for r in on.probes if r["run_id"] == on_cfgs[1].run_id]
    assert mine and same_rows(alone.probes, mine)


def test_probe_rows_have_the_design_columns_in_a_deterministic_order():
    cfg = MIX[0].replace(probe_every=2)
    res = train_cohort([cfg])
    rows = res.probes
    assert all(list(r)[: len(DESIGN_COLUMNS)] == DESIGN_COLUMNS for r in rows)
    updates = sorted({r["update"] for r in rows})
    assert updates[0] == 0 and all(u % 2 == 0 for u in updates)
    per_checkpoint = [r for r in rows if r["update"] == 0]
    labels = [r["estimator"] for r in per_checkpoint]
    assert labels == [e.label for e in estimator_grid([0.0, 0.01], SMALL.episodes_per_update)]
    assert len(labels) == 2 * 2 * 3 * (3 * 4 + 1)  # β × aggregate × returns × (baselines × normalizations + optimal)
    assert len(set(labels)) == len(labels)
    assert [r["estimator"] for r in per_checkpoint if r["is_trained_estimator"]] == ["rtg/value/advantages/0.01"]
    assert {r["critic"] for r in per_checkpoint if r["baseline"] == "value" and r["normalize"] != "returns"
            and r["returns"] == "rtg"} == {"run"}
    for r in rows:
        for c in ["total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos", "bias_sq_norm",
                  "entropy_coef", "rel_bias"]:
            assert type(r[c]) is float and not math.isnan(r[c])
        assert r["reference"] == "full/loo/none/0" and r["aggregate"] in ("episode", "step")
        assert r["estimator"].endswith("/step") == (r["aggregate"] == "step")
        assert r["n_episodes"] == 4 and r["k_batches"] == 3
        assert r["total_var"] >= 0
    assert OPTIMAL in {r["baseline"] for r in rows}


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


# ---- no NaN in probes.csv for any shipped study ---------------------------------------------------------------------
STUDY_FILES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_every_shipped_studys_configs_give_probe_rows_without_nan(path):
    """Each distinct config of the study (first seed), a tiny budget, probes at updates 0 and 1."""
    from ablations.study.design import expand, load_study

    configs = {c.replace(seed=0).run_id: c for c in expand(load_study(path))}
    try:
        describe_env = __import__("ablations.envs.registry", fromlist=["describe"]).describe
        first = next(iter(configs.values()))
        spec = describe_env(first.env_id, first.preprocess)
    except Exception as exc:  # an extra (atari, box2d) not installed
        pytest.skip(f"{path.stem}: {exc}")
    if first.env_id.startswith("ALE/"):  # pong.toml, pong_curve.toml
        pytest.skip(f"{path.stem}: one Pong probe pool is ~30 games of thousands of frames (and rally returns are "
                    "not probed); its estimators are CartPole's")
    budget = (spec.max_episode_steps or 500) * first.episodes_per_update + 1  # two updates: probes at updates 0 and 1
    runs = [c.replace(total_steps=budget, probe_every=1, probe_batches=3, eval_episodes=0)
            for c in list(configs.values())[:48]]
    by_key: dict = {}
    for c in runs:
        by_key.setdefault(c.cohort_key(), []).append(c)
    for group in by_key.values():
        res = train_cohort(group)
        assert res.probes
        for row in res.probes:
            bad = [k for k, v in row.items() if isinstance(v, float) and math.isnan(v)]
            assert not bad, (path.stem, row["estimator"], bad)
