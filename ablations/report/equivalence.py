"""Equivalence: the margin a study states, two one-sided tests (TOST) against it, and the one rule that classes an
effect as helps / hurts / equivalent / undecided.

Owns:

- the equivalence margin: `[report] margin` in a study file is either a number in the metric's units or a multiple of
  the pooled within-config SD written as a string such as "0.25sd"; `parse_margin` reads it (defined in
  `ablations.study.margin`, so the study file's validation uses the same rule; re-exported here), `Margin.resolve`
  turns it into metric units, `pooled_sd` is the pooled within-config
  SD √(Σ_c (n_c − 1) s_c² / Σ_c (n_c − 1)); the default is `DEFAULT_MARGIN_SD` = 0.25 SDs (justified in
  `MARGIN_METHODS`, the paragraph for Methods);
- TOST: an effect θ is equivalent to 0 within ±m when both one-sided t-tests reject, H₀⁻: θ ≤ −m (t⁻ = (θ̂ + m)/se,
  p⁻ = P(T_ν ≥ t⁻)) and H₀⁺: θ ≥ m (t⁺ = (θ̂ − m)/se, p⁺ = P(T_ν ≤ t⁺)); p_tost = max(p⁻, p⁺), and p_tost < α ⇔ the
  (1 − 2α) t-interval lies inside (−m, m). `tost_paired` works on per-seed differences (scipy's one-sided
  `ttest_1samp` against ±m); `tost` on (estimate, se, df) columns, vectorized, for the contrast tables of `effects`;
- `classify`: helps / hurts when the difference test is significant after Holm (p_holm < α; the t-interval then
  excludes 0), else equivalent when the TOST is significant after Holm over the same family, else undecided (said
  with its minimum detectable difference). A significant difference wins over equivalence: an effect that is
  significant and smaller than the margin is still called helps / hurts (`within_margin` tells the reader).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as sps

from ablations.report.rules import ALPHA
from ablations.study.margin import DEFAULT_MARGIN, DEFAULT_MARGIN_SD, Margin, parse_margin  # noqa: F401  (re-exported)

#: The classes an effect can take (in this order in summaries).
CLASSES = ("helps", "hurts", "equivalent", "undecided")
#: Methods paragraph: why "no effect" needs TOST and why the default margin is 0.25 within-config SDs.
MARGIN_METHODS = (
    "A non-significant difference is not evidence of no effect, so \"no effect\", \"no practical effect\", \"holds\" "
    "and \"consistent\" are said only after an equivalence test: two one-sided t-tests (TOST) at α = 0.05 each, "
    "equivalent to the 90% t-interval of the effect lying inside ±margin, with Holm's correction over the same family "
    "as the difference tests. The margin is the study's `[report] margin` (in the metric's units, or in pooled "
    "within-config SDs, e.g. \"0.25sd\"); by default it is 0.25 pooled within-config SDs of the metric, the SD of a "
    "config's score from seed to seed pooled over configs. A quarter of that SD is a change smaller than what "
    "re-seeding one config moves its score by, and a little above Cohen's conventional \"small\" (d = 0.2), so an "
    "effect called equivalent is one no practical comparison of a few seeds could rank; a smaller margin would "
    "leave almost every effect undecided at 5–10 seeds, a larger one would call real differences negligible. An "
    "effect that is neither significant nor equivalent is undecided, reported with its minimum detectable "
    "difference at 80% power (MDD): the size of effect these seeds could have detected.")

def pooled_sd(n: np.ndarray, std: np.ndarray) -> float:
    """Pooled within-config SD √(Σ (n_c − 1) s_c² / Σ (n_c − 1)) from per-config counts and SDs (ddof = 1), as the
    report's `summary` table gives them; configs with n < 2 or a NaN SD are left out; NaN if none remains."""
    n, std = np.asarray(n, float), np.asarray(std, float)
    ok = (n > 1) & np.isfinite(std)
    dof = (n[ok] - 1).sum()
    return float(np.sqrt(((n[ok] - 1) * std[ok] ** 2).sum() / dof)) if dof > 0 else float("nan")


