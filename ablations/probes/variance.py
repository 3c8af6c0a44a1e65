"""Paired gradient-variance probes: at a checkpoint, how noisy is each estimator's update direction at the frozen θ?

At a checkpoint each probed run freezes its policy θ and collects a pool of K×N complete episodes from its own
`probes` stream (env seed and action noise; the `env`/`actions` streams are never touched, so probes on or off leave
training bit-identical) in a separate K×N-episode environment kept on the cohort. The pool is cut into K disjoint
batches of N episodes (episodes kN … kN+N−1 form batch k). Everything after the rollout uses the run's own data only.

Per-step scores ψ_{i,t} = ∇θ log π(a_{i,t}|s_{i,t}) (policy parameters only, flattened W₀, b₀, W₁, …) are computed
once for the pool, in factored form: for an MLP layer z = a W + b, ψ restricted to W is the outer product a_s ⊗ δ_s
with δ_s = ∂log π_s/∂z_s, and one backward pass of Σ_s log π_s yields every δ_s (rows do not interact). Every
estimator is a weighting of the same ψ; on batch k its update direction is

    d_k = A_k Σ_{i∈k} Σ_t (w_{i,t} ψ_{i,t} + β ∇θ H_{i,t}),    A_k = 1/N (`episode`) or 1/L_k (`step`, L_k = batch k's
                                                               valid steps),

exactly −∇(loss) of `engine.run_update` on that batch for the estimator's aggregation, before clipping; every
estimator is measured under both aggregations on the same episodes (the weights are the same, only A_k differs).
w comes from the trainer's own `estimators.weights_from_signal`, called on the K batches as K "runs" of N episodes,
so baselines and normalization are computed within each batch as in training.

Cost. Σ_s w_{e,s} ψ_s is one contraction per layer, (w ⊙ A)ᵀ Δ; ψ itself ([S, P]) is never materialized. All 24
weight rows of a batch are, by construction, combinations of 10 vectors (the two return signals and their per-step
batch means, the mask and its per-step batch mean, four critics' values), so only an orthonormal basis of their span
is contracted and the rows are recombined exactly (`LayerScores.contract_in_span`). The statistics come from K×K
Gram matrices. `torch.func.vmap(grad(·))` gives the same ψ (the tests check both against a loop of `backward()`),
but its first call imports torch._dynamo (~4 s per process) and it materializes [S, P].

Estimators (rows, in this order): entropy_coef β ∈ {0, the run's β} (one level when the run's β is 0) × aggregate
{episode, step} × returns {full, rtg, gpomdp} × baseline {none, mean, loo, value, optimal} × normalize {none, returns,
advantages} (`optimal`: none only; `loo` needs N ≥ 2). Labels are "returns/baseline/normalize/β", β formatted `%g`
("rtg/loo/none/0.01"), with "/step" appended under the step aggregation ("rtg/loo/none/0.01/step").

* `value` uses the run's own critic (its `cohort.value` slice) when the run trains with baseline=value and the
  estimator's critic target is the one that critic is fitted to (same `returns`, standardized iff the run's
  normalize is `returns`); otherwise a cross-fitted critic: a fresh one-hidden-layer tanh net (width `CRITIC_WIDTH`,
  random input layer drawn from the probes stream, output layer by ridge regression) fitted on one half of the pool
  (batches < K/2) and applied to the other half, and vice versa, so no episode's baseline has seen that episode.
  Column `critic` says which ("run" / "crossfit").
* `optimal` is the variance-optimal *constant* baseline of the single-episode estimator, one global constant per
  returns kind (not per time step): with s_i = Σ_t ψ_{i,t} and a_i = Σ_t x_{i,t} ψ_{i,t}, b* = E[s·a]/E[‖s‖²]
  (= E[‖s‖² G₀]/E[‖s‖²] for full returns), estimated on one half of the pool and applied to the other half
  (cross-fitted: E[Σ_t ψ_t] = 0, so it adds no bias to the *episode* form; the step form is biased anyway).
  Normalize none only.

Statistics (`probe_statistics`, a pure function of the K directions d_k of an estimator and u_k of its reference):
total_var = tr Cov(d) (unbiased, K−1); mean_sq_norm = ‖d̄‖² − total_var/K (unbiased for ‖E d‖²); snr =
mean_sq_norm / total_var; pairwise_cos = mean over batch pairs k≠l of cos(d_k, d_l); cos_to_reference = mean over k
of cos(d_k, ū_{−k}), ū_{−k} the reference averaged over the *other* K−1 batches (leave-one-batch-out: independent of
batch k, so the cosine is not inflated by shared episodes; the reference's own noise deflates it);
bias_sq_norm = ‖mean(d − u)‖² − tr Cov(d − u)/K, the unbiased paired estimate of ‖E d − E u‖²; rel_bias =
√max(bias_sq_norm, 0) / ‖ū‖ (ū the reference averaged over all K batches: ‖bias‖ relative to ‖∇J_γ‖, plug-in, so
slightly low when the reference is noisy; 0 when both are 0, inf when only ‖ū‖ is).

The reference of an estimator is u_k = c·U_k + β A_k Σ ∇θH (the estimator's own entropy term, so bias measures the
policy-gradient part) with U = full/loo/none, episode aggregation, at β = 0 (full/none/none when N = 1; column
`reference`), on the same batches: the only estimator whose expectation is exactly ∇J_γ with a variance below
vanilla's (the probes' earlier reference, rtg/loo/none, is biased for ∇J_γ when γ < 1). c = 1 for an episode-form
estimator without normalization. A normalized estimator divides by a batch standard deviation, so its large-N limit is
∇J/σ, not ∇J: there c = 1/σ with σ the pool's sample std of what it standardizes (the return signal for `returns`,
the un-normalized advantage x − b for `advantages`), estimated on the whole pool; a step-form estimator divides by L_k
instead of N, so its first-order limit is ∇J·N/E[L]: there c is further multiplied by N/L̄, L̄ the pool's mean batch
length (column `reference_scale` = c; 0 when σ = 0, as standardizing a constant gives 0). bias_sq_norm then measures
what is left beyond that scale: the finite-N bias of normalization, and the step form's bias from 1/L_k being
correlated with the episodes, which does not vanish as N grows. cos_to_reference uses the same rescaled reference.

Zero directions. A batch direction whose norm is at most `ZERO_TOL` × A_k Σ_s (|w_s| + |x_s|)‖ψ_s‖ is zero up to
float32 rounding (leave-one-out or mean weights when every episode has the same return, e.g. every Acrobot episode
truncated at the start): it is taken as the zero vector, counted per row (`zero_batches`, `reference_zero_batches`),
and a cosine with a zero vector is 0 (it is aligned with nothing). No statistic is ever NaN: snr is 0 when total_var
and mean_sq_norm are both ≤ 0 and inf when only total_var is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ..train import estimators as est
from ..config import AXES, RunConfig
from ..envs.registry import make_cohort_env
from ..envs.spec import CohortEnv
from ..train.cohort import Cohort
from ..train.nets import ACTIVATIONS, Head, forward_single
from ..train.rollout import Batch, collect
from ..train.seeding import draw_seed

#: Bound on the temporaries of a contraction or an episode group, in floats.
CHUNK_FLOATS = 1 << 22
#: Per-episode sums pad episodes of similar length together; padding may add this fraction of rows.
PAD_SLACK = 0.25
#: Hidden width of the cross-fitted critic, and its ridge penalty per fitted row.
CRITIC_WIDTH = 64
CRITIC_RIDGE = 1e-3
#: A direction whose norm is at most this fraction of A_k Σ_s (|w_s| + |x_s|)‖ψ_s‖ (its weights' and return signal's
#: scale) is zero up to float32 rounding (e.g. leave-one-out weights when every episode has the same return): it is
#: treated as the zero vector (counted in `zero_batches`; its cosines are 0), never given an arbitrary direction.
ZERO_TOL = 1e-5

OPTIMAL = "optimal"


@dataclass(frozen=True)
class Estimator:
    """One probed estimator: the ablation levels of the update direction it measures."""

    returns: str
    baseline: str
    normalize: str
    entropy_coef: float
    aggregate: str = "episode"

    @property
    def label(self) -> str:
        """"returns/baseline/normalize/β", with "/step" appended for the step aggregation."""
        tail = "" if self.aggregate == "episode" else f"/{self.aggregate}"
        return f"{self.returns}/{self.baseline}/{self.normalize}/{self.entropy_coef:g}{tail}"

    def trained_by(self, cfg: RunConfig) -> bool:
        return (self.returns, self.baseline, self.normalize, self.entropy_coef, self.aggregate) == (
            cfg.returns, cfg.baseline, cfg.normalize, cfg.entropy_coef, cfg.aggregate)


def estimator_grid(entropy_coefs: Sequence[float], n_episodes: int) -> list[Estimator]:
    """The probed estimators in row order (see the module docstring)."""
    out = []
    for beta in entropy_coefs:
        for agg in AXES["aggregate"]:
            for ret in AXES["returns"]:
                for base in (*AXES["baseline"], OPTIMAL):
                    if base == "loo" and n_episodes < 2:
                        continue
                    for nz in ("none",) if base == OPTIMAL else AXES["normalize"]:
                        out.append(Estimator(ret, base, nz, float(beta), agg))
    return out


def reference_of(n_episodes: int) -> Estimator:
    """The reference U (at β = 0), unbiased for ∇J_γ: full/loo/none, episode aggregation (full/none/none when N = 1)."""
    return Estimator("full", "loo" if n_episodes >= 2 else "none", "none", 0.0, "episode")


# ---- statistics: a pure function of the K batch directions ---------------------------------------------------------
def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where den > 0; where den ≤ 0: 0 if num ≤ 0, else inf (never NaN, no warnings)."""
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    return np.divide(num, den, out=np.where(num > 0, np.inf, 0.0), where=den > 0)


