"""Every estimator's update direction on each of the K batches of one run's probe pool (`pool_directions` →
`PoolDirections`, whose `statistics` are the probe statistics of every row).

At a checkpoint each probed run's pool of K×N complete episodes (collected by the engine from the run's own `probes`
stream at its frozen θ; see `checkpoint`) is cut into K disjoint batches of N episodes (episodes kN … kN+N−1 form
batch k). Everything here uses the run's own data only. Every estimator is a weighting of the same per-step scores ψ
(`factored`); on batch k its update direction is

    d_k = A_k Σ_{i∈k} Σ_t (w_{i,t} ψ_{i,t} + β ∇θ H_{i,t}),    A_k = 1/N (`episode`) or 1/L_k (`step`, L_k = batch k's
                                                               valid steps; `estimators.aggregation_divisor`),

exactly −∇(loss) of `loss.run_update` on that batch for the estimator's aggregation, before clipping; every
estimator is measured under both aggregations on the same episodes (the weights are the same, only A_k differs).
w comes from the trainer's own `estimators.weights_from_signal`, called on the K batches as K "runs" of N episodes,
so baselines and normalization are computed within each batch as in training (the GAE estimators' weights from
`estimators.weights`, as the trainer's). The Monte-Carlo estimators' weight rows of a batch are, by construction,
combinations of a few vectors (the return signals and their per-step batch means, the mask and its per-step batch
mean, the critics' values), and each GAE estimator's two rows (none, advantages) combinations of its advantage signal
and the mask, so only an orthonormal basis of their span is contracted and the rows are recombined exactly
(`LayerScores.contract_in_span`). The statistics come from K×K Gram matrices (`statistics`).

* `value` uses the run's own critic (its checkpoint's `value`) when the run trains with baseline=value and the
  estimator's critic target is the one that critic is fitted to (same `returns`, standardized iff the run's
  normalize is `returns`); otherwise a cross-fitted critic (`critic`): a fresh one-hidden-layer tanh net (width
  `CRITIC_WIDTH`, random input layer drawn from the probes stream, output layer by ridge regression) fitted on one half
  of the pool (batches < K/2) and applied to the other half, and vice versa, so no episode's baseline has seen that
  episode.
  Column `critic` says which ("run" / "crossfit"). The GAE estimators use the critic fitted to the reward-to-go G_t
  (the run's own when it trains rtg, gae or gae_gpomdp with baseline value and normalize other than `returns`; else
  the cross-fitted one), for V(s_t) and V(s_{t+1}) alike, on the pool's episodes with truncation as termination.
* `optimal` is the variance-optimal *constant* baseline of the single-episode estimator, one global constant per
  returns kind (not per time step): with s_i = Σ_t ψ_{i,t} and a_i = Σ_t x_{i,t} ψ_{i,t}, b* = E[s·a]/E[‖s‖²]
  (= E[‖s‖² G₀]/E[‖s‖²] for full returns), estimated on one half of the pool and applied to the other half
  (cross-fitted: E[Σ_t ψ_t] = 0, so it adds no bias to the *episode* form; the step form is biased anyway).
  Normalize none only.

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

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..config import AXES, GAE_RETURNS, RunConfig
from ..train import estimators as est
from ..train.nets import Head, forward_single
from ..train.rollout import Batch
from .critic import crossfit_values
from .factored import CHUNK_FLOATS, layer_scores
from .grid import MC_RETURNS, OPTIMAL, Estimator, estimator_grid, probe_lambdas, reference_of
from .statistics import gram_statistics

#: A direction whose norm is at most this fraction of A_k Σ_s (|w_s| + |x_s|)‖ψ_s‖ (its weights' and return signal's
#: scale) is zero up to float32 rounding (e.g. leave-one-out weights when every episode has the same return): it is
#: treated as the zero vector (counted in `zero_batches`; its cosines are 0), never given an arbitrary direction.
ZERO_TOL = 1e-5


@dataclass
class PoolDirections:
    """Every estimator's update direction on each of the K batches of one run's pool, at β = 0, in factored form, and
    ∇H̄_k per aggregation: the direction of an estimator at β is base + β·entropy_grads[its aggregation] (the rows are
    `estimator_grid(betas, N, lambdas)`). `bounds`/`entropy_bounds` are the rounding scales of the directions
    (`ZERO_TOL`).

    Factored form: a base estimator e's direction on batch k is (sums[row_e, k] − minus[e, k]·sums[ONES, k]) /
    divisors[aggregation of e, k]: one weight row's contraction (`sums`; the last row is the row of ones, Σ_t ψ) less
    a per-batch multiple of the ones row (the optimal baseline b*; 0 for every other estimator), divided by 1/A_k.
    The statistics need only Gram matrices, which are formed from the rows' K×K Grams (E_w + 1 of them) rather than
    from the E₀ materialized [K, P] directions: the same numbers up to float64 rounding at a fraction of the time and
    memory.
    `directions` and `entropy_grads` materialize them (for tests)."""

    base: list[Estimator]  # the estimators at β = 0
    lambdas: tuple[float, ...]  # the GAE estimators' λ levels (`grid.probe_lambdas`)
    sums: np.ndarray  # [E_w + 1, K, P] float64: Σ_{i∈k} Σ_t w ψ per weight row (episode form, β = 0); last: ones
    rows: np.ndarray  # [E₀] int: the weight row of each base estimator
    minus: np.ndarray  # [E₀, K] float64: the multiple of the ones row subtracted (b*; 0 but for `optimal`)
    entropy_sums: np.ndarray  # [K, P] float64: Σ_{i∈k} Σ_t ∇θ H_{i,t}
    divisors: np.ndarray  # [len(AXES["aggregate"]), K] float64: 1/A_k per aggregation
    betas: list[float]  # the entropy levels of the rows: 0 and the run's β
    scales: list[float]  # per base estimator: the reference scale c (module docstring)
    critics: list[str]  # per base estimator: "run", "crossfit" or ""
    n_episodes: int  # N, episodes per batch
    pool_steps: int  # valid steps in the pool
    bounds: np.ndarray  # [E₀, K]: A_k Σ_s (|w_s| + |x_s|) ‖ψ_s‖, the scale a direction's rounding error is relative to
    entropy_bounds: np.ndarray  # [len(AXES["aggregate"]), K]: A_k Σ_s ‖∇θ H_s‖

    @property
    def k_batches(self) -> int:
        return int(self.sums.shape[1])

    @property
    def aggregation_index(self) -> np.ndarray:
        """[E₀] int: each base estimator's aggregation, as an index into `AXES["aggregate"]` (and `divisors`)."""
        return np.array([AXES["aggregate"].index(e.aggregate) for e in self.base])

    @property
    def directions(self) -> np.ndarray:
        """[E₀, K, P] float64: A_k Σ_{i∈k} Σ_t w ψ per base estimator."""
        d0 = self.sums[self.rows] - self.minus[:, :, None] * self.sums[-1]
        return d0 / self.divisors[self.aggregation_index][:, :, None]

    @property
    def entropy_grads(self) -> np.ndarray:
        """[len(AXES["aggregate"]), K, P] float64: A_k Σ_{i∈k} Σ_t ∇θ H_{i,t} per aggregation."""
        return self.entropy_sums / self.divisors[:, :, None]

    def statistics(self) -> dict[str, np.ndarray]:
        """The probe statistics of every row [len(betas) × E₀], from Gram matrices: with d = d₀ + βH and
        u = c·U₀ + βH (U₀ the reference at β = 0, H the entropy gradient of the estimator's aggregation), every Gram
        combines d₀d₀ᵀ, d₀U₀ᵀ, d₀Hᵀ, U₀U₀ᵀ, U₀Hᵀ and HHᵀ, and each of those the weight rows' Grams (class docstring),
        formed for a chunk of estimators at a time so that the [·, K, K] temporaries stay bounded."""
        s, h = torch.from_numpy(self.sums), torch.from_numpy(self.entropy_sums)  # torch: BLAS
        k, e0 = s.shape[1], len(self.base)
        ref = self.base.index(reference_of(self.n_episodes))
        r_ref = int(self.rows[ref])  # the reference is a weight row of its own (never `optimal`)
        t = lambda g: np.swapaxes(g, -1, -2)
        # the Grams every chunk needs, [K, K]: the ones row and the reference row with themselves, each other and H
        fixed = torch.stack([s[-1], s[r_ref], h])
        g = (fixed.reshape(3 * k, -1) @ fixed.reshape(3 * k, -1).T).reshape(3, k, 3, k).numpy()
        ones_self, ones_ref, ones_h, ref_self, ref_h, hh_sum = (g[i, :, j] for i, j in
                                                                ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)))
        agg_of = self.aggregation_index
        inv = 1.0 / self.divisors[agg_of]  # [E₀, K]: A_k of each estimator, which is also its entropy term's
        inv_ref = inv[ref]
        hb_all = self.entropy_bounds[agg_of]  # [E₀, K]
        uu = np.outer(inv_ref, inv_ref) * ref_self
        diag = lambda g: np.sqrt(np.maximum(np.diagonal(g, axis1=-2, axis2=-1), 0.0))
        out: dict[str, np.ndarray] = {}
        step = max(1, CHUNK_FLOATS // (8 * k * k))  # estimators per chunk
        for lo in range(0, e0, step):
            hi = min(lo + step, e0)
            rows, a = np.unique(self.rows[lo:hi], return_inverse=True)  # the chunk's weight rows, each once
            m = self.minus[lo:hi, :, None]  # [c, K, 1]: b_k of the row k
            sa = s[torch.from_numpy(rows)]
            flat = sa.reshape(-1, sa.shape[2]) @ fixed.reshape(-1, fixed.shape[2]).T  # one GEMM: [rows·K, 3K]
            cross = flat.reshape(len(rows), k, 3, k).numpy()[a]
            a_ones, a_ref, a_h = cross[:, :, 0], cross[:, :, 1], cross[:, :, 2]
            a_self = torch.bmm(sa, sa.transpose(1, 2)).numpy()[a]
            # the chunk's Grams before their divisors: d₀ = s_a − b ⊙ s_ones
            dd0 = a_self - t(m) * a_ones - m * t(a_ones) + m * t(m) * ones_self
            du0 = a_ref - m * ones_ref
            dh0 = a_h - m * ones_h
            ia, hb = inv[lo:hi], hb_all[lo:hi]
            dd = ia[:, :, None] * ia[:, None, :] * dd0
            du = ia[:, :, None] * inv_ref[None, None, :] * du0
            dh = ia[:, :, None] * ia[:, None, :] * dh0
            uh = inv_ref[None, :, None] * ia[:, None, :] * ref_h  # [c, K, K]
            hh = ia[:, :, None] * ia[:, None, :] * hh_sum
            c = np.asarray(self.scales[lo:hi])[:, None, None]
            for bi, b in enumerate(self.betas):
                g_dd = dd + b * (dh + t(dh)) + b * b * hh
                g_du = c * du + b * dh + c * b * t(uh) + b * b * hh
                g_uu = c * c * uu + c * b * (uh + t(uh)) + b * b * hh
                zero_d = diag(g_dd) <= ZERO_TOL * (self.bounds[lo:hi] + b * hb)
                zero_u = diag(g_uu) <= ZERO_TOL * (c[:, :, 0] * self.bounds[ref] + b * hb)
                for name, v in gram_statistics(g_dd, g_du, g_uu, zero_d, zero_u).items():
                    if name not in out:
                        out[name] = np.zeros(len(self.betas) * e0, dtype=v.dtype)
                    out[name][bi * e0 + lo:bi * e0 + hi] = v
        return out


@dataclass
class _Weights:
    """Step 1 of `pool_directions`: every estimator's per-step weights on the pool's valid rows (β = 0, episode form:
    the aggregation only divides a batch's sum), the basis their rows are combinations of, and the return signals."""

    weighted: list[Estimator]  # the estimators with weights of their own (all but `optimal`), episode form, β = 0
    ones: Estimator  # the row of ones: Σ_t ψ, the score direction the optimal baseline subtracts
    rows: dict[Estimator, Tensor]  # per estimator of `weighted` (and `ones`): its weights on the valid rows [S]
    stacked: Tensor  # [E_w, S] float64: the rows of `weighted`, then `ones`
    basis: Tensor  # [B, S] float64: every row of `stacked` is, batch by batch, a combination of these
    signal: dict[str | tuple[str, float], Tensor]  # per `signal_key`: the return signal on the [K, N, T] grid
    own_kind: tuple[str, bool] | None  # the (returns, standardized) target the run's own critic is fitted to


def signal_key(e: Estimator) -> str | tuple[str, float]:
    """The return signal an estimator's weights are made of: its returns kind, or (kind, λ) for a GAE estimator (its
    un-normalized advantage signal)."""
    return (e.returns, e.gae_lambda) if e.returns in GAE_RETURNS else e.returns


def critic_kind(returns: str, normalize: str) -> tuple[str, bool]:
    """The (returns, standardized) target a value baseline of these levels is fitted to: the GAE levels' is the
    reward-to-go G_t (`estimators.weights`)."""
    return ("rtg" if returns in GAE_RETURNS else returns, normalize == "returns")


def _estimator_weights(cfg: RunConfig, activation: str, val: Sequence[Tensor], rows_obs: Tensor, rewards: Tensor,
                       mask: Tensor, rtg: Tensor, first_half: Tensor, gen: np.random.Generator,
                       lambdas: Sequence[float]) -> _Weights:
    """Weights of every estimator from the function the trainer uses, on the K batches as K "runs" of N episodes
    (rewards, mask, rtg: [K, N, T]); critics' values from the run's own critic where it fits, else cross-fitted
    (`gen`)."""
    shape = tuple(mask.shape)
    weighted = [e for e in estimator_grid([0.0], shape[1], lambdas)
                if e.baseline != OPTIMAL and e.aggregate == "episode"]
    values: dict[tuple[str, bool], Tensor] = {}
    own_kind = critic_kind(cfg.returns, cfg.normalize) if cfg.baseline == "value" else None
    if own_kind is not None:
        with torch.no_grad():
            values[own_kind] = forward_single(list(val), rows_obs, activation)[:, 0]
    # the other signals from the reward-to-go (as the trainer does)
    signal: dict[str | tuple[str, float], Tensor] = {
        kind: est.signal_from_rtg(rtg, mask, cfg.gamma, kind) for kind in MC_RETURNS}
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
    gae_signals, advantages = [], {}
    for e in weighted:
        if e.baseline == "value":
            v = torch.zeros(shape).masked_scatter(mask, values[critic_kind(e.returns, e.normalize)])
            if e.returns in GAE_RETURNS:  # the trainer's `estimators.weights`, A^λ computed once per λ
                if e.gae_lambda not in advantages:
                    advantages[e.gae_lambda] = est.gae_advantages(rewards, v, mask, cfg.gamma, e.gae_lambda)
                w = est.gae_weights(advantages[e.gae_lambda], mask, cfg.gamma, e.returns, e.normalize)
                if e.normalize == "none":  # the advantage signal itself
                    signal[signal_key(e)] = w
                    gae_signals.append(w[mask])
            else:
                w = est.weights_from_signal(signal[e.returns], mask, e.baseline, e.normalize, v)[0]
            w_rows[e] = w[mask]
    ones = Estimator("", "ones", "", 0.0)
    w_rows[ones] = torch.ones(rows_obs.shape[0])
    weights = torch.stack([w_rows[e] for e in (*weighted, ones)]).double()  # [E_w, S]
    # every weight row is (exactly, by construction) a combination of these, batch by batch: the return signals, their
    # per-step batch means (mean/loo baselines), the mask and its per-step batch mean (standardization shifts), values,
    # the GAE advantage signals (their standardized rows: a signal and the mask)
    fm = mask.to(rtg.dtype)
    mc = [signal[kind] for kind in MC_RETURNS]
    basis = torch.stack([v for x in (*mc, fm) for v in (x[mask], est.mean_baseline(x, mask)[mask])]
                        + [values[kind] for kind in sorted(values)] + gae_signals).double()
    return _Weights(weighted, ones, w_rows, weights, basis, signal, own_kind)


@dataclass
class _BatchSums:
    """Step 2 of `pool_directions`: per weight row and batch, Σ_{i∈k} Σ_t w ψ and its rounding scale; per episode,
    Σ_t ψ and Σ_t x ψ (the optimal baseline's ingredients); per batch, Σ_{i∈k} Σ_t ∇θ H and its scale."""

    d_sum: Tensor  # [E_w, K, P] float64
    bound_sum: Tensor  # [E_w, K]: Σ_s (|w_s| + |x_s|) ‖ψ_s‖ per batch
    s_ep: Tensor  # [K·N, P]: Σ_t ψ per episode
    a_ep: dict[str, Tensor]  # per returns kind but full: [K·N, P], Σ_t x ψ per episode
    h_sum: Tensor  # [K, P]
    h_bound: Tensor  # [K]


def _batch_sums(head: Head, activation: str, pol: Sequence[Tensor], rows_obs: Tensor, rows_act: Tensor,
                mask: Tensor, mask_pool: Tensor, bounds: list[int], wt: _Weights, entropy: bool) -> _BatchSums:
    """The scores of the whole pool in factored form; per batch (rows bounds[k]:bounds[k+1]), one contraction with
    every weight row. mask: [K, N, T]; mask_pool: the same as [K·N, T]."""
    k_batches, n = mask.shape[0], mask.shape[1]
    sc, sc_h = layer_scores(head, activation, pol, rows_obs, rows_act, entropy=entropy)
    spans = list(zip(bounds[:-1], bounds[1:]))
    d_sum = torch.stack([sc.rows(lo, hi).contract_in_span(wt.stacked[:, lo:hi], wt.basis[:, lo:hi])
                         for lo, hi in spans], dim=1)  # [E_w, K, P]: Σ_{i∈k} Σ_t w ψ
    per_batch = lambda x: torch.stack([x[..., lo:hi].sum(dim=-1) for lo, hi in spans], -1)
    x_rows = torch.stack([wt.signal[signal_key(e)][mask] for e in wt.weighted]
                         + [torch.zeros(rows_obs.shape[0])]).double()
    bound_sum = per_batch((wt.stacked.abs() + x_rows.abs()) * sc.row_norms().double())  # [E_w, K]
    ep_weights = [None, *(wt.signal[kind][mask].float() for kind in MC_RETURNS if kind != "full")]
    s_ep, *a_eps = (x.double() for x in sc.episode_sums(mask_pool, ep_weights))  # [K·N, P]
    a_ep = dict(zip([kind for kind in MC_RETURNS if kind != "full"], a_eps))
    if sc_h is not None:  # Σ_{i∈k} Σ_t ∇θ H_{i,t} per batch
        h_sum = sc_h.episode_sums(mask_pool, [None])[0].double().reshape(k_batches, n, -1).sum(dim=1)
        h_bound = per_batch(sc_h.row_norms().double())
    else:
        h_sum = torch.zeros(k_batches, sc.num_params, dtype=torch.float64)
        h_bound = torch.zeros(k_batches, dtype=torch.float64)
    return _BatchSums(d_sum, bound_sum, s_ep, a_ep, h_sum, h_bound)


def _optimal_baselines(rtg: Tensor, sums: _BatchSums, half: int) -> dict[str, Tensor]:
    """b* per returns kind, [K, 1]: for each batch, the constant fitted on the other half of the pool (module
    docstring); rtg: [K, N, T]."""
    k_batches, n = rtg.shape[0], rtg.shape[1]
    g0 = rtg[..., 0].reshape(-1).double()  # G₀ per episode [K·N]
    s_sq = (sums.s_ep * sums.s_ep).sum(dim=1)
    in_first = torch.arange(k_batches * n) < half
    b_star: dict[str, Tensor] = {}
    for ret in MC_RETURNS:
        sa = s_sq * g0 if ret == "full" else (sums.s_ep * sums.a_ep[ret]).sum(dim=1)
        b = torch.zeros(k_batches, 1, dtype=torch.float64)
        for fit in (in_first, ~in_first):
            den = s_sq[fit].sum()
            apply = ~fit.reshape(k_batches, n)[:, 0]
            b[apply] = float(sa[fit].sum() / den) if den > 0 else 0.0
        b_star[ret] = b
    return b_star


def _inverse_std(x: Tensor) -> float:
    """1/(σ + EPS) as `estimators.standardize` divides, σ the sample std of x; 0 when x is constant (standardizing
    a constant gives 0, so the normalized estimator's limit is the zero direction)."""
    sd = float(x.double().std()) if x.numel() > 1 else 0.0
    return 1.0 / (sd + est.EPS) if sd > 0 else 0.0


def _reference_scale(e: Estimator, wt: _Weights, step_scale: float) -> float:
    """The reference scale c of estimator e (module docstring); step_scale = N / L̄."""
    if e.normalize == "returns":
        c = _inverse_std(wt.rows[Estimator(e.returns, "none", "none", 0.0)])
    elif e.normalize == "advantages":
        c = _inverse_std(wt.rows[Estimator(e.returns, e.baseline, "none", 0.0, gae_lambda=e.gae_lambda)])
    else:
        c = 1.0
    return c * step_scale if e.aggregate == "step" else c


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
    rtg = est.reward_to_go(rewards, mask, cfg.gamma) if rtg is None else rtg.reshape(shape)
    lambdas = probe_lambdas(cfg)
    # 1. weights of every estimator; 2. per batch, their contractions with the scores; 3. the optimal baselines
    wt = _estimator_weights(cfg, activation, val, rows_obs, rewards, mask, rtg, first_half, gen, lambdas)
    sums = _batch_sums(head, activation, pol, rows_obs, rows_act, mask, pool.mask[0], bounds, wt,
                       entropy=cfg.entropy_coef > 0)
    b_star = _optimal_baselines(rtg, sums, half)

    # 4. every estimator at β = 0, under each aggregation, in factored form (`PoolDirections`); the rows at the run's
    # own β add β·A_k Σ ∇θ H
    index = {e: j for j, e in enumerate((*wt.weighted, wt.ones))}
    lengths = torch.tensor([bounds[k + 1] - bounds[k] for k in range(k_batches)], dtype=torch.float64)
    divisor = {agg: est.aggregation_divisor(agg, torch.full_like(lengths, float(n)), lengths)
               for agg in AXES["aggregate"]}  # [K]: 1/A_k of each aggregation
    base = estimator_grid([0.0], n, lambdas)
    rows, minus, scales, critics, bnds = [], [], [], [], []
    step_scale = n * k_batches / max(bounds[-1], 1)  # N / L̄: the step form's large-N limit is ∇J·N/E[L]
    zero = torch.zeros(k_batches, dtype=torch.float64)
    for e in base:
        w_e = Estimator(e.returns, e.baseline, e.normalize, 0.0, gae_lambda=e.gae_lambda)  # the episode form's
        if e.baseline == OPTIMAL:
            plain = index[Estimator(e.returns, "none", "none", 0.0)]
            rows.append(plain)
            minus.append(b_star[e.returns][:, 0])
            bnds.append(sums.bound_sum[plain] + b_star[e.returns][:, 0].abs() * sums.bound_sum[index[wt.ones]])
        else:
            rows.append(index[w_e])
            minus.append(zero)
            bnds.append(sums.bound_sum[index[w_e]])
        bnds[-1] = bnds[-1] / divisor[e.aggregate]
        scales.append(_reference_scale(e, wt, step_scale))
        if e.baseline == "value":
            critics.append("run" if critic_kind(e.returns, e.normalize) == wt.own_kind else "crossfit")
        else:
            critics.append("crossfit" if e.baseline == OPTIMAL else "")
    betas = [0.0] if cfg.entropy_coef == 0 else [0.0, cfg.entropy_coef]
    divisors = torch.stack([divisor[agg] for agg in AXES["aggregate"]])
    h_bounds = torch.stack([sums.h_bound / divisor[agg] for agg in AXES["aggregate"]])
    return PoolDirections(base, lambdas, sums.d_sum.numpy(), np.asarray(rows), torch.stack(minus).numpy(),
                          sums.h_sum.numpy(), divisors.numpy(), betas, scales, critics, n, int(bounds[-1]),
                          torch.stack(bnds).numpy(), h_bounds.numpy())
