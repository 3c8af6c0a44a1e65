"""The probe statistics: pure functions of an estimator's K batch directions d_k and its reference's u_k (or of their
Gram matrices), `STATISTICS` in order.

total_var = tr Cov(d) (unbiased, K−1); mean_sq_norm = ‖d̄‖² − total_var/K (unbiased for ‖E d‖²); snr =
mean_sq_norm / total_var; pairwise_cos = mean over batch pairs k≠l of cos(d_k, d_l); cos_to_reference = mean over k
of cos(d_k, ū_{−k}), ū_{−k} the reference averaged over the *other* K−1 batches (leave-one-batch-out: independent of
batch k, so the cosine is not inflated by shared episodes; the reference's own noise deflates it);
bias_sq_norm = ‖mean(d − u)‖² − tr Cov(d − u)/K, the unbiased paired estimate of ‖E d − E u‖²; rel_bias =
√max(bias_sq_norm, 0) / ‖ū‖ (ū the reference averaged over all K batches: ‖bias‖ relative to ‖∇J_γ‖, plug-in, so
slightly low when the reference is noisy; 0 when both are 0, inf when only ‖ū‖ is).

Zero directions: a direction flagged as zero up to rounding (`directions.ZERO_TOL`) is taken as the zero vector,
counted per row (`zero_batches`, `reference_zero_batches`), and a cosine with a zero vector is 0 (it is aligned with
nothing). No statistic is ever NaN: snr is 0 when total_var and mean_sq_norm are both ≤ 0 and inf when only
total_var is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

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
    diag = lambda g: np.diagonal(g, axis1=-2, axis2=-1)
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
