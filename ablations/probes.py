"""Paired gradient-variance probes: at a checkpoint, how noisy is each estimator's update direction at the frozen θ?

At a checkpoint each probed run freezes its policy θ and collects a pool of K×N complete episodes from its own
`probes` stream (env seed and action noise; the `env`/`actions` streams are never touched, so probes on or off leave
training bit-identical) in a separate K×N-episode environment kept on the cohort. The pool is cut into K disjoint
batches of N episodes (episodes kN … kN+N−1 form batch k). Everything after the rollout uses the run's own data only.

Per-step scores ψ_{i,t} = ∇θ log π(a_{i,t}|s_{i,t}) (policy parameters only, flattened W₀, b₀, W₁, …) are computed
once per batch, in factored form: for an MLP layer z = a W + b, ψ restricted to W is the outer product a_s ⊗ δ_s with
δ_s = ∂log π_s/∂z_s, and one backward pass of Σ_s log π_s yields every δ_s (rows do not interact). Every estimator
is a weighting of the same ψ; on batch k its update direction is

    d_k = (1/N) Σ_{i∈k} Σ_t w_{i,t} ψ_{i,t} + β ∇θ H̄_k,    H̄_k = mean of H(π(·|s_t)) over batch k's valid steps,

exactly −∇(loss) of `engine.run_update` on that batch, before clipping. w comes from the trainer's own
`estimators.weights_from_signal`, called on the K batches as K "runs" of N episodes, so baselines and normalization
are computed within each batch as in training. All estimators' directions are one contraction per layer,
(W ⊙ A)ᵀ Δ ([E, in, S_k] × [S_k, out]); ψ itself ([S, P]) is never materialized. (`torch.func.vmap(grad(·))` gives
the same ψ — the tests check both against a loop of `backward()` — but its first call imports torch._dynamo, ~4 s per
process, and it materializes [S, P].)

Estimators (rows, in this order): entropy_coef β ∈ {0, the run's β} (one level when the run's β is 0) × returns
{full, rtg} × baseline {none, mean, loo, value, optimal} × normalize {none, returns, advantages} (`optimal`: none
only; `loo` needs N ≥ 2). Labels are "returns/baseline/normalize/β", β formatted `%g` ("rtg/loo/none/0.01").

* `value` uses the run's own critic (its `cohort.value` slice) when the run trains with baseline=value and the
  estimator's critic target is the one that critic is fitted to (same `returns`, standardized iff the run's
  normalize is `returns`); otherwise a cross-fitted critic: a fresh one-hidden-layer tanh net (width `CRITIC_WIDTH`,
  random input layer drawn from the probes stream, output layer by ridge regression) fitted on one half of the pool
  (batches < K/2) and applied to the other half, and vice versa, so no episode's baseline has seen that episode.
  Column `critic` says which ("run" / "crossfit").
* `optimal` is the variance-optimal *constant* baseline of the single-episode estimator, one global constant per
  returns kind (not per time step): with s_i = Σ_t ψ_{i,t} and a_i = Σ_t x_{i,t} ψ_{i,t}, b* = E[s·a]/E[‖s‖²]
  (= E[‖s‖² G₀]/E[‖s‖²] for full returns), estimated on one half of the pool and applied to the other half
  (cross-fitted, hence unbiased). Normalize none only.

Statistics (`probe_statistics`, a pure function of the K directions d_k of an estimator and u_k of its reference):
total_var = tr Cov(d) (unbiased, K−1); mean_sq_norm = ‖d̄‖² − total_var/K (unbiased for ‖E d‖²); snr =
mean_sq_norm / total_var; pairwise_cos = mean over batch pairs k≠l of cos(d_k, d_l); cos_to_reference = mean over k
of cos(d_k, ū_{−k}), ū_{−k} the reference averaged over the *other* K−1 batches (leave-one-batch-out: independent of
batch k, so the cosine is not inflated by shared episodes; the reference's own noise deflates it);
bias_sq_norm = ‖mean(d − u)‖² − tr Cov(d − u)/K, the unbiased paired estimate of ‖E d − E u‖².

The reference of an estimator is u_k = c·U_k + β∇H̄_k with U = rtg/loo/none at β = 0 (rtg/none/none when N = 1), the
unbiased estimator, on the same batches. c = 1 without normalization. A normalized estimator divides by a batch
standard deviation, so its large-N limit is ∇J/σ, not ∇J: there c = 1/σ with σ the pool's sample std of what it
standardizes (the return signal for `returns`, the un-normalized advantage x − b for `advantages`), estimated on the
whole pool (column `reference_scale`). Its bias_sq_norm is then the finite-N bias (from the batch mean and std being
estimated from the batch itself), which vanishes as N grows; without the rescaling it would mostly measure σ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import Tensor

from . import estimators as est
from .config import AXES, RunConfig
from .envs import make_cohort_env
from .nets import ACTIVATIONS, Head, forward_single
from .rollout import Batch, collect
from .seeding import draw_seed

if TYPE_CHECKING:  # the engine imports this module lazily; avoid a cycle at import time
    from .engine import Cohort

#: Target size of one chunk of per-step scores, in floats (rows per chunk = this / number of parameters).
CHUNK_FLOATS = 1 << 22
#: Hidden width of the cross-fitted critic, and its ridge penalty per fitted row.
CRITIC_WIDTH = 64
CRITIC_RIDGE = 1e-3

OPTIMAL = "optimal"


@dataclass(frozen=True)
class Estimator:
    """One probed estimator: the ablation levels of the update direction it measures."""

    returns: str
    baseline: str
    normalize: str
    entropy_coef: float

    @property
    def label(self) -> str:
        return f"{self.returns}/{self.baseline}/{self.normalize}/{self.entropy_coef:g}"

    def trained_by(self, cfg: RunConfig) -> bool:
        return (self.returns, self.baseline, self.normalize, self.entropy_coef) == (
            cfg.returns, cfg.baseline, cfg.normalize, cfg.entropy_coef)


def estimator_grid(entropy_coefs: Sequence[float], n_episodes: int) -> list[Estimator]:
    """The probed estimators in row order (see the module docstring)."""
    out = []
    for beta in entropy_coefs:
        for ret in AXES["returns"]:
            for base in (*AXES["baseline"], OPTIMAL):
                if base == "loo" and n_episodes < 2:
                    continue
                for nz in ("none",) if base == OPTIMAL else AXES["normalize"]:
                    out.append(Estimator(ret, base, nz, float(beta)))
    return out


def reference_of(n_episodes: int) -> Estimator:
    """The unbiased reference U (at β = 0): rtg/loo/none (rtg/none/none when N = 1)."""
    return Estimator("rtg", "loo" if n_episodes >= 2 else "none", "none", 0.0)


# ---- statistics: a pure function of the K batch directions ---------------------------------------------------------
def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosines of a [K, P] and b [K, P]; NaN where either row is zero."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    den = na * nb
    return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def _trace_cov(x: np.ndarray) -> float:
    """tr Cov of the rows of x [K, P], unbiased (K − 1)."""
    return float(((x - x.mean(axis=0)) ** 2).sum() / (x.shape[0] - 1))


def probe_statistics(d: np.ndarray, u: np.ndarray) -> dict[str, float]:
    """d [K, P]: one estimator's update direction on each of K disjoint batches; u [K, P]: the reference's on the same.

    → total_var, mean_sq_norm, snr, pairwise_cos, cos_to_reference, bias_sq_norm (module docstring), as floats.
    """
    d, u = np.asarray(d, dtype=np.float64), np.asarray(u, dtype=np.float64)
    if d.ndim != 2 or d.shape != u.shape or d.shape[0] < 2:
        raise ValueError(f"expected two [K, P] arrays with K >= 2, got {d.shape} and {u.shape}")
    k = d.shape[0]
    mean = d.mean(axis=0)
    total_var = _trace_cov(d)
    mean_sq = float(mean @ mean) - total_var / k
    norms = np.linalg.norm(d, axis=1)
    unit = d / np.where(norms > 0, norms, 1.0)[:, None]
    gram = unit @ unit.T
    pairwise = float((gram.sum() - np.trace(gram)) / (k * (k - 1))) if (norms > 0).all() else math.nan
    ref = (u.sum(axis=0) - u) / (k - 1)  # leave-one-batch-out reference for batch k
    cos_ref = _cos(d, ref)
    diff = d - u
    dm = diff.mean(axis=0)
    bias = float(dm @ dm) - _trace_cov(diff) / k
    return {"total_var": total_var, "mean_sq_norm": mean_sq,
            "snr": mean_sq / total_var if total_var > 0 else math.nan,
            "cos_to_reference": float(cos_ref.mean()) if np.isfinite(cos_ref).all() else math.nan,
            "pairwise_cos": pairwise, "bias_sq_norm": bias}


# ---- per-step scores, as layer factors -----------------------------------------------------------------------------
@dataclass
class LayerScores:
    """ψ_s of rows s = 1..S in factored form: for layer l (z_l = a_l W_l + b_l), ∂log π(a_s|o_s)/∂W_l =
    a_{l,s} ⊗ δ_{l,s} and ∂/∂b_l = δ_{l,s}, with a_l [S, in_l] the layer's input and δ_l = ∂log π_s/∂z_{l,s}."""

    inputs: list[Tensor]
    deltas: list[Tensor]

    @property
    def num_params(self) -> int:
        return sum(a.shape[1] * d.shape[1] + d.shape[1] for a, d in zip(self.inputs, self.deltas))

    def contract(self, w: Tensor) -> Tensor:
        """Σ_s w[e, s] ψ_s for weights w [E, S] → [E, P] (parameters flattened in order W₀, b₀, W₁, b₁, …)."""
        parts = []
        for a, d in zip(self.inputs, self.deltas):
            parts.append(((w.unsqueeze(1) * a.T.unsqueeze(0)) @ d).reshape(w.shape[0], -1))  # [E, in, out]
            parts.append(w @ d)
        return torch.cat(parts, dim=1)

    def episode_sums(self, mask: Tensor, w: Tensor | None = None) -> Tensor:
        """Σ_t w_{i,t} ψ_{i,t} per episode (rows in (episode, step) order of mask [M, T]; w [S], None = 1) → [M, P]."""
        parts = []
        for a, d in zip(self.inputs, self.deltas):
            if w is not None:
                d = d * w.unsqueeze(1)
            a_pad = a.new_zeros(*mask.shape, a.shape[1])
            d_pad = d.new_zeros(*mask.shape, d.shape[1])
            a_pad[mask], d_pad[mask] = a, d
            parts.append(torch.bmm(a_pad.transpose(1, 2), d_pad).reshape(mask.shape[0], -1))
            parts.append(d_pad.sum(dim=1))
        return torch.cat(parts, dim=1)

    def vectors(self) -> Tensor:
        """ψ itself, [S, P] (for tests and small problems: the probes never materialize it)."""
        parts = []
        for a, d in zip(self.inputs, self.deltas):
            parts.append((a.unsqueeze(2) * d.unsqueeze(1)).reshape(a.shape[0], -1))
            parts.append(d)
        return torch.cat(parts, dim=1)