# ---------------------------------------------------------------------------------------------------- TOST
def tost(estimate: Any, se: Any, df: Any, margin: Any, alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """TOST of θ = 0 within ±margin from (estimate, se, df) arrays (broadcast). Returns arrays p_lower (H₀: θ ≤ −m),
    p_upper (H₀: θ ≥ m), p_tost = max of the two, ci90_low / ci90_high (the (1 − 2α) t-interval).

    se = 0 (constant data): p_tost = 0 when |estimate| < margin, else 1. NaN margin, se, or df ≤ 0: NaN."""
    est, se, df, m = np.broadcast_arrays(*(np.asarray(x, float) for x in (estimate, se, df, margin)))
    ok = np.isfinite(est) & np.isfinite(se) & (se > 0) & np.isfinite(df) & (df > 0) & np.isfinite(m)
    dd = np.where(ok, df, 1.0)
    ss = np.where(ok, se, 1.0)
    with np.errstate(invalid="ignore"):
        p_lo = np.where(ok, sps.t.sf((est + m) / ss, dd), np.nan)
        p_hi = np.where(ok, sps.t.cdf((est - m) / ss, dd), np.nan)
        q = sps.t.ppf(1 - alpha, dd)
    const = np.isfinite(est) & (se == 0) & np.isfinite(m)
    inside = np.abs(est) < m
    p_lo = np.where(const, np.where(inside, 0.0, 1.0), p_lo)
    p_hi = np.where(const, np.where(inside, 0.0, 1.0), p_hi)
    good = ok | (np.isfinite(est) & (se == 0) & np.isfinite(df) & (df > 0))
    low = np.where(good, est - np.where(ok, q, 0.0) * np.where(ok, se, 0.0), np.nan)
    high = np.where(good, est + np.where(ok, q, 0.0) * np.where(ok, se, 0.0), np.nan)
    return dict(p_lower=p_lo, p_upper=p_hi, p_tost=np.maximum(p_lo, p_hi), ci90_low=low, ci90_high=high)


def tost_paired(d: np.ndarray, margin: float, alpha: float = ALPHA) -> dict[str, float]:
    """TOST on per-seed differences `d` within ±margin: scipy's one-sided `ttest_1samp(d, −m, alternative="greater")`
    and `ttest_1samp(d, m, alternative="less")`. Returns floats p_lower, p_upper, p_tost, ci90_low, ci90_high
    (NaN with fewer than 2 differences or a NaN margin; constant differences as in `tost`)."""
    d = np.asarray(d, float)
    d = d[np.isfinite(d)]
    nan = dict(p_lower=np.nan, p_upper=np.nan, p_tost=np.nan, ci90_low=np.nan, ci90_high=np.nan)
    if len(d) < 2 or not np.isfinite(margin):
        return nan
    if np.ptp(d) == 0:
        out = tost(d[0], 0.0, len(d) - 1, margin, alpha)
        return {k: float(v) for k, v in out.items()}
    lo = sps.ttest_1samp(d, -margin, alternative="greater")
    hi = sps.ttest_1samp(d, margin, alternative="less")
    ci = sps.ttest_1samp(d, 0.0).confidence_interval(1 - 2 * alpha)
    return dict(p_lower=float(lo.pvalue), p_upper=float(hi.pvalue), p_tost=float(max(lo.pvalue, hi.pvalue)),
                ci90_low=float(ci.low), ci90_high=float(ci.high))


# ---------------------------------------------------------------------------------------------------- classes
def classify(estimate: Any, ci_low: Any, ci_high: Any, p_holm: Any, p_tost_holm: Any, alpha: float = ALPHA,
             higher_is_better: bool = True) -> np.ndarray:
    """The class of each effect (arrays, broadcast): "helps" / "hurts" when p_holm < α and the CI excludes 0 (the
    sign, read with `higher_is_better`, says which), else "equivalent" when p_tost_holm < α, else "undecided"."""
    est, lo, hi, p, pt = np.broadcast_arrays(*(np.asarray(x, float) for x in (estimate, ci_low, ci_high, p_holm,
                                                                             p_tost_holm)))
    with np.errstate(invalid="ignore"):
        sig = (p < alpha) & ((lo > 0) | (hi < 0))
        good = (est > 0) if higher_is_better else (est < 0)
        equiv = pt < alpha
    return np.select([sig & good, sig & ~good, equiv], ["helps", "hurts", "equivalent"], "undecided").astype(object)