def _cos(dot: np.ndarray, sq_a: np.ndarray, sq_b: np.ndarray) -> np.ndarray:
    """dot / (‖a‖‖b‖), and 0 where either vector is zero (the convention: a zero direction is aligned with nothing)."""
    den = np.sqrt(np.maximum(sq_a, 0.0) * np.maximum(sq_b, 0.0))
    dot, den = np.broadcast_arrays(np.asarray(dot, np.float64), den)
    return np.clip(np.divide(dot, den, out=np.zeros(dot.shape), where=den > 0), -1.0, 1.0)


def _zero_out(g: np.ndarray, rows: np.ndarray | None, cols: np.ndarray | None) -> np.ndarray:
    """The Gram matrix g [..., K, K] with the rows (cols) of flagged directions (bool [..., K]) set to 0."""
    keep_r = 1.0 if rows is None else (~rows)[..., :, None]
    keep_c = 1.0 if cols is None else (~cols)[..., None, :]
    return g * keep_r * keep_c


STATISTICS = ["total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos", "bias_sq_norm", "rel_bias",
              "zero_batches", "reference_zero_batches"]


def _sum(g: np.ndarray) -> np.ndarray:
    return g.sum(axis=(-2, -1))


def _trace(g: np.ndarray) -> np.ndarray:
    return np.trace(g, axis1=-2, axis2=-1)