def layer_scores(head: Head, activation: str, params: Sequence[Tensor], obs: Tensor, actions: Tensor,
                 entropy: bool = False) -> tuple[LayerScores, Tensor | None]:
    """Per-step scores of rows obs [S, D], actions [S(, A)] at one run's `params` (no run dimension), by one backward
    pass: each row's log π depends on its own row only, so ∂(Σ_s log π_s)/∂z_{l,s} = ∂log π_s/∂z_{l,s}. The forward is
    `nets.forward_single`'s, step by step. With `entropy`, also ∇θ of the mean entropy over the rows → [P]."""
    act = ACTIVATIONS[activation]
    ps = [p.detach().requires_grad_(entropy) for p in params]
    n_layers = len(ps) // 2
    x, inputs, pre = obs, [], []
    for li in range(n_layers):
        inputs.append(x.detach())
        z = x @ ps[2 * li] + ps[2 * li + 1]
        if not entropy:
            z.requires_grad_(True)
        pre.append(z)
        x = act(z) if li < n_layers - 1 else z
    deltas = torch.autograd.grad(head.log_prob(x, actions).sum(), pre, retain_graph=entropy)
    h_grad = None
    if entropy:
        gs = torch.autograd.grad(head.entropy(x).sum() / max(obs.shape[0], 1), ps)
        h_grad = torch.cat([g.reshape(-1) for g in gs])
    return LayerScores(inputs, [d.detach() for d in deltas]), h_grad


