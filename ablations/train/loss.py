"""The loss of one update: the REINFORCE surrogate and its entropy term per run, and the critic's regression.

Per run and update, the policy loss is −A Σ_{i,t} w_{i,t} log π(a_{i,t}|s_{i,t}) minus β·A Σ_{i,t} H(π(·|s_{i,t})), one
aggregation A for both terms (so β is one coefficient of one objective): `aggregate = episode` (the default) A = 1/N,
the Monte-Carlo form whose expectation is the documented one (∇J_γ for `full`/`gpomdp` with `none`/`loo`,
(1 − 1/N)·∇J_γ with `mean`; the entropy term is then the gradient of β·E[Σ_t H_t], the entropy summed along an
episode); `aggregate = step` A = 1/L, L the batch's valid steps (the common "mean over the batch" loss); the divisor is
`estimators.aggregation_divisor`. 1/L is random and correlated with the episodes whenever their length depends on the
actions, so the step form's expectation is parallel to no ∇J and a baseline changes it
(tests/train/test_exact_gradient.py measures both against an exact ∇J). The critic (baseline `value`) is fitted
afterwards by `value_iters` full-batch Adam steps on the mean squared error to the return signal (to G_t for the GAE
levels, whatever λ), and is used detached. The weights of every level are `estimators.weights`'s; with
`bootstrap_truncated` a truncated episode's rewards first get γ V(s_T), the critic's value (before this update's fit)
of its final observation (`bootstrapped`), so its returns, TD errors and critic target all continue past the limit.

`policy_gradient` computes every active run's gradient from one chunked backward pass (`chunks`: every shape a run
touches depends on that run only; the per-run losses are summed so that one backward pass yields every run's own
gradient). `run_update` is the plain per-run statement of the same math, the reference the tests hold the chunked path
to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from . import estimators as est
from ..config import RunConfig
from .chunks import CHUNK_ROWS, Chunks
from .cohort import CohortState
from .nets import Head, Params, forward_single, forward_stacked, select
from .optim import PerRunOptimizer
from .rollout import Batch


@dataclass
class ValueFit:
    """What the critic regresses on after an update: flat rows and, per value run, (r, offset, count, targets).

    `first` is the critic's forward pass that gave the update its baselines, kept with its graph for the fit's first
    step (`fit_values`): (leaf value parameters, predictions [C, CHUNK_ROWS] on the chunks of the value runs, in
    `runs` order); None when the update had no value run.
    """

    rows_obs: Tensor
    runs: list[tuple[int, int, int, Tensor]]
    first: tuple[list[Tensor], Tensor] | None = None


@dataclass
class PolicyStep:
    grads: list[Tensor]  # stacked [R, ...] policy gradients of the loss (zero for runs not in the update)
    policy_loss: list[float]  # per active run
    entropy: list[float]
    fit: ValueFit


@dataclass
class RunUpdate:
    """What one run's update produced (before the optimizer step)."""

    loss: Tensor
    policy_loss: float
    entropy: float  # mean entropy over the valid steps, whatever the aggregation
    rows: Tensor  # the run's valid observations [L, D]
    target_rows: Tensor  # value targets on those rows [L]


def _grid(mask: Tensor, rows: Tensor) -> Tensor:
    """Scatter per-valid-step values [L] back onto the [1, N, T] grid (zero on padding); differentiable in rows."""
    return torch.zeros(mask.shape, dtype=rows.dtype).masked_scatter(mask, rows)


def bootstrapped(cfg: RunConfig, val: Sequence[Tensor], activation: str, b: Batch, rewards: Tensor,
                 mask: Tensor) -> tuple[Tensor, Tensor]:
    """One run's (rewards, reward-to-go) on its grid ([1, N, T]), its truncated episodes continued by γ V(s_T)
    (`estimators.bootstrap_rewards`, V = the run's critic `val` on `b.final_obs`, no gradient) when
    `cfg.bootstrap_truncated`; else the rewards as they are and their reward-to-go."""
    if not cfg.bootstrap_truncated:
        return rewards, est.reward_to_go(rewards, mask, cfg.gamma)
    if b.final_obs is None:
        raise ValueError("bootstrap_truncated needs the batch's final observations (Batch.final_obs)")
    with torch.no_grad():
        v_end = forward_single(list(val), b.final_obs[0], activation)[:, 0]
    v_end = torch.where(b.truncated[0], v_end, torch.zeros_like(v_end))
    rewards = est.bootstrap_rewards(rewards, mask, v_end[None], cfg.gamma)
    return rewards, est.reward_to_go(rewards, mask, cfg.gamma)