def gram_statistics(dd: np.ndarray, du: np.ndarray, uu: np.ndarray, zero_d: np.ndarray | None = None,
                    zero_u: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The probe statistics from the Gram matrices of K batch directions d_k and references u_k, [..., K, K] each:
    dd[k, l] = d_k·d_l, du[k, l] = d_k·u_l, uu[k, l] = u_k·u_l (see `probe_statistics`). zero_d / zero_u (bool
    [..., K]; default: an exactly zero norm) flag the directions that are zero up to rounding: they are set to the
    zero vector, counted (`zero_batches`, `reference_zero_batches`), and their cosines are 0."""
    k = dd.shape[-1]
    diag = lambda g: np.diagonal(g, axis1=-2, axis2=-1)  # noqa: E731
    zero_d = diag(dd) <= 0 if zero_d is None else zero_d | (diag(dd) <= 0)
    zero_u = diag(uu) <= 0 if zero_u is None else zero_u | (diag(uu) <= 0)
    dd, du, uu = _zero_out(dd, zero_d, zero_d), _zero_out(du, zero_d, zero_u), _zero_out(uu, zero_u, zero_u)
    total_var = (_trace(dd) - _sum(dd) / k) / (k - 1)  # Σ_k ‖d_k − d̄‖² / (K − 1)
    mean_sq = _sum(dd) / k**2 - total_var / k
    sq = diag(dd)  # [..., K]
    cos = _cos(dd, sq[..., :, None], sq[..., None, :])
    pairwise = (_sum(cos) - _trace(cos)) / (k * (k - 1))
    # batch k's reference: the other K − 1 batches, ū_{−k} = (Σ_l u_l − u_k)/(K − 1)
    d_ref = (du.sum(axis=-1) - diag(du)) / (k - 1)
    ref_sq = (_sum(uu)[..., None] - 2 * uu.sum(axis=-1) + diag(uu)) / (k - 1) ** 2
    cos_ref = _cos(d_ref, sq, ref_sq).mean(axis=-1)
    diff = dd - du - np.swapaxes(du, -1, -2) + uu  # Gram of d_k − u_k
    bias = _sum(diff) / k**2 - (_trace(diff) - _sum(diff) / k) / (k - 1) / k
    rel_bias = np.sqrt(_ratio(np.maximum(bias, 0.0), _sum(uu) / k**2))  # ‖bias‖ / ‖ū‖, ū over all K batches
    return {"total_var": total_var, "mean_sq_norm": mean_sq, "snr": _ratio(mean_sq, total_var),
            "cos_to_reference": cos_ref, "pairwise_cos": pairwise, "bias_sq_norm": bias, "rel_bias": rel_bias,
            "zero_batches": zero_d.sum(axis=-1), "reference_zero_batches": zero_u.sum(axis=-1)}


def probe_statistics(d: np.ndarray, u: np.ndarray) -> dict[str, Any]:
    """d [..., K, P]: an estimator's update direction on each of K disjoint batches; u: its reference's on the same.

    → `STATISTICS` (module docstring): floats for [K, P] inputs, arrays over the leading dimensions otherwise. A
    direction with norm 0 is excluded from nothing but has cosine 0 with everything; never NaN.
    """
    d, u = np.asarray(d, dtype=np.float64), np.asarray(u, dtype=np.float64)
    if d.ndim < 2 or d.shape != u.shape or d.shape[-2] < 2:
        raise ValueError(f"expected two [..., K, P] arrays with K >= 2, got {d.shape} and {u.shape}")
    dt, ut = torch.from_numpy(d), torch.from_numpy(u)
    out = gram_statistics(*((a @ b.transpose(-1, -2)).numpy() for a, b in ((dt, dt), (dt, ut), (ut, ut))))
    return {name: float(out[name]) if d.ndim == 2 else out[name] for name in STATISTICS}


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
        """Σ_s w[e, s] ψ_s for weights w [E, S] → [E, P] (parameters flattened in order W₀, b₀, W₁, b₁, …).

        Per layer (w ⊙ A)ᵀ Δ: [E, in, S] × [S, out], in chunks of rows of about `CHUNK_FLOATS` floats."""
        widest = max(a.shape[1] for a in self.inputs)
        step = max(16, CHUNK_FLOATS // max(1, w.shape[0] * widest))
        parts = []
        for a, d in zip(self.inputs, self.deltas):
            gw = sum((w[:, i:i + step].unsqueeze(1) * a[i:i + step].T.unsqueeze(0)) @ d[i:i + step]
                     for i in range(0, a.shape[0], step))  # [E, in, out]
            parts += [gw.reshape(w.shape[0], -1), w @ d]
        return torch.cat(parts, dim=1)

    def contract_in_span(self, w: Tensor, basis: Tensor, tol: float = 1e-6) -> Tensor:
        """`contract(w)` (float64 result) when most rows of w [E, S] lie in the span of a few rows `basis` [B, S]:
        with Q an orthonormal basis of that span (QR, float64), w = C Qᵀ + R, and Σ_s w ψ_s = C (Qᵀ Ψ) + R Ψ, where
        only the rows of R larger than `tol` relative to their row of w are contracted. Exact up to rounding; B + (a
        few) rows are contracted instead of E."""
        w, basis = w.double(), basis.double()
        q = torch.linalg.qr(basis.T).Q  # [S, B'] orthonormal columns spanning the basis rows
        coef = w @ q  # [E, B']
        resid = w - coef @ q.T
        far = resid.norm(dim=1) > tol * w.norm(dim=1)
        g = self.contract(torch.cat([q.T, resid[far]]).float()).double()
        out = coef @ g[: q.shape[1]]
        out[far] += g[q.shape[1]:]
        return out

    def row_norms(self) -> Tensor:
        """‖ψ_s‖ per row [S]: Σ_l (‖a_{l,s}‖² + 1)‖δ_{l,s}‖² (the weight block a ⊗ δ and the bias block δ)."""
        return sum(((a.double() ** 2).sum(1) + 1) * (d.double() ** 2).sum(1)
                   for a, d in zip(self.inputs, self.deltas)).sqrt()

    def rows(self, lo: int, hi: int) -> "LayerScores":
        return LayerScores([a[lo:hi] for a in self.inputs], [d[lo:hi] for d in self.deltas])

    def episode_sums(self, mask: Tensor, ws: Sequence[Tensor | None]) -> list[Tensor]:
        """For each weighting w in ws ([S], or None = 1): Σ_t w_{i,t} ψ_{i,t} per episode → [M, P]; rows are in
        (episode, step) order of mask [M, T]. Per layer a batched Aᵢᵀ Δᵢ over episodes, which are sorted by length
        and grouped so that padding adds at most `PAD_SLACK` of the rows and a group stays within `CHUNK_FLOATS`."""
        lengths = mask.sum(dim=1)
        order = torch.argsort(lengths, stable=True)
        starts = (torch.cumsum(lengths, 0) - lengths).tolist()
        rows = torch.cat([torch.arange(starts[i], starts[i] + int(lengths[i])) for i in order.tolist()])
        srt = LayerScores([a[rows] for a in self.inputs], [d[rows] for d in self.deltas])
        ws = [None if w is None else w[rows] for w in ws]
        lens = lengths[order].numpy()
        offsets = np.concatenate([[0], np.cumsum(lens)])
        widest = max(a.shape[1] for a in self.inputs)
        chunks, e0 = [], 0
        while e0 < len(lens):  # the longest run of episodes from e0 whose padding and size stay within bounds
            count = np.arange(1, len(lens) - e0 + 1)
            padded = count * lens[e0:]  # sorted: the last episode of a group is its longest
            ok = (padded <= (1 + PAD_SLACK) * (offsets[e0 + 1:] - offsets[e0])) & (padded * widest <= CHUNK_FLOATS)
            e1 = e0 + max(1, int(np.argmin(ok)) if not ok.all() else len(ok))
            lo, hi = int(offsets[e0]), int(offsets[e1])
            m = torch.arange(int(lens[e1 - 1])).unsqueeze(0) < torch.from_numpy(lens[e0:e1]).unsqueeze(1)
            chunks.append(srt.rows(lo, hi)._padded_sums(m, [None if w is None else w[lo:hi] for w in ws]))
            e0 = e1
        inverse = torch.argsort(order)
        return [torch.cat([c[j] for c in chunks])[inverse] for j in range(len(ws))]

    def _padded_sums(self, mask: Tensor, ws: Sequence[Tensor | None]) -> list[Tensor]:
        out: list[list[Tensor]] = [[] for _ in ws]
        full = bool(mask.all())
        for a, d in zip(self.inputs, self.deltas):
            if full:
                a_t = a.reshape(*mask.shape, -1).transpose(1, 2)
            else:
                a_pad = a.new_zeros(*mask.shape, a.shape[1])
                a_pad[mask] = a
                a_t = a_pad.transpose(1, 2)
            d_pad = d.new_zeros(*mask.shape, d.shape[1])
            for j, w in enumerate(ws):
                d_pad[mask] = d if w is None else d * w.unsqueeze(1)
                out[j] += [torch.bmm(a_t, d_pad).reshape(mask.shape[0], -1), d_pad.sum(dim=1)]
        return [torch.cat(parts, dim=1) for parts in out]

    def vectors(self) -> Tensor:
        """ψ itself, [S, P] (for tests and small problems: the probes never materialize it)."""
        parts = []
        for a, d in zip(self.inputs, self.deltas):
            parts.append((a.unsqueeze(2) * d.unsqueeze(1)).reshape(a.shape[0], -1))
            parts.append(d)
        return torch.cat(parts, dim=1)


def layer_scores(head: Head, activation: str, params: Sequence[Tensor], obs: Tensor, actions: Tensor,
                 entropy: bool = False) -> tuple[LayerScores, LayerScores | None]:
    """Per-step scores of rows obs [S, D], actions [S(, A)] at one run's `params` (no run dimension), by one backward
    pass: each row's log π depends on its own row only, so ∂(Σ_s log π_s)/∂z_{l,s} = ∂log π_s/∂z_{l,s}. The forward is
    `nets.forward_single`'s, layer by layer. With `entropy`, also the per-step entropy gradients ∇θ H(π(·|s)), in the
    same factored form."""
    act = ACTIVATIONS[activation]
    ps = [p.detach() for p in params]
    n_layers = len(ps) // 2
    x, inputs, pre = obs, [], []
    for li in range(n_layers):
        inputs.append(x.detach())
        z = (x @ ps[2 * li] + ps[2 * li + 1]).requires_grad_(True) if li == 0 else x @ ps[2 * li] + ps[2 * li + 1]
        pre.append(z)
        x = act(z) if li < n_layers - 1 else z
    deltas = torch.autograd.grad(head.log_prob(x, actions).sum(), pre, retain_graph=entropy)
    h_scores = None
    if entropy:
        h_scores = LayerScores(inputs, list(torch.autograd.grad(head.entropy(x).sum(), pre)))
    return LayerScores(inputs, list(deltas)), h_scores


# ---- the cross-fitted critic ---------------------------------------------------------------------------------------
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


# ---- one run's probe -----------------------------------------------------------------------------------------------
@dataclass
class PoolDirections:
    """Every estimator's update direction on each of the K batches of one run's pool, at β = 0, and ∇H̄_k per
    aggregation: the direction of an estimator at β is base + β·entropy_grads[its aggregation] (the rows are
    `estimator_grid(betas, N)`). `bounds`/`entropy_bounds` are the rounding scales of the directions (`ZERO_TOL`)."""

    base: list[Estimator]  # the estimators at β = 0
    directions: np.ndarray  # [E₀, K, P] float64: A_k Σ_{i∈k} Σ_t w ψ per estimator (A_k = 1/N or 1/L_k)
    entropy_grads: np.ndarray  # [len(AXES["aggregate"]), K, P] float64: A_k Σ_{i∈k} Σ_t ∇θ H_{i,t}
    betas: list[float]  # the entropy levels of the rows: 0 and the run's β
    scales: list[float]  # per base estimator: the reference scale c (module docstring)
    critics: list[str]  # per base estimator: "run", "crossfit" or ""
    n_episodes: int  # N, episodes per batch
    pool_steps: int  # valid steps in the pool
    bounds: np.ndarray  # [E₀, K]: A_k Σ_s (|w_s| + |x_s|) ‖ψ_s‖, the scale a direction's rounding error is relative to
    entropy_bounds: np.ndarray  # [len(AXES["aggregate"]), K]: A_k Σ_s ‖∇θ H_s‖

    def statistics(self) -> dict[str, np.ndarray]:
        """The probe statistics of every row [len(betas) × E₀], from Gram matrices: with d = d₀ + βH and
        u = c·U₀ + βH (U₀ the reference at β = 0, H the entropy gradient of the estimator's aggregation), every Gram
        combines d₀d₀ᵀ, d₀U₀ᵀ, d₀Hᵀ, U₀U₀ᵀ, U₀Hᵀ and HHᵀ."""
        d0_all, h_all = torch.from_numpy(self.directions), torch.from_numpy(self.entropy_grads)  # torch: BLAS
        ref = self.base.index(reference_of(self.n_episodes))
        u0 = d0_all[ref]
        t = np.swapaxes
        k = d0_all.shape[1]
        step = max(1, CHUNK_FLOATS // (8 * k * k))  # estimators per chunk: the [·, K, K] temporaries stay bounded
        out: dict[str, list[np.ndarray]] = {name: [] for name in STATISTICS}
        for b in self.betas:
            for a, agg in enumerate(AXES["aggregate"]):
                rows = [j for j, e in enumerate(self.base) if e.aggregate == agg]  # contiguous (grid order)
                h = h_all[a]
                uu, uh, hh = (u0 @ u0.T).numpy(), (u0 @ h.T).numpy(), (h @ h.T).numpy()  # [K, K]
                for lo in range(rows[0], rows[-1] + 1, step):
                    hi = min(lo + step, rows[-1] + 1)
                    d = d0_all[lo:hi]
                    dd, du, dh = (torch.bmm(d, d.transpose(1, 2)).numpy(), (d @ u0.T).numpy(),
                                  (d @ h.T).numpy())  # [chunk, K, K]
                    c = np.asarray(self.scales[lo:hi])[:, None, None]
                    g_dd = dd + b * (dh + t(dh, 1, 2)) + b * b * hh
                    g_du = c * du + b * dh + c * b * uh.T + b * b * hh
                    g_uu = c * c * uu + c * b * (uh + uh.T) + b * b * hh
                    diag = lambda g: np.sqrt(np.maximum(np.diagonal(g, axis1=-2, axis2=-1), 0.0))  # noqa: E731
                    zero_d = diag(g_dd) <= ZERO_TOL * (self.bounds[lo:hi] + b * self.entropy_bounds[a])
                    zero_u = diag(g_uu) <= ZERO_TOL * (c[:, :, 0] * self.bounds[ref] + b * self.entropy_bounds[a])
                    for name, v in gram_statistics(g_dd, g_du, g_uu, zero_d, zero_u).items():
                        out[name].append(v)
        return {name: np.concatenate(v) for name, v in out.items()}


def _inverse_std(x: Tensor) -> float:
    """1/(σ + EPS) as `estimators.standardize` divides, σ the sample std of x; 0 when x is constant (standardizing
    a constant gives 0, so the normalized estimator's limit is the zero direction)."""
    sd = float(x.double().std()) if x.numel() > 1 else 0.0
    return 1.0 / (sd + est.EPS) if sd > 0 else 0.0


def pool_directions(cfg: RunConfig, head: Head, activation: str, pol: Sequence[Tensor], val: Sequence[Tensor],
                    pool: Batch, k_batches: int, gen: np.random.Generator,
                    rtg: Tensor | None = None) -> PoolDirections:
    """One run's pool ([1, K·N, T] tensors) → every estimator's direction on each batch (module docstring).

    pol/val: the run's own policy and critic parameters (no run dimension); gen: the run's probes stream (for the
    cross-fitted critic's random layer); rtg: the pool's reward-to-go on the same grid, if already computed.
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

    # 1. weights of every estimator, from the function the trainer uses, on the K batches as K "runs" of N episodes;
    #    weights do not depend on the aggregation, which only divides each batch's sum (by N or by L_k)
    weighted = [e for e in estimator_grid([0.0], n) if e.baseline != OPTIMAL and e.aggregate == "episode"]
    values: dict[tuple[str, bool], Tensor] = {}
    own_kind = (cfg.returns, cfg.normalize == "returns") if cfg.baseline == "value" else None
    if own_kind is not None:
        with torch.no_grad():
            values[own_kind] = forward_single(list(val), rows_obs, activation)[:, 0]
    # the reward-to-go once; the other signals from it (as the trainer does)
    rtg = est.reward_to_go(rewards, mask, cfg.gamma) if rtg is None else rtg.reshape(shape)
    signal = {kind: est.signal_from_rtg(rtg, mask, cfg.gamma, kind) for kind in AXES["returns"]}
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
    weights = torch.stack([w_rows[e] for e in order]).double()  # [E_w, S]
    # every weight row is (exactly, by construction) a combination of these, batch by batch: the return signals, their
    # per-step batch means (mean/loo baselines), the mask and its per-step batch mean (standardization shifts), values
    fm = mask.to(rtg.dtype)
    basis = torch.stack([v for x in (*signal.values(), fm) for v in (x[mask], est.mean_baseline(x, mask)[mask])]
                        + [values[kind] for kind in sorted(values)]).double()

    # 2. the scores of the whole pool in factored form; per batch, one contraction with every weight row
    beta = cfg.entropy_coef
    mask_pool = pool.mask[0]
    sc, sc_h = layer_scores(head, activation, pol, rows_obs, rows_act, entropy=beta > 0)
    lengths = torch.tensor([bounds[k + 1] - bounds[k] for k in range(k_batches)], dtype=torch.float64)[:, None]
    divisor = {"episode": torch.full_like(lengths, float(n)), "step": lengths}  # [K, 1]: 1/A_k of each aggregation
    d_sum = torch.stack([sc.rows(lo, hi).contract_in_span(weights[:, lo:hi], basis[:, lo:hi])
                         for lo, hi in zip(bounds[:-1], bounds[1:])], dim=1)  # [E_w, K, P]: Σ_{i∈k} Σ_t w ψ
    per_batch = lambda x: torch.stack([x[..., lo:hi].sum(dim=-1) for lo, hi in zip(bounds[:-1], bounds[1:])], -1)  # noqa: E731
    x_rows = torch.stack([signal[e.returns][mask] for e in weighted] + [torch.zeros(rows_obs.shape[0])]).double()
    bound_sum = per_batch((weights.abs() + x_rows.abs()) * sc.row_norms().double())  # [E_w, K]
    ep_weights = [None, *(signal[kind][mask].float() for kind in AXES["returns"] if kind != "full")]
    s_ep, *a_eps = (x.double() for x in sc.episode_sums(mask_pool, ep_weights))  # [K·N, P]
    a_ep = dict(zip([kind for kind in AXES["returns"] if kind != "full"], a_eps))
    if sc_h is not None:  # Σ_{i∈k} Σ_t ∇θ H_{i,t} per batch
        h_sum = sc_h.episode_sums(mask_pool, [None])[0].double().reshape(k_batches, n, -1).sum(dim=1)
        h_bound = per_batch(sc_h.row_norms().double())
    else:
        h_sum = torch.zeros(k_batches, sc.num_params, dtype=torch.float64)
        h_bound = torch.zeros(k_batches, dtype=torch.float64)
    index = {e: j for j, e in enumerate(order)}

    # 3. the optimal constant baseline, cross-fitted between the halves: d = d_{returns/none/none} − b*·A_k Σ ψ
    g0 = rtg[..., 0].reshape(-1).double()  # G₀ per episode [K·N]
    s_sq = (s_ep * s_ep).sum(dim=1)
    in_first = torch.arange(m_total) < half
    b_star: dict[str, Tensor] = {}
    for ret in AXES["returns"]:
        sa = s_sq * g0 if ret == "full" else (s_ep * a_ep[ret]).sum(dim=1)
        b = torch.zeros(k_batches, 1, dtype=torch.float64)
        for fit in (in_first, ~in_first):
            den = s_sq[fit].sum()
            apply = ~fit.reshape(k_batches, n)[:, 0]
            b[apply] = float(sa[fit].sum() / den) if den > 0 else 0.0
        b_star[ret] = b

    # 4. every estimator at β = 0, under each aggregation; the rows at the run's own β add β·A_k Σ ∇θ H
    base = estimator_grid([0.0], n)
    dirs, scales, critics, bnds = [], [], [], []
    step_scale = n * k_batches / max(bounds[-1], 1)  # N / L̄: the step form's large-N limit is ∇J·N/E[L]
    for e in base:
        w_e = Estimator(e.returns, e.baseline, e.normalize, 0.0)  # the weights are the episode form's
        if e.baseline == OPTIMAL:
            plain = index[Estimator(e.returns, "none", "none", 0.0)]
            dirs.append((d_sum[plain] - b_star[e.returns] * d_sum[index[ones]]) / divisor[e.aggregate])
            bnds.append(bound_sum[plain] + b_star[e.returns][:, 0].abs() * bound_sum[index[ones]])
        else:
            dirs.append(d_sum[index[w_e]] / divisor[e.aggregate])
            bnds.append(bound_sum[index[w_e]])
        bnds[-1] = bnds[-1] / divisor[e.aggregate][:, 0]
        if e.normalize == "returns":
            c = _inverse_std(w_rows[Estimator(e.returns, "none", "none", 0.0)])
        elif e.normalize == "advantages":
            c = _inverse_std(w_rows[Estimator(e.returns, e.baseline, "none", 0.0)])
        else:
            c = 1.0
        scales.append(c * step_scale if e.aggregate == "step" else c)
        if e.baseline == "value":
            critics.append("run" if (e.returns, e.normalize == "returns") == own_kind else "crossfit")
        else:
            critics.append("crossfit" if e.baseline == OPTIMAL else "")
    betas = [0.0] if beta == 0 else [0.0, beta]
    h_grads = torch.stack([h_sum / divisor[agg] for agg in AXES["aggregate"]])
    h_bounds = torch.stack([h_bound / divisor[agg][:, 0] for agg in AXES["aggregate"]])
    return PoolDirections(base, torch.stack(dirs).numpy(), h_grads.numpy(), betas, scales, critics, n,
                          int(bounds[-1]), torch.stack(bnds).numpy(), h_bounds.numpy())


def probe_rows(cfg: RunConfig, update: int, env_steps: int, pool: PoolDirections) -> list[dict[str, Any]]:
    """probes.csv rows of one run at one checkpoint, in `estimator_grid` order (DESIGN.md columns, then
    `reference_scale`, `critic`, `pool_steps`, `aggregate`, `reference`, `rel_bias`, `zero_batches`,
    `reference_zero_batches`)."""
    stats = pool.statistics()
    reference = reference_of(pool.n_episodes).label
    counts = ["zero_batches", "reference_zero_batches"]
    rows = []
    for j, e in enumerate(estimator_grid(pool.betas, pool.n_episodes)):
        b = j % len(pool.base)
        rows.append({"run_id": cfg.run_id, "update": int(update), "env_steps": int(env_steps),
                     "estimator": e.label, "returns": e.returns, "baseline": e.baseline, "normalize": e.normalize,
                     "entropy_coef": float(e.entropy_coef), "n_episodes": pool.n_episodes,
                     "k_batches": int(pool.directions.shape[1]),
                     **{k: float(stats[k][j]) for k in STATISTICS[:6]},
                     "is_trained_estimator": e.trained_by(cfg), "reference_scale": float(pool.scales[b]),
                     "critic": pool.critics[b], "pool_steps": pool.pool_steps, "aggregate": e.aggregate,
                     "reference": reference, "rel_bias": float(stats["rel_bias"][j]),
                     **{k: int(stats[k][j]) for k in counts}})
    return rows


# ---- the engine's hook ---------------------------------------------------------------------------------------------
def probe_env(cohort: "Cohort", num_envs: int) -> CohortEnv:
    """The cohort's probe environment (K·N episodes per run), made once and kept on the cohort (the trainer closes
    it); the training env is never used, so a probe cannot change what training sees."""
    if cohort.probe_env is None or cohort.probe_env.num_envs != num_envs:
        if cohort.probe_env is not None:
            cohort.probe_env.close()
        cohort.probe_env = make_cohort_env(cohort.configs, num_envs=num_envs, spec=cohort.spec)
    return cohort.probe_env


def probe_checkpoint(cohort: "Cohort", runs: list[int], update: int) -> list[dict[str, Any]]:
    """Probe `runs` (cohort positions) at their current policies → probes.csv rows, run by run in `runs` order.

    The pools of all `runs` are collected in one rollout (each run from its own probes stream, so a run's
    pool does not depend on which runs are probed with it); everything after that is per run (`run_probe`). The
    engine does the same asynchronously (`Trainer.iterate`): pools are collected alongside training, from frozen
    copies of the checkpoint's parameters.
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
        pol = [p[r].detach() for p in cohort.policy]
        val = [p[r].detach() for p in cohort.value]
        rows.extend(run_probe(cohort, r, pool.run(j), pol, val, update, cohort.runs[r].env_steps))
    return rows


def run_probe(cohort: "Cohort", r: int, pool: Batch, pol: Sequence[Tensor], val: Sequence[Tensor], update: int,
              env_steps: int) -> list[dict[str, Any]]:
    """probes.csv rows of run r (cohort position) from its pool ([1, K·N, T] tensors) collected at the checkpoint's
    policy and critic `pol`/`val` (the run's parameters, no run dimension). Draws the cross-fitted critic's random
    layer from the run's probes stream, after the pool's seed and action noise."""
    cfg = cohort.configs[r]
    gamma = torch.tensor([cfg.gamma], dtype=pool.rewards.dtype)
    rtg = est.reward_to_go(pool.rewards, pool.mask, gamma)  # elementwise recursion: exact for any padding
    dirs = pool_directions(cfg, cohort.head, cohort.activation, pol, val, pool, cfg.probe_batches,
                           cohort.runs[r].streams.probes, rtg)
    return probe_rows(cfg, update, env_steps, dirs)