# ---- the cross-fitted critic ---------------------------------------------------------------------------------------
def crossfit_values(obs: Tensor, targets: Tensor, first_half: Tensor, gen: np.random.Generator) -> Tensor:
    """Value predictions [S, C] for rows obs [S, D] with targets [S, C]: each half predicted by a critic fitted on the
    other half (`first_half` bool [S]). Critic: tanh(z W + c) with a random input layer (W ~ N(0, 1/D), c ~ U(−1, 1)
    drawn from `gen`), z the observations standardized with the fitting half's mean and std, output layer by ridge
    regression on the centred targets (float64)."""
    obs, targets = obs.double(), targets.double()
    dim = obs.shape[1]
    w = torch.from_numpy(gen.standard_normal((dim, CRITIC_WIDTH)) / math.sqrt(dim))
    c = torch.from_numpy(gen.uniform(-1.0, 1.0, CRITIC_WIDTH))
    out = torch.zeros_like(targets)
    for fit in (first_half, ~first_half):
        if not bool(fit.any()) or bool(fit.all()):
            continue
        mu, sd = obs[fit].mean(dim=0), obs[fit].std(dim=0, unbiased=False)
        sd = torch.where(sd > 1e-8, sd, torch.ones_like(sd))
        feats = torch.tanh(((obs - mu) / sd) @ w + c)
        f_fit, y = feats[fit], targets[fit]
        f_mean, y_mean = f_fit.mean(dim=0), y.mean(dim=0)
        fc = f_fit - f_mean
        gram = fc.T @ fc + CRITIC_RIDGE * len(fc) * torch.eye(CRITIC_WIDTH, dtype=torch.float64)
        coef = torch.linalg.solve(gram, fc.T @ (y - y_mean))
        out[~fit] = (feats[~fit] - f_mean) @ coef + y_mean
    return out


