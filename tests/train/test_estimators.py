import math

import numpy as np
import pytest
import torch

from ablations.train import estimators as est


def grid(*episodes, t=None):
    """Episodes (lists of rewards) of one run → rewards [1, N, T] float64 and mask."""
    t = t or max(len(e) for e in episodes)
    r = torch.zeros(1, len(episodes), t, dtype=torch.float64)
    m = torch.zeros(1, len(episodes), t, dtype=torch.bool)
    for i, e in enumerate(episodes):
        r[0, i, : len(e)] = torch.tensor(e, dtype=torch.float64)
        m[0, i, : len(e)] = True
    return r, m


def test_worked_example_reward_to_go_and_sample_std_standardization():
    r, m = grid([1.0, 0.0, 0.0, 2.0])
    g = est.reward_to_go(r, m, 0.9)
    assert torch.allclose(g[0, 0], torch.tensor([2.458, 1.62, 1.8, 2.0], dtype=torch.float64))
    z = est.standardize(g, m)[0, 0]
    assert np.allclose(z.numpy(), [1.354, -0.969, -0.470, 0.085], atol=5e-4)
    # the population-std variant of DESIGN.md is not what we use
    assert not np.allclose(z.numpy(), [1.564, -1.119, -0.543, 0.098], atol=5e-3)


def test_full_return_repeats_g0_and_padding_is_zero():
    r, m = grid([1.0, 0.0, 0.0, 2.0], [1.0], t=5)
    x = est.full_return(r, m, 0.9)
    assert torch.allclose(x[0, 0], torch.tensor([2.458] * 4 + [0.0], dtype=torch.float64))
    assert torch.equal(x[0, 1], torch.tensor([1.0, 0, 0, 0, 0], dtype=torch.float64))
    # padding never changes a value: the same episode alone, without padding
    alone = est.reward_to_go(*grid([1.0, 0.0, 0.0, 2.0]), 0.9)
    assert torch.equal(est.reward_to_go(r, m, 0.9)[0, 0, :4], alone[0, 0])


