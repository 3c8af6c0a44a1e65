"""Comparisons between configs on one metric, paired by seed (common random numbers): the mean difference with its
t-interval, the paired t and Wilcoxon tests (Welch and Mann–Whitney without shared seeds), Holm correction, Hedges'
g, probability of improvement, the minimum detectable difference at the family-wise α; and aliased configs
(bit-identical per-seed scores).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from ablations.report.power import paired_mdd
from ablations.report.rules import ALPHA, POWER


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and are not counted in the family."""
    p = np.asarray(pvalues, float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if not m:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """(mean(a) − mean(b)) / pooled SD, times the exact small-sample correction J(df) = Γ(df/2)/(√(df/2)
    Γ((df−1)/2))."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    df = na + nb - 2
    if df < 2:
        return np.nan
    pooled = np.sqrt(((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / df)
    if pooled == 0:
        return np.nan
    return float((a.mean() - b.mean()) / pooled * small_sample_factor(df))


def small_sample_factor(df: float) -> float:
    from scipy.special import gammaln
    return float(np.exp(gammaln(df / 2) - gammaln((df - 1) / 2)) / np.sqrt(df / 2))


def prob_improvement(a: np.ndarray, b: np.ndarray) -> float:
    """P(X > Y) + 0.5·P(X = Y) for X drawn from `a` and Y from `b`, over all pairs."""
    a, b = np.asarray(a, float)[:, None], np.asarray(b, float)[None, :]
    if not a.size or not b.size:
        return np.nan
    return float(np.mean((a > b) + 0.5 * (a == b)))


def _paired(df: pd.DataFrame, cfg: str, ref: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, d): all values of `cfg` and `ref`, and the per-seed differences over the seeds both have."""
    a = df.loc[df["config"] == cfg].dropna(subset=["value"])
    b = df.loc[df["config"] == ref].dropna(subset=["value"])
    if "seed" in df.columns:
        m = a[["seed", "value"]].merge(b[["seed", "value"]], on="seed", suffixes=("_a", "_b"))
        d = (m["value_a"] - m["value_b"]).to_numpy(float)
    else:
        d = np.empty(0)
    return a["value"].to_numpy(float), b["value"].to_numpy(float), d


def paired_test(d: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Mean of per-seed differences `d` with its t-interval, the paired t-test and the Wilcoxon signed-rank test
    (scipy; two-sided), and the SD of the differences. No test when the differences are constant (e.g. aliases)."""
    out = dict(diff=float(d.mean()) if len(d) else np.nan, ci_low=np.nan, ci_high=np.nan, p=np.nan,
               p_wilcoxon=np.nan, sd_diff=float(np.std(d, ddof=1)) if len(d) > 1 else np.nan, test="none")
    if len(d) >= 2 and np.ptp(d) > 0:
        res = sps.ttest_1samp(d, 0.0)
        ci = res.confidence_interval(level)
        out.update(ci_low=float(ci.low), ci_high=float(ci.high), p=float(res.pvalue), test="paired t")
        if np.any(d != 0):
            out["p_wilcoxon"] = float(sps.wilcoxon(d).pvalue)
    elif len(d) >= 1:
        out.update(ci_low=out["diff"], ci_high=out["diff"], test="constant" if len(d) >= 2 else "none")
    return out


def welch_test(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Unpaired fallback (no shared seeds): Welch's t-test and its own interval, and Mann–Whitney U (scipy)."""
    out = dict(diff=float(a.mean() - b.mean()) if len(a) and len(b) else np.nan, ci_low=np.nan, ci_high=np.nan,
               p=np.nan, p_wilcoxon=np.nan, sd_diff=np.nan, test="none")
    if len(a) >= 2 and len(b) >= 2 and (np.ptp(a) > 0 or np.ptp(b) > 0):
        res = sps.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(level)
        out.update(ci_low=float(ci.low), ci_high=float(ci.high), p=float(res.pvalue), test="Welch",
                   p_wilcoxon=float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue),
                   sd_diff=float(np.sqrt(np.var(a, ddof=1) + np.var(b, ddof=1))))
    return out


COMPARISON_COLUMNS = ["metric", "config", "reference", "n", "n_ref", "n_pairs", "mean", "mean_ref", "diff", "ci_low",
                      "ci_high", "ci_level", "ci_method", "p", "p_holm", "p_rank", "p_rank_holm", "sd_diff", "mdd",
                      "hedges_g", "prob_improvement"]


def compare(df: pd.DataFrame, pairs: Iterable[tuple[str, str]], *, metric: str, seed: int = 0,
            n_resamples: int = 10_000, level: float = 0.95, alpha: float = ALPHA, power: float = POWER) -> pd.DataFrame:
    """Compare `config` against `reference` for each pair on one metric (long `df`: config, seed, value).

    Paired by seed (common random numbers) over the seeds both configs have: the mean difference, its t-interval
    and the paired t-test (`p`) come from one model, so p < α ⇔ the CI excludes 0; `p_rank` is the Wilcoxon
    signed-rank test. Configs with no shared seed fall back to Welch (`ci_method` says which). One Holm family per
    call (`p_holm`, `p_rank_holm`); `mdd` is the minimum detectable difference at the family-wise α (α/m, the first
    Holm step) with this comparison's own SD of differences. `seed` and `n_resamples` are unused (no resampling).
    """
    rows = []
    for cfg, ref in pairs:
        a, b, d = _paired(df, cfg, ref)
        res = paired_test(d, level) if len(d) >= 2 else welch_test(a, b, level)
        rows.append(dict(metric=metric, config=cfg, reference=ref, n=len(a), n_ref=len(b), n_pairs=len(d),
                         mean=a.mean() if len(a) else np.nan, mean_ref=b.mean() if len(b) else np.nan,
                         diff=res["diff"], ci_low=res["ci_low"], ci_high=res["ci_high"], ci_level=level,
                         ci_method=res["test"], p=res["p"], p_rank=res["p_wilcoxon"], sd_diff=res["sd_diff"],
                         hedges_g=hedges_g(a, b), prob_improvement=prob_improvement(a, b)))
    cols = [c for c in COMPARISON_COLUMNS if c not in ("p_holm", "p_rank_holm", "mdd")]
    out = pd.DataFrame(rows, columns=cols)
    out["p_holm"] = holm(out["p"].to_numpy(float))
    out["p_rank_holm"] = holm(out["p_rank"].to_numpy(float))
    m = max(int(np.isfinite(out["p"].to_numpy(float)).sum()), 1)
    out["mdd"] = [paired_mdd(sd, n, alpha / m, power) for sd, n in zip(out["sd_diff"], out["n_pairs"])]
    return out[COMPARISON_COLUMNS]


def comparison_pairs(configs: Sequence[str], reference: str, all_pairs: bool = False) -> list[tuple[str, str]]:
    """Every config vs the reference; with `all_pairs`, every unordered pair (later config vs earlier)."""
    if all_pairs:
        return [(configs[j], configs[i]) for i in range(len(configs)) for j in range(i + 1, len(configs))]
    return [(c, reference) for c in configs if c != reference]


def aliases(scores: pd.DataFrame, metrics: Sequence[str], configs: Sequence[str]) -> pd.DataFrame:
    """Configs whose per-seed scores are identical on every metric and every seed (bit-identical runs under
    common random numbers, e.g. normalization with no baseline before or after it). Columns: config, alias_of (the
    first config of its group in `configs` order), group (all members joined by " ≡ "), n_members."""
    cols = [m for m in metrics if m in scores.columns]
    sig: dict[str, tuple] = {}
    for cfg, g in scores.groupby("config", sort=False):
        g = g.sort_values("seed", kind="stable")
        sig[cfg] = (tuple(g["seed"]),) + tuple(tuple(np.round(g[m].to_numpy(float), 12)) for m in cols)
    first: dict[tuple, list[str]] = {}
    for cfg in configs:
        if cfg in sig:
            first.setdefault(sig[cfg], []).append(cfg)
    rows = []
    for members in first.values():
        for cfg in members:
            rows.append(dict(config=cfg, alias_of=members[0], group=" ≡ ".join(members), n_members=len(members)))
    return pd.DataFrame(rows, columns=["config", "alias_of", "group", "n_members"])
