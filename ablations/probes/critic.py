"""The cross-fitted critic of the probes' `value` baseline (when the run's own critic does not fit the estimator's
target): a fresh one-hidden-layer tanh net (width `CRITIC_WIDTH`, random input layer drawn from the run's probes
stream, output layer by ridge regression) fitted on one half of the pool and applied to the other half, and vice
versa, so no episode's baseline has seen that episode."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

#: Hidden width of the cross-fitted critic, and its ridge penalty per fitted row.
CRITIC_WIDTH = 64
CRITIC_RIDGE = 1e-3


def crossfit_values(obs: Tensor, targets: Tensor, first_half: Tensor, gen: np.random.Generator) -> Tensor:
    """Value predictions [S, C] for rows obs [S, D] with targets [S, C]: each half predicted by a critic fitted on the
    other half (`first_half` bool [S]). Critic: tanh(z W + c) with a random input layer (W ~ N(0, 1/D), c ~ U(−1, 1)
    drawn from `gen`), z the observations standardized with the fitting half's mean and std, output layer by ridge
    regression on the centred targets."""
    obs, targets = obs.float(), targets.double()
    dim = obs.shape[1]
    w = torch.from_numpy(gen.standard_normal((dim, CRITIC_WIDTH)) / math.sqrt(dim)).float()
    c = torch.from_numpy(gen.uniform(-1.0, 1.0, CRITIC_WIDTH)).float()
    out = torch.zeros_like(targets)
    for fit in (first_half, ~first_half):
        if not bool(fit.any()) or bool(fit.all()):
            continue
        mu, sd = obs[fit].mean(dim=0), obs[fit].std(dim=0, unbiased=False)
        sd = torch.where(sd > 1e-8, sd, torch.ones_like(sd))
        feats = torch.tanh(((obs - mu) / sd) @ w + c).double()  # features in float32, regression in float64
        f_fit, y = feats[fit], targets[fit]
        f_mean, y_mean = f_fit.mean(dim=0), y.mean(dim=0)
        fc = f_fit - f_mean
        gram = fc.T @ fc + CRITIC_RIDGE * len(fc) * torch.eye(CRITIC_WIDTH, dtype=torch.float64)
        coef = torch.linalg.solve(gram, fc.T @ (y - y_mean))
        out[~fit] = (feats[~fit] - f_mean) @ coef + y_mean
    return out
