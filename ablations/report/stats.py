"""Per-run scores and per-config statistics: small pure functions over arrays, and DataFrames in long format.

Owns: the env-step grid and the per-run scores (final return, area under the curve, steps to a threshold), the summary
of a metric per group (n, mean, IQM, median, std, bootstrap CI of the mean), comparisons between configs (paired by
seed: mean difference with its t-interval, the paired t and Wilcoxon tests, Holm correction, Hedges' g, probability of
improvement), the uniform-random policy's mean return with its t-interval, aliased configs, power at the family-wise
α, steps to threshold as a censored outcome (Kaplan–Meier, restricted mean, log-rank), and seed-block bootstrap bands
for curves and performance profiles. Every random draw takes a `numpy.random.Generator` derived from the user's seed
and a key naming what is drawn for (`derive_rng`), so equal inputs give equal tables.

Bootstrap intervals are "expanded" (Hesterberg 2015): the bootstrap distribution of a mean is too narrow by a factor
≈ sqrt((n−1)/n) and uses normal rather than t tails, so at n = 10 a nominal 95% BCa interval covers ≈ 90%. We
therefore ask the bootstrap for the level whose normal quantile equals r·t_{ν, 1−α/2}, with r the ratio of the
unbiased to the plug-in standard error and ν the degrees of freedom (`expanded_level`); `ci_level` reports the
nominal level (0.95) and `ci_method` says "BCa-expanded" (or "percentile-expanded" where BCa is degenerate).
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

# one definition of the score grid: the tuning choice (study.tuning.run_metric) scores runs as the report does
from ablations.study.tuning import FINAL_FRACTION, GRID_POINTS  # noqa: F401 - re-exported to the report

#: Metrics scored per run: name → (label with units, higher is better).
METRICS: dict[str, tuple[str, bool]] = {
    "final_return": ("final return (mean episode return, last 10% of the budget)", True),
    "auc": ("area under the learning curve (mean return over the budget)", True),
    "steps_to_threshold": ("env steps to reach the threshold (censored at the budget)", False),
    "eval_return": ("evaluation return after training", True),
}
#: Metrics that are right-censored (analysed by Kaplan–Meier, never by t-tests).
CENSORED = {"steps_to_threshold"}
SUMMARY_COLUMNS = ["n", "mean", "iqm", "median", "std", "ci_low", "ci_high", "ci_level", "ci_method"]


# ---------------------------------------------------------------------------------------------------- randomness
def derive_rng(seed: int, *key: Any) -> np.random.Generator:
    """A generator seeded by the user seed and a key (e.g. ("summary", metric, config)); stable across processes."""
    digest = hashlib.sha256(repr(tuple(str(k) for k in key)).encode()).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


# ---------------------------------------------------------------------------------------------------- scores
def env_step_grid(budget: float, points: int = GRID_POINTS) -> np.ndarray:
    """`points` equally spaced env-step values in (0, budget]: budget/points, 2·budget/points, …, budget."""
    return np.linspace(budget / points, budget, points)


def interpolate_curves(curves: pd.DataFrame, run_ids: Sequence[str], grid: np.ndarray) -> np.ndarray:
    """Each run's return_mean, linearly interpolated at `grid` env steps → [R, G]; held constant outside its data.

    A run with no curve rows gives a row of NaN.
    """
    out = np.full((len(run_ids), len(grid)), np.nan)
    c = curves[["run_id", "env_steps", "return_mean"]].dropna()
    c = c.sort_values(["run_id", "env_steps"], kind="stable")
    groups = {rid: g for rid, g in c.groupby("run_id", sort=False)}
    for i, rid in enumerate(run_ids):
        g = groups.get(rid)
        if g is not None and len(g):
            out[i] = np.interp(grid, g["env_steps"].to_numpy(float), g["return_mean"].to_numpy(float))
    return out


def steps_to_threshold(curves: pd.DataFrame, run_ids: Sequence[str], threshold: float,
                       budget: float) -> tuple[np.ndarray, np.ndarray]:
    """First env_steps at which an update's return_mean ≥ threshold, per run; never → budget (right-censored).

    Returns (steps [R], reached [R] bool).
    """
    hit = curves[curves["return_mean"] >= threshold]
    first = hit.groupby("run_id")["env_steps"].min()
    steps = first.reindex(list(run_ids)).to_numpy(float)
    reached = ~np.isnan(steps)
    return np.where(reached, np.minimum(steps, budget), budget), reached


def final_mask(grid: np.ndarray, budget: float, fraction: float = FINAL_FRACTION) -> np.ndarray:
    """Grid points in the last `fraction` of the budget: (1 − fraction)·budget < x ≤ budget."""
    return grid > (1 - fraction) * budget + 1e-9 * budget


def run_scores(curves: pd.DataFrame, runs: pd.DataFrame, *, budget: float, threshold: float,
               grid: np.ndarray) -> pd.DataFrame:
    """One row per run of `runs`: final_return, auc, steps_to_threshold, reached (and eval_return if present)."""
    ids = runs["run_id"].tolist()
    y = interpolate_curves(curves, ids, grid)
    steps, reached = steps_to_threshold(curves, ids, threshold, budget)
    out = pd.DataFrame({"run_id": ids})
    out["final_return"] = y[:, final_mask(grid, budget)].mean(axis=1)
    out["auc"] = y.mean(axis=1)
    out["steps_to_threshold"] = np.where(np.isnan(out["auc"]), np.nan, steps)
    out["reached"] = reached
    if "eval_return" in runs.columns and pd.to_numeric(runs["eval_return"], errors="coerce").notna().any():
        out["eval_return"] = pd.to_numeric(runs["eval_return"], errors="coerce").to_numpy()
    return out


def default_threshold(env_id: str | None, final_returns: np.ndarray) -> tuple[float, str]:
    """CartPole-v0: 195, other CartPole: 475 (the solved scores); else the 75th percentile of all final returns."""
    if env_id and env_id.startswith("CartPole-v0"):
        return 195.0, "the CartPole-v0 solved score (195)"
    if env_id and env_id.startswith("CartPole"):
        return 475.0, "the CartPole-v1 solved score (475)"
    finite = final_returns[np.isfinite(final_returns)]
    value = float(np.percentile(finite, 75)) if finite.size else 0.0
    return value, "the 75th percentile of all runs' final returns (no env-specific default)"


# ---------------------------------------------------------------------------------------------------- intervals
def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (scipy.stats.trim_mean with 25% cut each side)."""
    return sps.trim_mean(x, 0.25, axis=axis)


