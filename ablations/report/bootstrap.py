"""Bootstrap intervals and summaries: seeded generators, expanded BCa / percentile intervals, resampled means (rows
or whole seed blocks), the per-group summary of a metric, performance profiles and learning-curve bands.

Every random draw takes a `numpy.random.Generator` derived from the user's seed and a key naming what is drawn for
(`derive_rng`), so equal inputs give equal tables.

Bootstrap intervals are "expanded" (Hesterberg 2015): the bootstrap distribution of a mean is too narrow by a factor
≈ sqrt((n−1)/n) and uses normal rather than t tails, so at n = 10 a nominal 95% BCa interval covers ≈ 90%. We
therefore ask the bootstrap for the level whose normal quantile equals r·t_{ν, 1−α/2}, with r the ratio of the
unbiased to the plug-in standard error and ν the degrees of freedom (`expanded_level`); `ci_level` reports the
nominal level (0.95) and `ci_method` says "BCa-expanded" (or "percentile-expanded" where BCa is degenerate).
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps


SUMMARY_COLUMNS = ["n", "mean", "iqm", "median", "std", "ci_low", "ci_high", "ci_level", "ci_method"]


def derive_rng(seed: int, *key: Any) -> np.random.Generator:
    """A generator seeded by the user seed and a key (e.g. ("summary", metric, config)); stable across processes."""
    digest = hashlib.sha256(repr(tuple(str(k) for k in key)).encode()).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


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


def _mean_stat(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(samples[0], axis=axis)


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
    """[size, n] float32 counts: how often each of n items is drawn in each of `size` resamples of n with
    replacement."""
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
