"""Synthetic pools and exact moments shared by the probes' tests (a helper module, not a test module): a Bernoulli
bandit whose single-episode estimators have closed-form variances, and random padded score rows."""

import math

import numpy as np
import torch

from ablations.config import RunConfig
from ablations.probes.directions import pool_directions
from ablations.probes.grid import Estimator
from ablations.probes.rows import probe_rows
from ablations.train.nets import Head
from ablations.train.rollout import Batch


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
