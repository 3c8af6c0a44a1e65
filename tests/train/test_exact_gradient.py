"""Every estimator's sample mean against its exact expectation on `ablations/EnumMDP-v0` (tests/exact.py).

Episodes are drawn iid from the enumerated distribution P_θ(τ) (numpy); everything after that is the package's own:
the network's scores (`probes.layer_scores`), the return signals and baselines (`estimators`), the aggregation, and
the probes' directions and columns (`probes.pool_directions`). A sample mean of K batch directions passes when every
coordinate is within a Bonferroni-corrected normal interval (family α = 1e-3 over the P coordinates) of the exact value.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy import stats

from ablations.config import RunConfig
from ablations.envs import enum_mdp
from ablations.probes.directions import pool_directions
from ablations.probes.factored import layer_scores
from ablations.probes.grid import Estimator
from ablations.probes.rows import probe_rows
from ablations.train import estimators as est
from ablations.train.nets import Head, init_mlp
from ablations.train.rollout import Batch

from tests.helpers.exact import (KINDS, Exact, exact, gae_by_sum, returns_by_sum, values_infinite,
                                 values_time_limited)

GAMMA = 0.9
HEAD = Head("categorical", enum_mdp.N_ACTIONS)
PARAMS = [p[0] for p in init_mlp([enum_mdp.N_STATES, 8, enum_mdp.N_ACTIONS],
                                 [torch.Generator().manual_seed(3)], out_gain=1.0)]
EXACT = exact(PARAMS, GAMMA)


def within(samples: np.ndarray, want: np.ndarray, alpha: float = 1e-3) -> tuple[bool, float]:
    """Is the mean of samples [K, P] within the Bonferroni z-interval of `want`? → (ok, largest |z|)."""
    k = samples.shape[0]
    diff = samples.mean(axis=0) - want
    se = samples.std(axis=0, ddof=1) / np.sqrt(k)
    const = se <= 1e-12 * (1 + np.abs(want))  # coordinates that never vary (unreachable units): must match exactly
    assert np.allclose(diff[const], 0.0, atol=1e-6), diff[const]
    z = np.abs(diff[~const]) / se[~const]
    return bool((z <= stats.norm.ppf(1 - alpha / (2 * samples.shape[1]))).all()), float(z.max())


def sampled(n: int, k: int, seed: int, ex: Exact = EXACT):
    """K×N iid trajectory indices → padded float32 tensors [K, N, H] (rewards, mask) and the indices [K, N]."""
    idx = ex.sample(np.random.default_rng(seed), k * n).reshape(k, n)
    rewards = torch.from_numpy(ex.rewards[idx])
    mask = torch.from_numpy(np.arange(enum_mdp.HORIZON) < ex.lengths[idx][..., None])
    return idx, rewards, mask


def package_scores() -> np.ndarray:
    """ψ of every trajectory's steps from the package's `layer_scores` (float32) → [M, H, P]."""
    valid = np.arange(enum_mdp.HORIZON) < EXACT.lengths[:, None]
    obs = torch.from_numpy(EXACT.obs[valid])
    acts = torch.from_numpy(EXACT.actions[valid])
    psi = layer_scores(HEAD, "tanh", PARAMS, obs, acts)[0].vectors().double().numpy()
    out = np.zeros(EXACT.psi.shape)
    out[valid] = psi
    return out


@pytest.fixture(scope="module")
def psi_pkg():
    psi = package_scores()
    assert np.allclose(psi, EXACT.psi, atol=1e-5)  # the package's scores are the exact ones (float32)
    return psi


CASES = [(n, k) for n, k in ((2, 20_000), (4, 10_000), (8, 5_000))]


@pytest.mark.parametrize("aggregate", ["episode", "step"])
@pytest.mark.parametrize("n,k", CASES)
def test_the_package_estimators_sample_means_equal_their_exact_expectations(psi_pkg, n, k, aggregate):
    idx, rewards, mask = sampled(n, k, seed=n)
    rtg = est.reward_to_go(rewards, mask, GAMMA)
    psi = torch.from_numpy(psi_pkg[idx])  # [K, N, H, P]
    worst = {}
    for kind in KINDS:
        x = est.signal_from_rtg(rtg, mask, GAMMA, kind)
        for baseline in ("none", "mean", "loo"):
            w = est.weights_from_signal(x, mask, baseline, "none")[0].double()
            total = torch.einsum("knh,knhp->kp", w, psi)
            div = n if aggregate == "episode" else mask.sum(dim=(1, 2), keepdim=False).double()[:, None]
            d = (total / div).numpy()
            want = EXACT.expectation(kind, baseline, n, aggregate)
            ok, z = within(d, want)
            worst[(kind, baseline)] = z
            assert ok, (kind, baseline, z)
    # the documented relations, exactly (episode): none/loo of full and gpomdp give ∇J_γ, mean (1 − 1/N)∇J_γ
    g = EXACT.grad_j
    for kind in ("full", "gpomdp"):
        assert np.allclose(EXACT.expectation(kind, "none", n, "episode"), g, atol=1e-12)
        assert np.allclose(EXACT.expectation(kind, "loo", n, "episode"), g, atol=1e-12)
        assert np.allclose(EXACT.expectation(kind, "mean", n, "episode"), (1 - 1 / n) * g, atol=1e-12)


def test_the_exact_expectations_show_the_documented_biases():
    g = EXACT.grad_j
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    rtg = EXACT.expectation("rtg", "none", 4, "episode")
    assert np.linalg.norm(rtg - g) > 1e-3 * np.linalg.norm(g)  # rtg without γ^t is biased for ∇J_γ
    for kind in KINDS:  # the step form: parallel to no ∇J, and a baseline changes it beyond a scale
        step_none = EXACT.expectation(kind, "none", 4, "step")
        step_loo = EXACT.expectation(kind, "loo", 4, "step")
        assert cos(step_none, g) < 1 - 1e-4 and abs(cos(step_none, step_loo)) < 1 - 1e-5


def probe_pool(n: int, k: int, seed: int, ex: Exact = EXACT) -> Batch:
    idx, rewards, mask = sampled(n, k, seed, ex)
    flat = idx.reshape(1, -1)
    lengths = torch.from_numpy(ex.lengths[flat])
    trunc = lengths == enum_mdp.HORIZON
    return Batch(torch.from_numpy(ex.obs[flat]), torch.from_numpy(ex.actions[flat]),
                 rewards.reshape(1, k * n, -1), mask.reshape(1, k * n, -1), lengths, ~trunc, trunc)


def bias_se(diff: np.ndarray, bias: np.ndarray) -> float:
    """Standard error of the unbiased ‖E diff‖² estimate from K iid rows of diff [K, P] (normal approximation)."""
    k = diff.shape[0]
    cov = np.cov(diff.T)
    return float(np.sqrt(4 * bias @ cov @ bias / k + 2 * np.trace(cov @ cov) / k**2))


@pytest.mark.parametrize("n,k", [(4, 800), pytest.param(8, 2000, marks=pytest.mark.slow)])
def test_the_probes_directions_and_bias_columns_match_the_exact_gradient(n, k):
    cfg = RunConfig(env_id=enum_mdp.ENV_ID, gamma=GAMMA, episodes_per_update=n, probe_batches=k, returns="full",
                    baseline="none", normalize="none", hidden=(8,))
    pool = pool_directions(cfg, HEAD, "tanh", PARAMS, [], probe_pool(n, k, seed=10 + n), k, np.random.default_rng(0))
    for kind in KINDS:
        for baseline in ("none", "mean", "loo"):
            for aggregate in ("episode", "step"):
                d = pool.directions[pool.base.index(Estimator(kind, baseline, "none", 0.0, aggregate))]
                ok, z = within(d, EXACT.expectation(kind, baseline, n, aggregate))
                assert ok, (kind, baseline, aggregate, z)
        optimal = pool.directions[pool.base.index(Estimator(kind, "optimal", "none", 0.0))]
        assert within(optimal, EXACT.expectation(kind, "none", n, "episode"))[0], kind  # cross-fitted: unbiased
    rows = {r["estimator"]: r for r in probe_rows(cfg, 0, 0, pool)}
    ref = pool.directions[pool.base.index(Estimator("full", "loo", "none", 0.0))]
    g = EXACT.grad_j
    for label, kind in (("full/none/none/0", "full"), ("gpomdp/none/none/0", "gpomdp"), ("rtg/none/none/0", "rtg")):
        row = rows[label]
        assert row["reference"] == "full/loo/none/0"
        d = pool.directions[pool.base.index(Estimator(kind, "none", "none", 0.0))]
        bias = EXACT.expectation(kind, "none", n, "episode") - g
        se = bias_se(d - ref, bias)
        assert abs(row["bias_sq_norm"] - bias @ bias) <= 5 * se, (label, row["bias_sq_norm"], bias @ bias, se)
    assert not any(np.isnan(v) for r in rows.values() for v in r.values() if isinstance(v, float))


# ---- GAE(λ) and bootstrapping, exactly ------------------------------------------------------------------------------
# The package's weights on every enumerated trajectory at once (one "run" of M episodes: with a given V and no
# normalization each episode's weights are its own), then E[Σ_t ψ_t w_t] = Σ_τ P_θ(τ) Σ_t ψ_t w_t: an exact
# expectation of the package's estimator, compared with the helper's independent exact values (tests/helpers/exact.py).
# The policy here mostly takes action 0 (output bias +1/−1 on PARAMS'), so the episodes mostly run into the time limit:
# 62% of them are truncated (7% under PARAMS), where the limit changes the values most.
LAMBDAS = (0.0, 0.5, 0.9, 0.95, 0.97, 1.0)
H = enum_mdp.HORIZON
LONG = [*PARAMS[:-1], PARAMS[-1] + torch.tensor([1.0, -1.0])]
EXACT_LONG = exact(LONG, GAMMA)
V_H, Q_H = values_time_limited(EXACT_LONG.pi, GAMMA)  # the time-limited process's values (truncation = termination)
V_INF, Q_INF = values_infinite(EXACT_LONG.pi, GAMMA)  # the MDP's values without its time limit
WRONG = np.array([2.0, -1.5, 1.0])  # a deliberate error e(s) added to the exact value


def enumerated_batch() -> Batch:
    """Every trajectory as one run of M episodes, with its final observation s_T (one-hot; state 0 where terminated)."""
    lengths = torch.from_numpy(EXACT_LONG.lengths)[None]
    mask = torch.from_numpy(np.arange(H) < EXACT_LONG.lengths[:, None])[None]
    final = torch.from_numpy(np.stack([enum_mdp.observation(max(s, 0)) for s in EXACT_LONG.final_state]))[None]
    trunc = torch.from_numpy(EXACT_LONG.truncated)[None]
    return Batch(torch.from_numpy(EXACT_LONG.obs)[None], torch.from_numpy(EXACT_LONG.actions)[None],
                 torch.from_numpy(EXACT_LONG.rewards)[None], mask, lengths, ~trunc, trunc, final)


def exact_critic(v: np.ndarray) -> list[torch.Tensor]:
    """A critic network (the package's MLP, one tanh layer of 3 units) whose value of state s's one-hot observation is
    v[s] up to float32 rounding: hidden = tanh(e_s) = tanh(1)·e_s, output = hidden · v / tanh(1)."""
    eye = torch.eye(enum_mdp.N_STATES)
    return [eye, torch.zeros(enum_mdp.N_STATES), torch.from_numpy(v / np.tanh(1.0)).float()[:, None], torch.zeros(1)]


def package_expectation(returns: str, values: np.ndarray | None, lam: float = 1.0, bootstrap: bool = False,
                        critic: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The package's weights w [M, H] of `returns` (baseline value, normalize none) with the critic's values
    `values` [M, H] on the steps, bootstrapped by the trainer's own `loss.bootstrapped` with a critic of state values
    `critic` when `bootstrap`, → (E[Σ_t ψ_t w_t] [P], w, the critic's regression target [M, H])."""
    from ablations.train.loss import bootstrapped

    cfg = RunConfig(env_id=enum_mdp.ENV_ID, gamma=GAMMA, returns=returns, baseline="value", normalize="none",
                    gae_lambda=lam if returns in ("gae", "gae_gpomdp") else 1.0, bootstrap_truncated=bootstrap)
    b = enumerated_batch()
    val = exact_critic(critic if critic is not None else np.zeros(enum_mdp.N_STATES))
    rewards, rtg = bootstrapped(cfg, val, "tanh", b, b.rewards, b.mask)
    v = torch.from_numpy(np.zeros((len(EXACT_LONG.prob), H)) if values is None else values).float()[None]
    w, target = est.weights(rewards, rtg, b.mask, GAMMA, returns, "value", "none", v, lam)
    w = w[0].double().numpy()
    return EXACT_LONG.expect(w), w, target[0].double().numpy()


def close(a: np.ndarray, b: np.ndarray, rel: float = 1e-5) -> bool:
    """‖a − b‖ ≤ rel·‖b‖ + 1e-7 (float32 weights against float64 exact values: the package is within ~3e-8 here)."""
    return bool(np.linalg.norm(a - b) <= rel * np.linalg.norm(b) + 1e-7)


def test_the_helpers_values_are_the_exact_values_of_the_returns():
    """V_H, Q_H are E[G_t | s_t, (a_t,) t] of the time-limited process: Σ_t ψ_t G_t and Σ_t ψ_t Q_H have the same
    expectation, and E[G_0] = V_H(s_0, 0); V^∞ solves the Bellman equation of the MDP without its limit."""
    g_t = EXACT_LONG.x["rtg"]
    assert close(EXACT_LONG.expect(EXACT_LONG.on_steps(Q_H, "tsa")), EXACT_LONG.mean_a("rtg"), 1e-12)
    assert close(EXACT_LONG.expect(EXACT_LONG.on_steps(Q_H, "tsa") * GAMMA ** np.arange(H)), EXACT_LONG.grad_j, 1e-12)
    assert EXACT_LONG.prob @ g_t[:, 0] == pytest.approx(V_H[0, 0], rel=1e-12)
    assert np.allclose((EXACT_LONG.pi * Q_INF).sum(axis=1), V_INF, rtol=1e-12)
    assert np.abs(V_H[0] - V_INF).max() > 0.05  # the time limit changes the values


@pytest.mark.parametrize("lam", LAMBDAS)
def test_gae_with_the_exact_value_estimates_what_the_docs_say_for_every_lambda(lam):
    """With V = the exact value of the process the episodes come from (here V_H(s_t, t): truncation is termination),
    E[Σ_t ψ_t A^λ_t] = E[Σ_t ψ_t G_t] (what rtg estimates) and E[Σ_t ψ_t γ^t A^λ_t] = ∇J_γ, for every λ."""
    values = EXACT_LONG.on_steps(V_H[:H], "ts")
    gae, w, target = package_expectation("gae", values, lam)
    assert close(gae, EXACT_LONG.mean_a("rtg")), np.linalg.norm(gae - EXACT_LONG.mean_a("rtg"))
    assert close(package_expectation("gae_gpomdp", values, lam)[0], EXACT_LONG.grad_j)
    assert np.allclose(w, gae_by_sum(EXACT_LONG, values, np.zeros(len(w)), GAMMA, lam), atol=1e-5)  # the advantages
    assert np.allclose(target, EXACT_LONG.x["rtg"], atol=1e-5)  # the critic regresses on G_t, whatever λ
    gap = np.linalg.norm(EXACT_LONG.mean_a("rtg") - EXACT_LONG.grad_j)  # so gae (no γ^t) is biased for ∇J_γ
    assert gap > 0.04 * np.linalg.norm(EXACT_LONG.grad_j)


def wrong_bias(lam: float, discounted: bool) -> np.ndarray:
    """The exact bias of GAE with V = V_H + e(s) (closed form, not the GAE recursion): A^λ(V + e) − A^λ(V) =
    −e(s_t) + γ(1 − λ) Σ_{l≥1} (γλ)^{l−1} e(s_{t+l}), and E[ψ_t e(s_t)] = 0, so the bias is
    γ(1 − λ) E[Σ_t ψ_t (γ^t) Σ_{l≥1} (γλ)^{l−1} e(s_{t+l})]."""
    e = EXACT_LONG.on_steps(WRONG, "s")
    ahead = np.zeros(e.shape)
    for t in range(H):
        ahead[:, t] = sum((GAMMA * lam) ** (j - 1) * e[:, t + j] for j in range(1, H - t))
    weight = GAMMA ** np.arange(H) if discounted else 1.0
    return GAMMA * (1 - lam) * EXACT_LONG.expect(ahead * weight * (EXACT_LONG.states >= 0))


@pytest.mark.parametrize("lam", LAMBDAS)
def test_gae_with_a_wrong_value_is_biased_by_its_exact_amount_which_vanishes_at_lambda_one(lam):
    values = EXACT_LONG.on_steps(V_H[:H] + WRONG, "ts")
    for kind, unbiased, discounted in (("gae", EXACT_LONG.mean_a("rtg"), False),
                                       ("gae_gpomdp", EXACT_LONG.grad_j, True)):
        bias = package_expectation(kind, values, lam)[0] - unbiased
        exact_bias = wrong_bias(lam, discounted)
        by_sum = gae_by_sum(EXACT_LONG, values, np.zeros(len(values)), GAMMA, lam)
        assert close(EXACT_LONG.expect(by_sum * (GAMMA ** np.arange(H) if discounted else 1.0)) - unbiased, exact_bias,
                     1e-9)  # the double sum agrees with the closed form
        assert np.linalg.norm(bias - exact_bias) <= 1e-5 * np.linalg.norm(unbiased) + 1e-7, (kind, lam)
        if lam == 1.0:
            assert np.linalg.norm(exact_bias) == 0.0 and np.linalg.norm(bias) <= 1e-5 * np.linalg.norm(unbiased)
        else:  # a bias the test can see: at least 5% of the gradient's norm
            assert np.linalg.norm(exact_bias) > 0.05 * np.linalg.norm(unbiased), (kind, lam)


@pytest.mark.parametrize("returns,lam", [("rtg", 1.0), *(("gae", lam) for lam in LAMBDAS),
                                          *(("gae_gpomdp", lam) for lam in (0.0, 0.9, 1.0))])
def test_bootstrapping_with_the_exact_value_gives_each_step_of_a_truncated_episode_its_q(returns, lam):
    """On the MDP whose time limit (4) is shorter than its episodes, bootstrapping every truncated episode with the
    exact V^∞ of the MDP without the limit gives every step t < T weight Q^∞(s_t, a_t) in expectation (GAE: the
    advantage Q^∞ − V^∞): E[Σ_t ψ_t x_t] = E[Σ_t ψ_t Q^∞(s_t, a_t)] (γ^t-weighted for gae_gpomdp), exactly; without
    the bootstrap the truncation bias is there."""
    values = EXACT_LONG.on_steps(V_INF, "s")
    weight = GAMMA ** np.arange(H) if returns == "gae_gpomdp" else 1.0
    want = EXACT_LONG.expect(EXACT_LONG.on_steps(Q_INF, "sa") * weight)
    got, w, target = package_expectation(returns, values, lam, bootstrap=True, critic=V_INF)
    assert close(got, want), np.linalg.norm(got - want) / np.linalg.norm(want)
    v_end = np.where(EXACT_LONG.truncated, V_INF[np.maximum(EXACT_LONG.final_state, 0)], 0.0)
    assert np.allclose(target, returns_by_sum(EXACT_LONG, v_end, GAMMA), atol=1e-5)  # critic's target: bootstrapped G_t
    if returns != "rtg":
        assert np.allclose(w, gae_by_sum(EXACT_LONG, values, v_end, GAMMA, lam) * weight, atol=1e-5)
    plain = package_expectation(returns, values, lam, bootstrap=False)[0]
    assert np.linalg.norm(plain - want) > 0.05 * np.linalg.norm(want)  # the truncation bias the bootstrap removes


def test_a_bootstrapped_return_is_q_in_expectation_at_every_step_state_and_action():
    """E[G_t | s_t = s, a_t = a, t] over the enumerated episodes: Q^∞(s, a) with the bootstrap (the package's
    `loss.bootstrapped` with a critic equal to V^∞), Q_H(s, a, t) without it."""
    for bootstrap, want in ((True, lambda t: Q_INF), (False, lambda t: Q_H[t])):
        g = package_expectation("rtg", None, bootstrap=bootstrap, critic=V_INF)[2]
        for t in range(H):
            for s in range(enum_mdp.N_STATES):
                for a in range(enum_mdp.N_ACTIONS):
                    on = (EXACT_LONG.states[:, t] == s) & (EXACT_LONG.actions[:, t] == a)
                    if EXACT_LONG.prob[on].sum() > 0:
                        mean = EXACT_LONG.prob[on] @ g[on, t] / EXACT_LONG.prob[on].sum()
                        assert mean == pytest.approx(want(t)[s, a], rel=1e-5, abs=1e-5), (bootstrap, t, s, a)


@pytest.mark.parametrize("n,k", [(4, 800)])
def test_the_probes_gae_rows_match_their_exact_expectations_and_bias(n, k):
    """The probes' GAE directions (the run's own critic, here a deliberately wrong V = V^∞ + e as a network) have the
    exact expectation of GAE with that V, λ by λ (sampled, as above), and their bias_sq_norm the exact squared bias
    against ∇J_γ."""
    critic = V_INF + WRONG
    cfg = RunConfig(env_id=enum_mdp.ENV_ID, gamma=GAMMA, episodes_per_update=n, probe_batches=k, returns="rtg",
                    baseline="value", normalize="none", hidden=(3,))
    pool = pool_directions(cfg, HEAD, "tanh", LONG, exact_critic(critic), probe_pool(n, k, 30 + n, EXACT_LONG), k,
                           np.random.default_rng(0))
    rows = {r["estimator"]: r for r in probe_rows(cfg, 0, 0, pool)}
    values = EXACT_LONG.on_steps(critic, "s")
    ref = pool.directions[pool.base.index(Estimator("full", "loo", "none", 0.0))]
    for kind in ("gae", "gae_gpomdp"):
        weight = GAMMA ** np.arange(H) if kind == "gae_gpomdp" else 1.0
        for lam in LAMBDAS:
            e = Estimator(kind, "value", "none", 0.0, "episode", lam)
            want = EXACT_LONG.expect(gae_by_sum(EXACT_LONG, values, np.zeros(len(values)), GAMMA, lam) * weight)
            d = pool.directions[pool.base.index(e)]
            ok, z = within(d, want)
            assert ok, (kind, lam, z)
            row = rows[e.label]
            assert row["critic"] == "run" and row["gae_lambda"] == lam
            bias = want - EXACT_LONG.grad_j
            se = bias_se(d - ref, bias)
            assert abs(row["bias_sq_norm"] - bias @ bias) <= 5 * se, (e.label, row["bias_sq_norm"], bias @ bias, se)
    assert not any(np.isnan(v) for r in rows.values() for v in r.values() if isinstance(v, float))