def run_update(cfg: RunConfig, head: Head, activation: str, pol: Sequence[Tensor], val: Sequence[Tensor],
               b: Batch, rtg: Tensor) -> RunUpdate:
    """One run's loss on its own batch b ([1, N, T_r] tensors) and its reward-to-go `rtg` on the same grid (recomputed
    from the bootstrapped rewards when `cfg.bootstrap_truncated`: `bootstrapped`).

    pol/val: that run's parameters (no run dimension).
    """
    mask = b.mask
    rows = b.obs[mask]  # [L, D] in (episode, step) order
    out = forward_single(pol, rows, activation)
    logp = _grid(mask, head.log_prob(out, b.actions[mask]))
    ent = _grid(mask, head.entropy(out))
    values = None
    if cfg.baseline == "value":
        with torch.no_grad():
            values = _grid(mask, forward_single(val, rows, activation)[:, 0])
    rewards = b.rewards
    if cfg.bootstrap_truncated:
        rewards, rtg = bootstrapped(cfg, val, activation, b, b.rewards, mask)
    w, target = est.weights(rewards, rtg, mask, cfg.gamma, cfg.returns, cfg.baseline, cfg.normalize, values,
                            cfg.gae_lambda)
    pl = est.reduce(est.pg_terms(w, logp, mask), mask, cfg.aggregate)[0]
    h = est.reduce(ent, mask, cfg.aggregate)[0]
    loss = pl - cfg.entropy_coef * h if cfg.entropy_coef > 0 else pl
    h_step = est.reduce(ent.detach(), mask, "step")[0]  # curves.csv's `entropy`: the mean over valid steps
    return RunUpdate(loss, float(pl.detach()), float(h_step), rows, target[mask].detach())