def test_per_run_gamma():
    r = torch.ones(2, 1, 3, dtype=torch.float64)
    m = torch.ones(2, 1, 3, dtype=torch.bool)
    g = est.reward_to_go(r, m, torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert g[0, 0].tolist() == [1.75, 1.5, 1.0] and g[1, 0].tolist() == [3.0, 2.0, 1.0]


def test_mean_and_loo_baselines_by_hand():
    # x (rtg with γ=1): episode A rewards [1, 1] → [2, 1]; episode B [3] → [3]; C [0, 0, 6] → [6, 6, 6]
    r, m = grid([1.0, 1.0], [3.0], [0.0, 0.0, 6.0])
    x = est.reward_to_go(r, m, 1.0)
    b = est.mean_baseline(x, m)[0]
    # step 0: (2+3+6)/3; step 1: (1+0+6)/3; step 2: (0+0+6)/3 — ended episodes count as zero
    assert torch.allclose(b[0], torch.tensor([11 / 3, 7 / 3, 0.0], dtype=torch.float64))
    assert torch.allclose(b[1], torch.tensor([11 / 3, 0.0, 0.0], dtype=torch.float64))
    assert torch.allclose(b[2], torch.tensor([11 / 3, 7 / 3, 2.0], dtype=torch.float64))
    loo = est.loo_baseline(x, m)[0]
    assert torch.allclose(loo[0], torch.tensor([9 / 2, 6 / 2, 0.0], dtype=torch.float64))
    assert torch.allclose(loo[2], torch.tensor([5 / 2, 1 / 2, 0.0], dtype=torch.float64))


def test_loo_is_n_over_n_minus_1_times_mean_baselined_signal():
    gen = torch.Generator().manual_seed(0)
    r = torch.rand(3, 6, 9, generator=gen, dtype=torch.float64)
    lengths = torch.randint(1, 10, (3, 6), generator=gen)
    m = torch.arange(9).view(1, 1, 9) < lengths.unsqueeze(-1)
    w_mean, _ = est.policy_weights(r, m, 0.97, "rtg", "mean", "none")
    w_loo, _ = est.policy_weights(r, m, 0.97, "rtg", "loo", "none")
    assert torch.allclose(w_loo, w_mean * 6 / 5, atol=1e-12)


def test_normalize_advantages_has_zero_mean_unit_sample_std_per_run():
    gen = torch.Generator().manual_seed(1)
    r = torch.randn(2, 4, 7, generator=gen, dtype=torch.float64)
    m = torch.ones_like(r, dtype=torch.bool)
    m[0, 0, 5:] = False
    w, _ = est.policy_weights(r, m, 0.9, "rtg", "mean", "advantages")
    for k in range(2):
        v = w[k][m[k]]
        assert abs(float(v.mean())) < 1e-12 and abs(float(v.std()) - 1) < 1e-6
    assert torch.all(w[~m] == 0)


def test_value_baseline_is_subtracted_and_target_is_the_signal():
    r, m = grid([1.0, 1.0])
    values = torch.tensor([[[0.5, 0.25]]], dtype=torch.float64, requires_grad=True)
    w, target = est.policy_weights(r, m, 1.0, "rtg", "value", "none", values)
    assert w.tolist() == [[[1.5, 0.75]]] and target.tolist() == [[[2.0, 1.0]]]
    assert not w.requires_grad


def test_reduce_and_pg_terms():
    r, m = grid([1.0, 2.0], [3.0])
    logp = torch.full_like(r, -0.5)
    terms = est.pg_terms(r, logp, m)
    assert est.reduce(terms, m, "episode").item() == pytest.approx((0.5 + 1.0 + 1.5) / 2)
    assert est.reduce(terms, m, "step").item() == pytest.approx((0.5 + 1.0 + 1.5) / 3)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\[R, N, T\]"):
        est.reward_to_go(torch.zeros(3, 4), torch.ones(3, 4, dtype=torch.bool), 0.9)


# ---- a two-armed bandit with a known gradient -------------------------------------------------------------------
def bandit_estimates(baseline: str, n: int, batches: int, seed: int = 0):
    """Softmax policy over logits θ = [0.3, -0.2]; reward r(a) ~ N(μ_a, 1), μ = [1, 2]. One-step episodes.

    ∇_θ log π(a) = e_a − π, so a batch's estimate is (1/N) Σ_i w_i (e_{a_i} − π); the true ∇J_k = π_k (μ_k − J).
    """
    rng = np.random.default_rng(seed)
    theta = np.array([0.3, -0.2])
    pi = np.exp(theta) / np.exp(theta).sum()
    mu = np.array([1.0, 2.0])
    true = pi * (mu - pi @ mu)
    a = (rng.random((batches, n)) > pi[0]).astype(int)
    rew = mu[a] + rng.standard_normal((batches, n))
    r = torch.from_numpy(rew).unsqueeze(-1)
    m = torch.ones_like(r, dtype=torch.bool)
    w, _ = est.policy_weights(r, m, 0.99, "rtg", baseline, "none")
    score = np.eye(2)[a] - pi  # [B, N, 2]
    g = (w[..., 0].numpy()[..., None] * score).mean(axis=1)  # [B, 2]
    return g, true


@pytest.mark.parametrize("baseline", ["none", "loo"])
def test_none_and_loo_are_unbiased_on_a_bandit(baseline):
    g, true = bandit_estimates(baseline, n=4, batches=40_000)
    se = g.std(axis=0, ddof=1) / math.sqrt(len(g))
    assert np.all(np.abs(g.mean(axis=0) - true) < 4 * se), (g.mean(axis=0), true, se)


def test_mean_baseline_shrinks_the_gradient_by_one_minus_one_over_n():
    n = 4
    g, true = bandit_estimates("mean", n=n, batches=40_000)
    se = g.std(axis=0, ddof=1) / math.sqrt(len(g))
    assert np.all(np.abs(g.mean(axis=0) - (1 - 1 / n) * true) < 4 * se)
    assert np.all(np.abs(g.mean(axis=0) - true) > 4 * se)  # and the shrinkage is detectable


# ---- rally returns (pg-pong): the discounted sum restarts at every non-zero reward ---------------------------------
def test_rally_returns_by_hand():
    # two points: the first won at t = 2 (+1), the second lost at t = 4 (−1); γ = 0.9
    r, m = grid([0.0, 0.0, 1.0, 0.0, -1.0], [0.0, -1.0], t=6)
    x = est.return_signal(r, m, 0.9, "rally")
    assert torch.allclose(x[0, 0], torch.tensor([0.81, 0.9, 1.0, -0.9, -1.0, 0.0], dtype=torch.float64))
    assert torch.allclose(x[0, 1], torch.tensor([-0.9, -1.0, 0, 0, 0, 0], dtype=torch.float64))  # padding is zero
    # pg-pong's discount_rewards, verbatim in numpy, on the same episode
    def discount_rewards(rr, gamma=0.9):
        out, running_add = np.zeros_like(rr), 0.0
        for t in reversed(range(rr.size)):
            if rr[t] != 0:
                running_add = 0
            running_add = running_add * gamma + rr[t]
            out[t] = running_add
        return out
    assert np.allclose(x[0, 0, :5].numpy(), discount_rewards(np.array([0.0, 0.0, 1.0, 0.0, -1.0])))
    # the plain reward-to-go carries the lost point back into the first one: 0.81 − 0.9⁴ at t = 0
    rtg = est.return_signal(r, m, 0.9, "rtg")
    assert rtg[0, 0, 0].item() == pytest.approx(0.81 - 0.9 ** 4)
    # a single non-zero reward, at the episode's end: rally = rtg; a dense reward: rally = r_t
    r1, m1 = grid([0.0, 0.0, 0.0, 2.0])
    assert torch.equal(est.return_signal(r1, m1, 0.9, "rally"), est.return_signal(r1, m1, 0.9, "rtg"))
    r2, m2 = grid([1.0, 1.0, 1.0])
    assert torch.equal(est.return_signal(r2, m2, 0.99, "rally"), r2)


def test_rally_reset_is_per_run_and_leaves_the_other_runs_bit_identical():
    gen = torch.Generator().manual_seed(0)
    r = torch.randint(-1, 2, (3, 4, 9), generator=gen).float() * (torch.rand(3, 4, 9, generator=gen) < 0.3)
    m = torch.ones(3, 4, 9, dtype=torch.bool)
    m[:, 1, 6:] = False
    gamma = torch.tensor([0.99, 0.9, 0.5])
    mixed = est.reward_to_go(r, m, gamma, torch.tensor([True, False, True]))
    plain = est.reward_to_go(r, m, gamma)
    rally = est.reward_to_go(r, m, gamma, True)
    assert torch.equal(mixed[1], plain[1])
    assert torch.equal(mixed[0], rally[0]) and torch.equal(mixed[2], rally[2])
    assert not torch.equal(rally, plain)
    for j in (0, 2):  # each run alone, without batch-mates
        assert torch.equal(est.reward_to_go(r[j:j + 1], m[j:j + 1], gamma[j:j + 1], True)[0], mixed[j])


def test_the_aggregation_divisor_is_n_episodes_or_l_steps_and_nothing_else():
    assert est.aggregation_divisor("episode", 4, 11) == 4
    assert est.aggregation_divisor("step", 4, 11) == 11
    lengths = torch.tensor([[3.0], [5.0]])
    assert torch.equal(est.aggregation_divisor("step", torch.full_like(lengths, 2.0), lengths), lengths)
    with pytest.raises(ValueError, match="episode | step"):
        est.aggregation_divisor("batch", 4, 11)  # type: ignore[arg-type]


def test_gae_by_hand_with_padding_and_the_bootstrapped_last_reward():
    """rewards [1, 0, 2] and [1, 1], V [0.5, 1, −1] and [2, 0], γ = 0.9, λ = 0.5 (γλ = 0.45): δ = [1.4, −1.9, 3] and
    [−1, 1] (V = 0 after the last step), A = [1.1525, −0.55, 3] and [−0.55, 1]; bootstrapping the second episode
    with V(s_T) = 10 adds γ·10 = 9 to its last reward: δ₁ = 10, A = [3.5, 10], G = [10, 10]."""
    r, m = grid([1.0, 0.0, 2.0], [1.0, 1.0])
    v = torch.tensor([[[0.5, 1.0, -1.0], [2.0, 0.0, 0.0]]], dtype=torch.float64)
    a = est.gae_advantages(r, v, m, 0.9, 0.5)
    assert torch.allclose(a, torch.tensor([[[1.1525, -0.55, 3.0], [-0.55, 1.0, 0.0]]], dtype=torch.float64))
    assert torch.allclose(est.gae_advantages(r, v, m, 0.9, 0.0), torch.tensor(
        [[[1.4, -1.9, 3.0], [-1.0, 1.0, 0.0]]], dtype=torch.float64))  # λ = 0: the TD errors
    assert torch.allclose(est.gae_advantages(r, v, m, 0.9, 1.0), (est.reward_to_go(r, m, 0.9) - v) * m)  # G − V
    rb = est.bootstrap_rewards(r, m, torch.tensor([[0.0, 10.0]], dtype=torch.float64), 0.9)
    assert torch.equal(rb, torch.tensor([[[1.0, 0.0, 2.0], [1.0, 10.0, 0.0]]], dtype=torch.float64))
    assert torch.allclose(est.gae_advantages(rb, v, m, 0.9, 0.5)[0, 1], torch.tensor([3.5, 10.0, 0.0],
                                                                                     dtype=torch.float64))
    assert torch.allclose(est.reward_to_go(rb, m, 0.9)[0, 1], torch.tensor([10.0, 10.0, 0.0], dtype=torch.float64))
    gam = torch.tensor([0.9, 0.5], dtype=torch.float64)  # per-run γ and λ broadcast over episodes
    two = est.gae_advantages(torch.cat([r, r]), torch.cat([v, v]), torch.cat([m, m]), gam, torch.tensor([0.5, 0.0]))
    assert torch.allclose(two[0], a[0]) and torch.allclose(two[1], est.gae_advantages(r, v, m, 0.5, 0.0)[0])


def test_gae_weights_gamma_t_normalization_and_target():
    r, m = grid([1.0, 0.0, 2.0], [1.0, 1.0])
    v = torch.tensor([[[0.5, 1.0, -1.0], [2.0, 0.0, 0.0]]], dtype=torch.float64)
    rtg = est.reward_to_go(r, m, 0.9)
    a = est.gae_advantages(r, v, m, 0.9, 0.5)
    w, target = est.weights(r, rtg, m, 0.9, "gae", "value", "none", v, 0.5)
    assert torch.equal(w, a) and torch.equal(target, rtg)  # the critic regresses on G_t, whatever λ
    w, _ = est.weights(r, rtg, m, 0.9, "gae_gpomdp", "value", "none", v, 0.5)
    assert torch.allclose(w, a * torch.tensor([1.0, 0.9, 0.81], dtype=torch.float64) * m)
    w, _ = est.weights(r, rtg, m, 0.9, "gae", "value", "advantages", v, 0.5)
    assert torch.allclose(w, est.standardize(a, m))  # advantage normalization standardizes A^λ
    assert torch.equal(est.policy_weights(r, m, 0.9, "gae", "value", "none", v, 0.5)[0], a)
    for bad in (dict(baseline="none", values=v), dict(baseline="value", values=None)):
        with pytest.raises(ValueError, match="baseline='value'"):
            est.weights(r, rtg, m, 0.9, "gae", bad["baseline"], "none", bad["values"], 0.5)
    with pytest.raises(ValueError, match="none | advantages"):
        est.weights(r, rtg, m, 0.9, "gae", "value", "returns", v, 0.5)
