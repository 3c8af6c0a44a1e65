"""Steps to threshold as a right-censored outcome: Kaplan–Meier curves and medians, the restricted mean time to
threshold with a bootstrap CI over seeds, and the log-rank test against the reference (Holm over configs).
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from ablations.report.bootstrap import derive_rng, one_sample_expansion, percentile_ci, resampled_means
from ablations.report.families import holm_aliases


def km_table(scores: pd.DataFrame, configs: Sequence[str], reference: str | None, budget: float, *,
             seed: int = 0, n_resamples: int = 10_000, level: float = 0.95,
             alias_of: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Steps to threshold as a right-censored outcome, per config (`scores`: config, seed, steps_to_threshold,
    reached).

    Kaplan–Meier (`scipy.stats.ecdf` on `CensoredData`): median steps (NaN when the survival curve stays above ½);
    restricted mean time to threshold up to the budget, RMST = ∫₀^budget S(t) dt, with a bootstrap CI over seeds;
    log-rank test against the reference (`scipy.stats.logrank`), Holm over configs with aliases (`alias_of`: config →
    its representative, `comparisons.aliases`) counted once (`families.holm_aliases`). No test when neither config
    has an event (every run censored) or when the config is the reference.
    """
    rows = []
    groups = {c: g for c, g in scores.groupby("config", sort=False)}
    ref = groups.get(reference) if reference is not None else None
    for cfg in configs:
        g = groups.get(cfg)
        if g is None:
            continue
        t = g["steps_to_threshold"].to_numpy(float)
        ev = g["reached"].to_numpy(bool)
        ok = np.isfinite(t)
        t, ev = t[ok], ev[ok]
        rmst_v, med = rmst(t, ev, budget), km_median(t, ev)
        x = np.minimum(t, budget)  # censoring happens only at the budget, so RMST = mean of min(T, budget)
        if len(x) >= 2 and np.ptp(x) > 0:
            boot = resampled_means(x[:, None], derive_rng(seed, "rmst", cfg), n_resamples)
            r, df = one_sample_expansion(len(x))
            lo, hi = percentile_ci(boot, level, (np.array([r]), np.array([df])))
            lo, hi = float(lo[0]), float(hi[0])
        else:
            lo = hi = rmst_v
        p = np.nan
        if ref is not None and cfg != reference:
            tr = ref["steps_to_threshold"].to_numpy(float)
            er = ref["reached"].to_numpy(bool)
            if ev.any() or er.any():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    p = float(sps.logrank(_censored(t, ev), _censored(tr, er)).pvalue)
        rows.append(dict(config=cfg, n=len(t), n_reached=int(ev.sum()), frac_reached=ev.mean() if len(t) else np.nan,
                         km_median=med, rmst=rmst_v, ci_low=lo, ci_high=hi, ci_level=level,
                         ci_method="percentile-expanded", p_logrank=p))
    out = pd.DataFrame(rows, columns=["config", "n", "n_reached", "frac_reached", "km_median", "rmst", "ci_low",
                                      "ci_high", "ci_level", "ci_method", "p_logrank"])
    out["p_logrank_holm"] = holm_aliases(out["p_logrank"].to_numpy(float), out["config"].tolist(), alias_of or {})
    return out


def _censored(t: np.ndarray, event: np.ndarray) -> "sps.CensoredData":
    return sps.CensoredData(uncensored=t[event], right=t[~event])


def km_curve(t: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times, survival) of the Kaplan–Meier estimate, starting at (0, 1); survival = fraction not yet at threshold."""
    if not event.any():
        return np.array([0.0]), np.array([1.0])
    res = sps.ecdf(_censored(t, event))
    return np.concatenate([[0.0], res.sf.quantiles]), np.concatenate([[1.0], res.sf.probabilities])


def km_median(t: np.ndarray, event: np.ndarray) -> float:
    """The Kaplan–Meier median: the first time survival drops to ½ or below; NaN if it never does."""
    x, s = km_curve(t, event)
    below = np.flatnonzero(s <= 0.5)
    return float(x[below[0]]) if below.size else np.nan


def rmst(t: np.ndarray, event: np.ndarray, budget: float) -> float:
    """Restricted mean time to threshold: the area under the Kaplan–Meier survival curve from 0 to `budget`."""
    if not len(t):
        return np.nan
    x, s = km_curve(t, event)
    keep = x < budget
    x, s = x[keep], s[keep]
    return float(np.sum(s * np.diff(np.append(x, budget))))


def km_curves(scores: pd.DataFrame, factors: Sequence[str]) -> pd.DataFrame:
    """Kaplan–Meier curves per factor level (runs pooled over the other factors): factor, level, env_steps,
    survival, n, n_reached. Empty when no run reached the threshold."""
    frames = []
    if not scores["reached"].any():
        return pd.DataFrame(columns=["factor", "level", "env_steps", "survival", "n", "n_reached"])
    for f in factors or ["config"]:
        for lv, g in scores.groupby(f, sort=False):
            t = g["steps_to_threshold"].to_numpy(float)
            ev = g["reached"].to_numpy(bool)
            ok = np.isfinite(t)
            x, s = km_curve(t[ok], ev[ok])
            frames.append(pd.DataFrame({"factor": f, "level": str(lv), "env_steps": x, "survival": s,
                                        "n": int(ok.sum()), "n_reached": int(ev[ok].sum())}))
    return pd.concat(frames, ignore_index=True)