def expanded_level(level: float, r: float | np.ndarray, df: float | np.ndarray) -> float | np.ndarray:
    """The bootstrap level whose two-sided normal quantile is r·t_{df, 1−α/2} (Hesterberg's expansion).

    Element-wise over array `r`, `df`; where df ≤ 0 or r is not finite, the nominal `level`.
    """
    r_arr, df_arr = np.broadcast_arrays(np.asarray(r, float), np.asarray(df, float))
    ok = np.isfinite(df_arr) & (df_arr > 0) & np.isfinite(r_arr)
    z = r_arr * sps.t.ppf(0.5 + level / 2, np.where(ok, df_arr, 1.0))
    out = np.where(ok, 1 - 2 * sps.norm.sf(z), level)
    return float(out) if out.ndim == 0 else out


def one_sample_expansion(n: int) -> tuple[float, float]:
    """(r, df) for a mean of n values: r = sqrt(n/(n−1)), df = n − 1."""
    return (float(np.sqrt(n / (n - 1))), float(n - 1)) if n > 1 else (1.0, 0.0)


def two_sample_expansion(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(r, Welch df) for a difference of two means: r² = (s_a²/n_a + s_b²/n_b) / plug-in variance of the difference."""
    na, nb = len(a), len(b)
    va, vb = np.var(a, ddof=1) / na, np.var(b, ddof=1) / nb
    plug = va * (na - 1) / na + vb * (nb - 1) / nb
    if plug <= 0:
        return 1.0, float(na + nb - 2)
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    return float(np.sqrt((va + vb) / plug)), float(df)


def _mean_stat(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(samples[0], axis=axis)


def _diff_stat(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def bootstrap_ci(samples: Sequence[np.ndarray], rng: np.random.Generator, *, statistic: Callable = _mean_stat,
                 n_resamples: int = 10_000, level: float = 0.95,
                 expansion: tuple[float, float] | None = None) -> tuple[float, float, str]:
    """(low, high, method): scipy.stats.bootstrap BCa, falling back to percentile when BCa is NaN or degenerate.

    `expansion` = (r, df) widens the level as in `expanded_level`; None means the plain nominal level.
    """
    samples = [np.asarray(s, float) for s in samples]
    if any(len(s) < 2 for s in samples):
        return np.nan, np.nan, "none"
    point = float(statistic(*samples))
    if all(np.ptp(s) == 0 for s in samples):  # every resample equals the estimate
        return point, point, "degenerate"
    conf = expanded_level(level, *expansion) if expansion else level
    suffix = "-expanded" if expansion else ""
    state = rng.bit_generator.state
    for method in ("BCa", "percentile"):
        if method == "percentile":
            rng.bit_generator.state = state  # the fallback draws the same resamples
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sps.DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sps.bootstrap(tuple(samples), statistic, n_resamples=n_resamples, vectorized=True,
                                confidence_level=conf, method=method, rng=rng)
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(low) and np.isfinite(high) and low <= point <= high:
            return low, high, method + suffix
    return low, high, "percentile" + suffix


def percentile_ci(boot: np.ndarray, level: float, expansion: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap draws `boot` [B, K] per column (NaN draws dropped), optionally expanded per
    column with (r [K], df [K]); linear interpolation between order statistics, as `numpy.quantile`."""
    k = boot.shape[1]
    if expansion is None:
        conf = np.full(k, level)
    else:
        conf = np.broadcast_to(expanded_level(level, *expansion), (k,))
    sorted_boot = np.sort(boot, axis=0)  # NaN sort last
    m = (~np.isnan(boot)).sum(axis=0)
    return _quantile_sorted(sorted_boot, m, (1 - conf) / 2), _quantile_sorted(sorted_boot, m, (1 + conf) / 2)


def _quantile_sorted(sorted_boot: np.ndarray, m: np.ndarray, q: np.ndarray) -> np.ndarray:
    pos = q * np.maximum(m - 1, 0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, np.maximum(m - 1, 0))
    a = np.take_along_axis(sorted_boot, lo[None, :], axis=0)[0]
    b = np.take_along_axis(sorted_boot, hi[None, :], axis=0)[0]
    return np.where(m > 0, a + (b - a) * (pos - lo), np.nan)


def resample_counts(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """[size, n] float32 counts: how often each of n items is drawn in each of `size` resamples of n with replacement."""
    idx = rng.integers(0, n, size=(size, n))
    flat = (idx + (np.arange(size) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=size * n).reshape(size, n).astype(np.float32)


def resampled_means(values: np.ndarray, rng: np.random.Generator | None, n_resamples: int,
                    chunk: int = 2_000, counts: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap means over rows of `values` [n, K] (NaN ignored) → [B, K]; rows drawn with replacement.

    Each resample is a row of counts (`resample_counts`), so all K columns share the draws and the means are one
    matrix product (float32 for speed; the resulting intervals differ from float64 by < 1e-6 relative).
    Pass precomputed `counts` [B, n] to reuse one set of draws for several tables (then `rng` is unused).
    """
    values = np.asarray(values, float)
    if values.ndim == 1:
        values = values[:, None]
    n = values.shape[0]
    present = ~np.isnan(values)
    complete = bool(present.all())
    filled = np.where(present, values, 0.0).astype(np.float32)
    weights = present.astype(np.float32)
    n_resamples = len(counts) if counts is not None else n_resamples
    out = np.empty((n_resamples, values.shape[1]))
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        c = counts[start:start + b] if counts is not None else resample_counts(n, b, rng)
        sums = c @ filled
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + b] = sums / n if complete else sums / (c @ weights)
    return out


# ---------------------------------------------------------------------------------------------------- summaries
def summarize_values(x: np.ndarray, rng: np.random.Generator, *, n_resamples: int = 10_000,
                     level: float = 0.95) -> dict[str, Any]:
    """n, mean, IQM, median, std (ddof=1) and the expanded bootstrap CI of the mean of 1-D `x` (NaN dropped)."""
    x = np.asarray(x, float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return dict(n=0, mean=np.nan, iqm=np.nan, median=np.nan, std=np.nan, ci_low=np.nan, ci_high=np.nan,
                    ci_level=level, ci_method="none")
    low, high, method = bootstrap_ci([x], rng, n_resamples=n_resamples, level=level,
                                     expansion=one_sample_expansion(n))
    return dict(n=n, mean=float(np.mean(x)), iqm=float(iqm(x)), median=float(np.median(x)),
                std=float(np.std(x, ddof=1)) if n > 1 else np.nan, ci_low=low, ci_high=high, ci_level=level,
                ci_method=method)


def summarize(df: pd.DataFrame, by: list[str], *, value: str = "value", seed: int = 0,
              n_resamples: int = 10_000, level: float = 0.95) -> pd.DataFrame:
    """Long-format summary: one row per group of `by` with `by` + SUMMARY_COLUMNS (fixed names).

    Each group's bootstrap uses `derive_rng(seed, "summary", *group key)`, so adding a group changes no other row.
    """
    rows = []
    for key, g in df.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rng = derive_rng(seed, "summary", *key)
        rows.append({**dict(zip(by, key)), **summarize_values(g[value].to_numpy(float), rng,
                                                                n_resamples=n_resamples, level=level)})
    return pd.DataFrame(rows, columns=by + SUMMARY_COLUMNS)


RANDOM_POLICY_COLUMNS = ["env_id", "episodes", "seed", "mean", "std", "ci_low", "ci_high", "ci_level", "ci_method",
                         "min", "max"]


def t_interval(mean: float, sd: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The t-interval of a mean from its summary statistics: mean ± t_{n−1, (1+level)/2}·sd/√n (sd with ddof = 1).
    NaN ends for n < 2 or a non-finite sd; [mean, mean] when sd = 0."""
    if n < 2 or not np.isfinite(sd):
        return np.nan, np.nan
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / np.sqrt(n)
    return mean - half, mean + half


def random_policy(random_scores: pd.DataFrame, env_id: str, level: float = 0.95) -> pd.DataFrame:
    """The uniform-random policy's mean return on `env_id` with its t-interval over the episodes (`t_interval`),
    from a `random_scores.csv` table (columns env_id, episodes, seed, random_score, random_std, random_min,
    random_max; `study.random_scores`): one row of `RANDOM_POLICY_COLUMNS`, none when the table lacks `env_id`."""
    rows = []
    for _, r in random_scores[random_scores["env_id"] == env_id].head(1).iterrows():
        mean, sd, n = float(r["random_score"]), float(r.get("random_std", np.nan)), int(r["episodes"])
        low, high = t_interval(mean, sd, n, level)
        rows.append({"env_id": env_id, "episodes": n, "seed": int(r["seed"]), "mean": mean, "std": sd,
                     "ci_low": low, "ci_high": high, "ci_level": level,
                     "ci_method": "t" if np.isfinite(low) else "none", "min": float(r.get("random_min", np.nan)),
                     "max": float(r.get("random_max", np.nan))})
    return pd.DataFrame(rows, columns=RANDOM_POLICY_COLUMNS)


# ---------------------------------------------------------------------------------------------------- comparisons
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
    """(mean(a) − mean(b)) / pooled SD, times the exact small-sample correction J(df) = Γ(df/2)/(√(df/2) Γ((df−1)/2))."""
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
            n_resamples: int = 10_000, level: float = 0.95, alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
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


def paired_mdd(sd: float, n: int, alpha: float, power: float = 0.8) -> float:
    """Minimum detectable mean difference of a two-sided paired t-test with n pairs and SD of differences `sd`
    (`statsmodels.stats.power.TTestPower`)."""
    from statsmodels.stats.power import TTestPower

    if not (n >= 3 and np.isfinite(sd) and sd > 0):
        return np.nan
    return float(TTestPower().solve_power(effect_size=None, nobs=int(n), alpha=alpha, power=power)) * sd


def comparison_pairs(configs: Sequence[str], reference: str, all_pairs: bool = False) -> list[tuple[str, str]]:
    """Every config vs the reference; with `all_pairs`, every unordered pair (later config vs earlier)."""
    if all_pairs:
        return [(configs[j], configs[i]) for i in range(len(configs)) for j in range(i + 1, len(configs))]
    return [(c, reference) for c in configs if c != reference]


# ---------------------------------------------------------------------------------------------------- power
def power_tables(comparisons: pd.DataFrame, *, effect_sizes: Sequence[float] = (0.5, 0.8, 1.0, 1.5),
                 alpha: float = 0.05, power: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Power at the family-wise α of the comparisons (α/m per test, Holm's first step, m tests of a metric).

    `power`: per metric, the number of tests m, α/m, the paired-t MDD in SD units at the median number of pairs,
    and the median, min and max over comparisons of each comparison's own MDD (its SD of differences).
    `seeds_needed`: per effect size d (in units of a comparison's SD of differences) and metric, the seeds needed
    by a paired t-test at α/m (`statsmodels.stats.power.TTestPower`).
    """
    from statsmodels.stats.power import TTestPower

    analysis = TTestPower()
    rows, need = [], []
    for metric, g in comparisons.groupby("metric", sort=False):
        m = max(int(np.isfinite(g["p"].to_numpy(float)).sum()), 1)
        a = alpha / m
        n = int(np.median(g["n_pairs"])) if len(g) else 0
        d = float(analysis.solve_power(effect_size=None, nobs=n, alpha=a, power=power)) if n >= 3 else np.nan
        mdds = g["mdd"].to_numpy(float)
        mdds = mdds[np.isfinite(mdds)]
        rows.append(dict(metric=metric, n_tests=m, alpha=alpha, alpha_per_test=a, power=power, n_pairs=n,
                         mdd_sd=d, mdd_median=float(np.median(mdds)) if mdds.size else np.nan,
                         mdd_min=float(mdds.min()) if mdds.size else np.nan,
                         mdd_max=float(mdds.max()) if mdds.size else np.nan))
        for es in effect_sizes:
            need.append(dict(metric=metric, effect_size=float(es), alpha_per_test=a, power=power,
                             n_seeds_needed=int(np.ceil(analysis.solve_power(effect_size=es, nobs=None, alpha=a,
                                                                             power=power)))))
    return pd.DataFrame(rows), pd.DataFrame(need)


# ---------------------------------------------------------------------------------------------------- aliases
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


# ---------------------------------------------------------------------------------------------------- censored
def km_table(scores: pd.DataFrame, configs: Sequence[str], reference: str | None, budget: float, *,
             seed: int = 0, n_resamples: int = 10_000, level: float = 0.95) -> pd.DataFrame:
    """Steps to threshold as a right-censored outcome, per config (`scores`: config, seed, steps_to_threshold,
    reached).

    Kaplan–Meier (`scipy.stats.ecdf` on `CensoredData`): median steps (NaN when the survival curve stays above ½);
    restricted mean time to threshold up to the budget, RMST = ∫₀^budget S(t) dt, with a bootstrap CI over seeds;
    log-rank test against the reference (`scipy.stats.logrank`), Holm over configs. No test when neither config
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
    out["p_logrank_holm"] = holm(out["p_logrank"].to_numpy(float))
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


# ---------------------------------------------------------------------------------------------------- profiles
def block_resampled_means(values: np.ndarray, blocks: np.ndarray, rng: np.random.Generator, n_resamples: int,
                          chunk: int = 2_000) -> np.ndarray:
    """Bootstrap means over rows of `values` [n, K] with whole blocks resampled: the distinct `blocks` [n] (seeds)
    are drawn with replacement and every row of a drawn block enters with that block's count → [B, K].

    Rows of one seed across configs share random streams, so resampling seeds (not rows) keeps their correlation.
    """
    values = np.asarray(values, float)
    if values.ndim == 1:
        values = values[:, None]
    codes, uniq = pd.factorize(np.asarray(blocks))
    S = len(uniq)
    present = ~np.isnan(values)
    sums = np.zeros((S, values.shape[1]))
    cnt = np.zeros((S, values.shape[1]))
    np.add.at(sums, codes, np.where(present, values, 0.0))
    np.add.at(cnt, codes, present.astype(float))
    out = np.empty((n_resamples, values.shape[1]))
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        c = resample_counts(S, b, rng).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + b] = (c @ sums) / (c @ cnt)
    return out


def _block_expansion(blocks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    r, df = one_sample_expansion(len(pd.unique(np.asarray(blocks))))
    return np.full(k, r), np.full(k, df)


def performance_profile(df: pd.DataFrame, taus: np.ndarray, *, group: str, seed: int = 0,
                        n_resamples: int = 10_000, level: float = 0.95) -> pd.DataFrame:
    """Fraction of runs with score > τ per group (long `df`: group, value, seed), with a seed-block bootstrap band
    (seeds resampled; every run of a drawn seed enters), expanded with S − 1 df.

    Columns: group, tau, fraction, ci_low, ci_high, ci_level, ci_method.
    """
    frames = []
    for key, g in df.groupby(group, sort=False):
        g = g.dropna(subset=["value"])
        x = g["value"].to_numpy(float)
        if not x.size:
            continue
        blocks = g["seed"].to_numpy() if "seed" in g.columns else np.arange(len(x))
        above = (x[:, None] > taus[None, :]).astype(float)  # [n, T]
        boot = block_resampled_means(above, blocks, derive_rng(seed, "profile", group, key), n_resamples)
        low, high = percentile_ci(boot, level, _block_expansion(blocks, len(taus)))
        frames.append(pd.DataFrame({group: key, "tau": taus, "fraction": above.mean(axis=0), "ci_low": low,
                                    "ci_high": high, "ci_level": level, "ci_method": "seed-block percentile-expanded"}))
    return pd.concat(frames, ignore_index=True)


def curve_bands(y: np.ndarray, groups: pd.Series, grid: np.ndarray, *, seeds: Sequence[Any] | None = None,
                seed: int = 0, n_resamples: int = 10_000, level: float = 0.95, key: str = "") -> pd.DataFrame:
    """Mean interpolated return across runs per group and grid point with a seed-block bootstrap band (`seeds`
    gives each row's seed; None treats every run as its own block), expanded with S − 1 df.

    `y` [R, G] from `interpolate_curves`; `groups` gives each row's group. Columns: group, env_steps, n, mean,
    ci_low, ci_high, ci_level, ci_method.
    """
    frames = []
    labels = np.asarray(groups)
    blocks_all = np.asarray(seeds) if seeds is not None else np.arange(len(labels))
    for g in pd.unique(labels):
        sel = labels == g
        rows, blocks = y[sel], blocks_all[sel]
        keep = ~np.isnan(rows).all(axis=1)
        rows, blocks = rows[keep], blocks[keep]
        if not len(rows):
            continue
        boot = block_resampled_means(rows, blocks, derive_rng(seed, "curve", key, g), n_resamples)
        low, high = percentile_ci(boot, level, _block_expansion(blocks, len(grid)))
        frames.append(pd.DataFrame({"group": g, "env_steps": grid, "n": len(rows), "mean": rows.mean(axis=0),
                                    "ci_low": low, "ci_high": high, "ci_level": level,
                                    "ci_method": "seed-block percentile-expanded"}))
    return pd.concat(frames, ignore_index=True)
