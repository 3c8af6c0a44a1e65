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

from tests.helpers.exact import KINDS, exact

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


def sampled(n: int, k: int, seed: int):
    """K×N iid trajectory indices → padded float32 tensors [K, N, H] (rewards, mask) and the indices [K, N]."""
    idx = EXACT.sample(np.random.default_rng(seed), k * n).reshape(k, n)
    rewards = torch.from_numpy(EXACT.rewards[idx])
    mask = torch.from_numpy(np.arange(enum_mdp.HORIZON) < EXACT.lengths[idx][..., None])
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


def probe_pool(n: int, k: int, seed: int) -> Batch:
    idx, rewards, mask = sampled(n, k, seed)
    flat = idx.reshape(1, -1)
    lengths = torch.from_numpy(EXACT.lengths[flat])
    trunc = lengths == enum_mdp.HORIZON
    return Batch(torch.from_numpy(EXACT.obs[flat]), torch.from_numpy(EXACT.actions[flat]),
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