# ---- one run's probe -----------------------------------------------------------------------------------------------
@dataclass
class PoolDirections:
    """Every estimator's update direction on each of the K batches of one run's pool, and what the rows need."""

    estimators: list[Estimator]
    directions: np.ndarray  # [E, K, P] float64: d_k per estimator (including its β∇H̄_k)
    entropy_grads: np.ndarray  # [K, P] float64: ∇H̄_k (zeros when the run's β is 0)
    scales: list[float]  # per estimator: the reference scale c (1/σ of what its normalization divides by; else 1)
    critics: list[str]  # per estimator: "run", "crossfit" or ""
    n_episodes: int  # N, episodes per batch
    pool_steps: int  # valid steps in the pool

    def reference(self, j: int) -> np.ndarray:
        """[K, P]: the reference for estimator j on each batch: c·(U's policy-gradient part) + β∇H̄_k."""
        e = self.estimators[j]
        u0 = self.estimators.index(reference_of(self.n_episodes))
        return self.scales[j] * self.directions[u0] + e.entropy_coef * self.entropy_grads


def _std(x: Tensor) -> float:
    return float(x.double().std()) if x.numel() > 1 else 0.0


def pool_directions(cfg: RunConfig, head: Head, activation: str, pol: Sequence[Tensor], val: Sequence[Tensor],
                    pool: Batch, k_batches: int, gen: np.random.Generator) -> PoolDirections:
    """One run's pool ([1, K·N, T] tensors) → every estimator's direction on each batch (module docstring).

    pol/val: the run's own policy and critic parameters (no run dimension); gen: the run's probes stream (for the
    cross-fitted critic's random layer).
    """
    m_total, t_len = pool.mask.shape[1], pool.mask.shape[2]
    if m_total % k_batches:
        raise ValueError(f"a pool of {m_total} episodes does not split into {k_batches} batches")
    n = m_total // k_batches
    shape = (k_batches, n, t_len)
    rewards, mask = pool.rewards.reshape(shape), pool.mask.reshape(shape)
    rows_obs, rows_act = pool.obs[pool.mask], pool.actions[pool.mask]  # [S, …] in (episode, step) order
    bounds = [0, *np.cumsum(mask.sum(dim=(1, 2)).tolist()).astype(int).tolist()]  # batch k: rows bounds[k]:bounds[k+1]
    half = (k_batches // 2) * n  # the first half of the pool: episodes < half
    first_half = pool.mask[0].nonzero()[:, 0] < half

    # 1. weights of every estimator, from the function the trainer uses, on the K batches as K "runs" of N episodes
    weighted = [e for e in estimator_grid([0.0], n) if e.baseline != OPTIMAL]
    values: dict[tuple[str, bool], Tensor] = {}
    own_kind = (cfg.returns, cfg.normalize == "returns") if cfg.baseline == "value" else None
    if own_kind is not None:
        with torch.no_grad():
            values[own_kind] = forward_single(list(val), rows_obs, activation)[:, 0]
    rtg = est.reward_to_go(rewards, mask, cfg.gamma)  # once; the full return is its first step (as the trainer does)
    signal = {"rtg": rtg, "full": rtg[..., :1] * mask}
    w_rows: dict[Estimator, Tensor] = {}
    targets: dict[tuple[str, bool], Tensor] = {}
    for e in weighted:
        if e.baseline != "value":
            w, x = est.weights_from_signal(signal[e.returns], mask, e.baseline, e.normalize)
            w_rows[e] = w[mask]
            targets[(e.returns, e.normalize == "returns")] = x[mask]
    kinds = sorted(targets)
    fitted = crossfit_values(rows_obs, torch.stack([targets[k] for k in kinds], 1), first_half, gen).float()
    for j, kind in enumerate(kinds):
        values.setdefault(kind, fitted[:, j])
    for e in weighted:
        if e.baseline == "value":
            v = torch.zeros(shape).masked_scatter(mask, values[(e.returns, e.normalize == "returns")])
            w_rows[e] = est.weights_from_signal(signal[e.returns], mask, e.baseline, e.normalize, v)[0][mask]
    ones = Estimator("", "ones", "", 0.0)  # Σ_t ψ: the score direction the optimal baseline subtracts
    w_rows[ones] = torch.ones(rows_obs.shape[0])
    order = [*weighted, ones]
    weights = torch.stack([w_rows[e] for e in order]).float()  # [E_w, S]

    # 2. one pass over the batches: scores in factored form, contracted with every weight row
    beta = cfg.entropy_coef
    mask_pool = pool.mask[0]
    g_rtg = rtg[mask].float()
    dirs_w, h_grads, s_ep, a_ep = [], [], [], []
    for k in range(k_batches):
        lo, hi = bounds[k], bounds[k + 1]
        sc, h = layer_scores(head, activation, pol, rows_obs[lo:hi], rows_act[lo:hi], entropy=beta > 0)
        step = max(16, CHUNK_FLOATS // (weights.shape[0] * max(a.shape[1] for a in sc.inputs)))
        acc = sum(LayerScores([a[i:i + step] for a in sc.inputs], [d[i:i + step] for d in sc.deltas]).contract(
            weights[:, lo + i: lo + min(i + step, hi - lo)]) for i in range(0, hi - lo, step))
        dirs_w.append(acc / n)
        h_grads.append(h if h is not None else torch.zeros(sc.num_params))
        m_k = mask_pool[k * n: (k + 1) * n]
        s_ep.append(sc.episode_sums(m_k))
        a_ep.append(sc.episode_sums(m_k, g_rtg[lo:hi]))
    d_w = torch.stack(dirs_w, dim=1).double()  # [E_w, K, P]
    h_grad = torch.stack(h_grads).double()  # [K, P]
    s_ep, a_ep = torch.cat(s_ep).double(), torch.cat(a_ep).double()  # [K·N, P]
    index = {e: j for j, e in enumerate(order)}

    # 3. the optimal constant baseline, cross-fitted between the halves: d = d_{returns/none/none} − b*·(1/N)Σ_t ψ
    g0 = rtg[..., 0].reshape(-1).double()  # G₀ per episode [K·N]
    s_sq = (s_ep * s_ep).sum(dim=1)
    in_first = torch.arange(m_total) < half
    b_star: dict[str, Tensor] = {}
    for ret in AXES["returns"]:
        sa = s_sq * g0 if ret == "full" else (s_ep * a_ep).sum(dim=1)
        b = torch.zeros(k_batches, 1, dtype=torch.float64)
        for fit in (in_first, ~in_first):
            den = s_sq[fit].sum()
            apply = ~fit.reshape(k_batches, n)[:, 0]
            b[apply] = float(sa[fit].sum() / den) if den > 0 else 0.0
        b_star[ret] = b

    # 4. the rows: every estimator at β = 0 and at the run's own β
    betas = [0.0] if beta == 0 else [0.0, beta]
    ests, dirs, scales, critics = [], [], [], []
    for e in estimator_grid(betas, n):
        e0 = Estimator(e.returns, e.baseline, e.normalize, 0.0)
        if e.baseline == OPTIMAL:
            d = d_w[index[Estimator(e.returns, "none", "none", 0.0)]] - b_star[e.returns] * d_w[index[ones]]
        else:
            d = d_w[index[e0]]
        ests.append(e)
        dirs.append(d + e.entropy_coef * h_grad if e.entropy_coef > 0 else d)
        if e.normalize == "returns":
            scales.append(1.0 / (_std(w_rows[Estimator(e.returns, "none", "none", 0.0)]) + est.EPS))
        elif e.normalize == "advantages":
            scales.append(1.0 / (_std(w_rows[Estimator(e.returns, e.baseline, "none", 0.0)]) + est.EPS))
        else:
            scales.append(1.0)
        if e.baseline == "value":
            critics.append("run" if (e.returns, e.normalize == "returns") == own_kind else "crossfit")
        else:
            critics.append("crossfit" if e.baseline == OPTIMAL else "")
    return PoolDirections(ests, torch.stack(dirs).numpy(), h_grad.numpy(), scales, critics, n, int(bounds[-1]))


def probe_rows(cfg: RunConfig, update: int, env_steps: int, pool: PoolDirections) -> list[dict[str, Any]]:
    """probes.csv rows of one run at one checkpoint (DESIGN.md columns, then `reference_scale`, `critic`,
    `pool_steps`)."""
    rows = []
    for j, e in enumerate(pool.estimators):
        stats = probe_statistics(pool.directions[j], pool.reference(j))
        rows.append({"run_id": cfg.run_id, "update": int(update), "env_steps": int(env_steps),
                     "estimator": e.label, "returns": e.returns, "baseline": e.baseline, "normalize": e.normalize,
                     "entropy_coef": float(e.entropy_coef), "n_episodes": pool.n_episodes,
                     "k_batches": int(pool.directions.shape[1]), **stats,
                     "is_trained_estimator": e.trained_by(cfg), "reference_scale": float(pool.scales[j]),
                     "critic": pool.critics[j], "pool_steps": pool.pool_steps})
    return rows


# ---- the engine's hook ---------------------------------------------------------------------------------------------
def probe_env(cohort: "Cohort", num_envs: int):
    """The cohort's probe environment (K·N episodes per run), made once and kept on the cohort."""
    env = getattr(cohort, "probe_env", None)
    if env is None or env.num_envs != num_envs:
        if env is not None:
            env.close()
        env = make_cohort_env(cohort.configs, num_envs=num_envs)
        cohort.probe_env = env
    return env


def probe_checkpoint(cohort: "Cohort", runs: list[int], update: int) -> list[dict[str, Any]]:
    """Probe `runs` (cohort positions) at their current policies → probes.csv rows, run by run in `runs` order.

    The pools of all `runs` are collected in one lockstep rollout (each run from its own probes stream, so a run's
    pool does not depend on which runs are probed with it); everything after that is per run.
    """
    if not runs:
        return []
    cfg0 = cohort.configs[runs[0]]
    k, n = cfg0.probe_batches, cfg0.episodes_per_update  # part of the cohort key
    env = probe_env(cohort, k * n)
    gens = [cohort.runs[r].streams.probes for r in runs]
    seeds = [draw_seed(g) for g in gens]
    pool = collect(env, np.asarray(runs), seeds, cohort.policy, cohort.activation, cohort.head, gens)
    rows: list[dict[str, Any]] = []
    for j, r in enumerate(runs):
        cfg = cohort.configs[r]
        pol = [p[r].detach() for p in cohort.policy]
        val = [p[r].detach() for p in cohort.value]
        dirs = pool_directions(cfg, cohort.head, cohort.activation, pol, val, pool.run(j), k, gens[j])
        rows.extend(probe_rows(cfg, update, cohort.runs[r].env_steps, dirs))
    return rows