def _grads(loss: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    """∂loss/∂params, zeros for parameters the loss does not reach."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def per_run_norms(grads: Sequence[Tensor], rows: Sequence[int]) -> Tensor:
    """‖g_r‖ over all parameters of each run r in `rows` → [len(rows)] (float64 accumulation; a run's norm does not
    depend on which other rows are reduced with it)."""
    idx = torch.tensor(rows, dtype=torch.long)
    sq = sum(g.index_select(0, idx).reshape(len(rows), -1).double().pow(2).sum(dim=1) for g in grads)
    return sq.sqrt()



def all_finite(grads: Sequence[Tensor], rows: Sequence[int]) -> np.ndarray:
    """Whether every gradient element of each run in `rows` is finite → bool [len(rows)] (= the finiteness of
    `per_run_norms`: a float32 element squared in float64 cannot overflow, so the norm is finite iff they all are)."""
    idx = torch.tensor(rows, dtype=torch.long)
    ok = torch.ones(len(rows), dtype=torch.bool)
    for g in grads:
        ok &= torch.isfinite(g.index_select(0, idx).reshape(len(rows), -1)).all(dim=1)
    return ok.numpy()


def policy_gradient(co: CohortState, active: list[int], batch: Batch) -> PolicyStep:
    """Every active run's policy gradient (unclipped) from one chunked backward pass; see `chunks`.

    The math is `run_update`'s, which stays as the per-run reference the tests compare against.
    """
    cfgs = [co.configs[r] for r in active]
    mask = batch.mask
    counts = mask.sum(dim=(1, 2)).tolist()
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
    n_rows = int(sum(counts))
    rows_obs, rows_act = batch.obs[mask], batch.actions[mask]  # [L, ...] in (run, episode, step) order
    layout = Chunks.build(active, counts, offsets, n_rows)
    x = layout.gather(rows_obs)
    # the reward-to-go recursion is elementwise, hence exact for any padding: run it once for the whole batch
    gamma = torch.tensor([c.gamma for c in cfgs], dtype=batch.rewards.dtype)
    reset = torch.tensor([c.returns == "rally" for c in cfgs])  # rally returns restart at non-zero rewards
    rtg = est.reward_to_go(batch.rewards, mask, gamma, reset)
    values, first = None, None
    critic = torch.tensor([c.baseline == "value" for c in cfgs])
    if bool(critic.any()):  # V(s) on the chunks of the runs with a critic only
        on = layout.per_chunk(critic).view(-1)
        # with its graph: the critic fit's first step differentiates this very forward pass (`ValueFit.first`)
        vparams = [p.detach().requires_grad_(True) for p in co.value]
        pred = forward_stacked(select(vparams, layout.owner[on]), x[on], co.activation)[..., 0]
        first = (vparams, pred)
        index = layout.index.view(-1, CHUNK_ROWS)[on].reshape(-1)
        values = torch.zeros(n_rows + 1).index_put_((index,), pred.detach().reshape(-1))[:n_rows]
    w_rows, fit = [], []
    divisors = [est.aggregation_divisor(c.aggregate, mask.shape[1], counts[j]) for j, c in enumerate(cfgs)]
    for j, (c, r) in enumerate(zip(cfgs, active)):
        t_j = int(batch.lengths[j].max())
        m = mask[j: j + 1, :, :t_j]
        rew, sig = batch.rewards[j: j + 1, :, :t_j], rtg[j: j + 1, :, :t_j]
        if c.bootstrap_truncated:  # the run's own critic on its own final observations: shapes of this run only
            rew, sig = bootstrapped(c, _run_params(co.value, r), co.activation, batch.run(j), rew, m)
        vals = None
        if c.baseline == "value":
            vals = _grid(m, values[offsets[j]: offsets[j] + counts[j]])
        w, target = est.weights(rew, sig, m, c.gamma, c.returns, c.baseline, c.normalize, vals, c.gae_lambda)
        # REINFORCE surrogate −A Σ w log π, minus β·A Σ H: A = 1/N (episode) or 1/L over the L valid steps (step)
        w_rows.append(w[m] / divisors[j])
        if c.baseline == "value":
            fit.append((r, offsets[j], counts[j], target[m]))
    pg_coef = layout.gather(torch.cat(w_rows))
    beta = torch.tensor([c.entropy_coef / n for c, n in zip(cfgs, divisors)], dtype=torch.float32)
    ent_coef = layout.per_chunk(beta)
    params = [p.detach().requires_grad_(True) for p in co.policy]
    out = forward_stacked(select(params, layout.owner), x, co.activation)
    logp = co.head.log_prob(out, layout.gather(rows_act))
    ent = co.head.entropy(out)
    valid = layout.valid.to(logp.dtype)
    pg = -pg_coef * logp * valid
    total = pg.sum() - (ent_coef * ent * valid).sum()
    grads = _grads(total, params)
    ent_mean = layout.per_run_sum(ent * valid) / torch.tensor(counts, dtype=torch.float64)
    return PolicyStep(grads, layout.per_run_sum(pg).tolist(), ent_mean.tolist(), ValueFit(rows_obs, fit, first))


def _run_params(params: Params, r: int) -> list[Tensor]:
    """Run r's parameters (no run dimension), detached."""
    return [p[r].detach() for p in params]


def fit_values(co: CohortState, fit: ValueFit, ok: np.ndarray, vopt: PerRunOptimizer) -> dict[int, float]:
    """`value_iters` Adam steps (`vopt`) on each value run's MSE to its targets (one chunked pass per step), for the
    runs r with ok[r] → each fitted run's loss before the first step.

    The first step reuses the update's own forward pass of the critic (`ValueFit.first`) when every value run is
    fitted: the same parameters on the same chunks (the layout of the value runs' rows is the same in both), so the
    same bits as a fresh pass, one forward pass fewer per update.
    """
    runs = [f for f in fit.runs if ok[f[0]]]
    if not runs:
        return {}
    n_rows = fit.rows_obs.shape[0]
    rows = [f[0] for f in runs]
    layout = Chunks.build(rows, [f[2] for f in runs], [f[1] for f in runs], n_rows)
    x = layout.gather(fit.rows_obs)
    targets = torch.zeros(n_rows)
    for _, off, cnt, tgt in runs:
        targets[off: off + cnt] = tgt
    y = layout.gather(targets)
    inv_n = torch.tensor([1.0 / f[2] for f in runs], dtype=torch.float32)
    coef = layout.per_chunk(inv_n) * layout.valid
    active = np.zeros(len(co.configs), dtype=bool)
    active[rows] = True
    first: dict[int, float] = {}
    reuse = fit.first if len(runs) == len(fit.runs) else None
    for it in range(co.configs[0].value_iters):  # value_iters is part of the cohort key
        if it == 0 and reuse is not None:
            params, pred = reuse
        else:
            params = [p.detach().requires_grad_(True) for p in co.value]
            pred = forward_stacked(select(params, layout.owner), x, co.activation)[..., 0]
        sq = coef * (pred - y) ** 2
        grads = _grads(sq.sum(), params)
        if it == 0:
            first = dict(zip(rows, layout.per_run_sum(sq).tolist()))
        finite = np.zeros_like(active)
        finite[rows] = all_finite(grads, rows)
        vopt.step(co.value, grads, active & finite)
    return first
