"""Gradient-variance statistics from `probes.csv`: how noisy each estimator is over training, and relative to vanilla.

Owns: per estimator and checkpoint, the mean across runs of total_var, snr, cos_to_reference and bias_sq_norm with
a bootstrap CI over runs (cos_to_reference and bias_sq_norm are against the probes' `reference` column: full-return
leave-one-out with episode aggregation, unbiased for ∇J_γ; an estimator's label ends in "/step" when it averages over
a batch's valid steps instead of its N episodes); and the variance ratio of each estimator to the vanilla estimator
(full/none/none/0, episode aggregation),
paired by run_id and checkpoint: the mean over runs of log(total_var / total_var_vanilla), bootstrapped over runs
and reported as exp(·) (a geometric-mean ratio). Checkpoints are probe updates; their env-step coordinate is the
median env_steps of the runs at that update (runs reach an update at slightly different env steps).

GAE's bias–variance curve (`lambda_curve`): per GAE level, λ and checkpoint, the relative bias against the unbiased
reference and the variance relative to it, with bootstrap CIs over runs.

Every run's probes are drawn at that run's own current policy, so "mean across runs" averages over the policies the
whole study visits. The runs are resampled jointly for all estimators and checkpoints, so
the intervals of different estimators and checkpoints share their resamples (one draw of runs per table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations.config import GAE_RETURNS, VANILLA
from ablations.report.load import format_column, level_label
from ablations.report.bootstrap import (derive_rng, one_sample_expansion, percentile_ci, resample_counts,
                                        resampled_means)

PROBE_METRICS = ["total_var", "snr", "cos_to_reference", "bias_sq_norm"]
ESTIMATOR_FIELDS = ["returns", "baseline", "normalize", "entropy_coef"]
GRADVAR_COLUMNS = ["estimator", *ESTIMATOR_FIELDS, "update", "env_steps", "metric", "n", "mean", "ci_low", "ci_high",
                   "ci_level", "ci_method"]
RATIO_COLUMNS = ["estimator", *ESTIMATOR_FIELDS, "update", "env_steps", "n", "ratio", "ci_low", "ci_high",
                 "ci_level", "ci_method"]


def vanilla_estimator(probes: pd.DataFrame) -> str | None:
    """The label of the vanilla estimator (returns=full, baseline=none, normalize=none, entropy_coef=0), if probed."""
    sel = np.ones(len(probes), bool)
    if "aggregate" in probes:  # probes before the aggregate axis have the step form only
        sel &= probes["aggregate"].to_numpy() == "episode"
    for f in ESTIMATOR_FIELDS:
        sel &= format_column(probes[f]).to_numpy() == level_label(VANILLA[f])
    labels = probes.loc[sel, "estimator"].unique()
    return str(labels[0]) if len(labels) else None


def _estimators(probes: pd.DataFrame) -> pd.DataFrame:
    est = probes[["estimator", *ESTIMATOR_FIELDS]].drop_duplicates("estimator")
    return est.assign(**{f: format_column(est[f]) for f in ESTIMATOR_FIELDS}).set_index("estimator")


def _checkpoint_steps(probes: pd.DataFrame) -> pd.Series:
    return probes.drop_duplicates(["run_id", "update"]).groupby("update")["env_steps"].median()


def _intervals(values: np.ndarray, counts: np.ndarray, level: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(n, mean, low, high) per column of `values` [runs, K], NaN-aware, runs resampled jointly by `counts`."""
    n = (~np.isnan(values)).sum(axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(n > 0, values, 0.0), axis=0) if values.size else np.zeros(values.shape[1])
    boot = resampled_means(values, None, len(counts), counts=counts)
    low, high = percentile_ci(boot, level, _expansion(n))
    return n, np.where(n > 0, mean, np.nan), low, high


def _expansion(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, df) per column for a mean of n[k] runs (`bootstrap.one_sample_expansion`), as `percentile_ci` takes them."""
    exp = [one_sample_expansion(int(k)) for k in n]
    return np.array([e[0] for e in exp]), np.array([e[1] for e in exp])


def gradvar_summary(probes: pd.DataFrame, *, seed: int = 0, n_resamples: int = 10_000,
                    level: float = 0.95) -> pd.DataFrame:
    """Long table: per estimator, checkpoint (update) and metric: n runs, mean across runs and its bootstrap CI."""
    info = _estimators(probes)
    steps = _checkpoint_steps(probes)
    runs = sorted(probes["run_id"].unique())
    counts = resample_counts(len(runs), n_resamples, derive_rng(seed, "gradvar"))  # one resample of runs for all
    frames = []
    for update, g in probes.groupby("update", sort=True):
        wide = g.pivot_table(index="run_id", columns="estimator", values=PROBE_METRICS, aggfunc="mean",
                             dropna=False)
        wide = wide.reindex(index=runs, columns=pd.MultiIndex.from_product([PROBE_METRICS, info.index]))
        n, mean, low, high = _intervals(wide.to_numpy(float), counts, level)
        cols = wide.columns
        frame = pd.DataFrame({"estimator": cols.get_level_values(1), "metric": cols.get_level_values(0), "n": n,
                              "mean": mean, "ci_low": low, "ci_high": high})
        frame["update"], frame["env_steps"] = update, float(steps[update])
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out = out.join(info, on="estimator")
    out["ci_level"], out["ci_method"] = level, "percentile-expanded"
    return out[GRADVAR_COLUMNS].sort_values(["metric", "estimator", "update"], kind="stable", ignore_index=True)


def variance_ratios(probes: pd.DataFrame, *, seed: int = 0, n_resamples: int = 10_000,
                    level: float = 0.95) -> pd.DataFrame:
    """Variance ratio to the vanilla estimator, per checkpoint and overall (update = -1, env_steps = NaN).

    Overall: each run's log-ratios are averaged over its checkpoints first, then bootstrapped over runs.
    Only estimators on the vanilla estimator's scale (normalize = none): standardizing divides by a batch std, so a
    normalized estimator's variance is in other units (compare those by the scale-free `gradient_quality`).
    Empty when the vanilla estimator was not probed.
    """
    ref = vanilla_estimator(probes)
    if ref is None:
        return pd.DataFrame(columns=RATIO_COLUMNS)
    info = _estimators(probes)
    info = info[info["normalize"] == "none"]  # a normalized estimator is on another scale: no variance ratio
    pos = probes[probes["total_var"] > 0]
    logv = pos.pivot_table(index=["run_id", "update"], columns="estimator", values="total_var",
                           aggfunc="mean").reindex(columns=info.index)
    logv = np.log(logv)
    logr = logv.sub(logv[ref], axis=0)  # [run × update, estimator]
    steps = _checkpoint_steps(probes)
    runs = sorted(probes["run_id"].unique())
    counts = resample_counts(len(runs), n_resamples, derive_rng(seed, "varratio"))
    frames = []
    groups = [(u, g.droplevel("update")) for u, g in logr.groupby(level="update", sort=True)]
    groups.append((-1, logr.groupby(level="run_id").mean()))
    for update, g in groups:
        g = g.reindex(runs)
        n, mean, low, high = _intervals(g.to_numpy(float), counts, level)
        frames.append(pd.DataFrame({"estimator": g.columns, "update": update,
                                    "env_steps": float(steps[update]) if update >= 0 else np.nan,
                                    "n": n, "ratio": np.exp(mean), "ci_low": np.exp(low), "ci_high": np.exp(high)}))
    out = pd.concat(frames, ignore_index=True).join(info, on="estimator")
    out["ci_level"], out["ci_method"] = level, "percentile-expanded"
    return out[RATIO_COLUMNS].sort_values(["update", "estimator"], kind="stable", ignore_index=True)


QUALITY_COLUMNS = ["estimator", *ESTIMATOR_FIELDS, "metric", "n", "mean", "ci_low", "ci_high", "ci_level", "ci_method",
                   "n_checkpoints"]
#: The unbiased reference whose ‖E ĝ‖ scales the bias (full returns, leave-one-out baseline; DESIGN "probes").
BIAS_REFERENCE = {"returns": "full", "baseline": "loo", "normalize": "none", "entropy_coef": "0"}


def _reference_estimator(probes: pd.DataFrame) -> str | None:
    """The label of the probes' bias reference: their `reference` column (full/loo/none/0, episode form), else (older
    probes without it) the estimator whose levels are BIAS_REFERENCE's."""
    if "reference" in probes and probes["reference"].notna().any():
        labels = probes["reference"].dropna().astype(str).unique()
        return str(labels[0]) if str(labels[0]) in set(probes["estimator"].astype(str)) else None
    sel = np.ones(len(probes), bool)
    for f, v in BIAS_REFERENCE.items():
        sel &= format_column(probes[f]).to_numpy() == v
    labels = probes.loc[sel, "estimator"].unique()
    return str(labels[0]) if len(labels) else None


def _relative_bias(per_run: pd.DataFrame, runs: list[str], info: pd.DataFrame, counts: np.ndarray,
                   level: float) -> pd.DataFrame:
    """Rows metric 'rel_bias_sq': per estimator the ratio of the run-means of bias_sq_norm and of ‖c·ū‖² (`per_run`:
    each run's values averaged over its checkpoints, indexed by run_id and estimator), with a percentile bootstrap
    CI over runs (see `gradient_quality`)."""
    num, den = per_run["bias_sq_norm"], per_run["_ref_sq"]
    # a run whose reference is exactly 0 (every episode with the same return: the leave-one-out reference vanishes)
    # has no relative bias: left out of both sums
    num = num.where(den != 0)
    raw = info.index[info["normalize"] == "none"]  # a normalized estimator is on another scale than ∇J
    num[~num.index.get_level_values("estimator").isin(raw)] = np.nan
    den = den.where(num.notna())
    num_w = num.unstack("estimator").reindex(index=runs, columns=info.index).to_numpy(float)
    den_w = den.unstack("estimator").reindex(index=runs, columns=info.index).to_numpy(float)
    n = (~np.isnan(num_w)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # an estimator with no runs (normalized): NaN
        pooled_num = np.nansum(num_w, axis=0) / n
        pooled_den = np.nansum(den_w, axis=0) / n
        ratio = np.where((n > 0) & (pooled_den > 0), pooled_num / pooled_den, np.nan)
        b_num = resampled_means(num_w, None, len(counts), counts=counts)
        b_den = resampled_means(den_w, None, len(counts), counts=counts)
        boot = np.where(np.isnan(b_den), np.nan, np.where(b_den > 0, b_num / b_den, np.inf))
    with np.errstate(invalid="ignore"):  # ∞ − ∞ between two +∞ draws: fixed below
        low, high = percentile_ci(boot, level, _expansion(n))
    some_inf = np.isposinf(boot).any(axis=0)  # a quantile between two +∞ draws interpolates to NaN: it is +∞
    low, high = np.where(np.isnan(low) & some_inf, np.inf, low), np.where(np.isnan(high) & some_inf, np.inf, high)
    resolved = np.isfinite(ratio)
    return pd.DataFrame({"estimator": info.index, "metric": "rel_bias_sq", "n": n, "mean": ratio,
                         "ci_low": np.where(resolved, low, np.nan), "ci_high": np.where(resolved, high, np.nan)})


def gradient_quality(probes: pd.DataFrame, *, seed: int = 0, n_resamples: int = 10_000,
                     level: float = 0.95) -> pd.DataFrame:
    """Scale-free gradient quality per estimator: each run's values are averaged over its own checkpoints first,
    then the mean across runs gets a bootstrap CI with runs resampled jointly for every estimator (paired).

    Metrics: `snr` (‖E ĝ‖²/tr Cov ĝ), `cos_to_reference`, and `rel_bias_sq` = a ratio of means over runs: the mean
    over runs of each run's mean bias_sq_norm, over the mean over runs of each run's mean ‖c·ū‖² (ū the unbiased
    reference estimator full/loo/none/0, c the row's `reference_scale`: 1 for an episode form, N/L̄ for a step form,
    whose bias_sq_norm the probes measure against c·U), for unnormalized estimators only (a normalized one is on
    another scale). Both are unbiased estimates that can be negative; the reference's ‖ū‖² is negative in a run
    where the gradient is small next to its noise (28% of the published factorial's probed runs), so a per-run ratio
    flips sign and explodes there, while the pooled denominator is the resolved one. The bootstrap resamples runs and
    recomputes the ratio; a resample whose pooled denominator is not positive counts as +∞, and a ratio whose own
    denominator is not positive is NaN (the reference is not resolved). `rel_bias` = √max(·, 0) of the ratio and of
    each CI end (a negative one is shown as 0). Rows `rel_bias` carry that transform.
    """
    info = _estimators(probes)
    runs = sorted(probes["run_id"].unique())
    p = probes.copy()
    ref = _reference_estimator(probes)
    if ref is not None:
        scale = p[p["estimator"] == ref].groupby(["run_id", "update"])["mean_sq_norm"].mean().rename("_ref_sq")
        p = p.join(scale, on=["run_id", "update"])
        if "reference_scale" in p:  # the probes compare a step-form estimator with c·U, c = N/L̄: ‖c·ū‖² is its scale
            p["_ref_sq"] = p["_ref_sq"] * pd.to_numeric(p["reference_scale"], errors="coerce").fillna(1.0) ** 2
    metrics = ["snr", "cos_to_reference"]
    g = p.groupby(["run_id", "estimator"])
    per_run = g[metrics + (["bias_sq_norm", "_ref_sq"] if ref is not None else [])].mean()
    n_ck = g["update"].nunique()
    wide = per_run[metrics].unstack("estimator").reindex(index=runs)
    wide = wide.reindex(columns=pd.MultiIndex.from_product([metrics, info.index]))
    counts = resample_counts(len(runs), n_resamples, derive_rng(seed, "quality"))
    n, mean, low, high = _intervals(wide.to_numpy(float), counts, level)
    cols = wide.columns
    out = pd.DataFrame({"estimator": cols.get_level_values(1), "metric": cols.get_level_values(0), "n": n,
                        "mean": mean, "ci_low": low, "ci_high": high})
    if ref is not None:
        out = pd.concat([out, _relative_bias(per_run, runs, info, counts, level)], ignore_index=True)
        rb = out[out["metric"] == "rel_bias_sq"].copy()
        for c in ("mean", "ci_low", "ci_high"):
            rb[c] = np.sqrt(np.maximum(rb[c].to_numpy(float), 0.0))
        out = pd.concat([out, rb.assign(metric="rel_bias")], ignore_index=True)
    out = out.join(info, on="estimator")
    out["n_checkpoints"] = out["estimator"].map(n_ck.groupby("estimator").median())
    out["ci_level"], out["ci_method"] = level, "percentile-expanded (runs)"
    return out[QUALITY_COLUMNS].sort_values(["metric", "estimator"], kind="stable", ignore_index=True)


#: Columns of `lambda_curve`.
LAMBDA_COLUMNS = ["returns", "gae_lambda", "update", "env_steps", "metric", "n", "mean", "ci_low", "ci_high",
                  "ci_level", "ci_method"]


def _gae_rows(probes: pd.DataFrame) -> pd.DataFrame:
    """The GAE estimators' rows on the reference's scale: returns gae or gae_gpomdp, episode aggregation, β = 0,
    normalize none."""
    if "gae_lambda" not in probes:
        return probes.iloc[:0]
    sel = probes["returns"].astype(str).isin(GAE_RETURNS).to_numpy().copy()
    sel &= format_column(probes["normalize"]).to_numpy() == "none"
    sel &= pd.to_numeric(probes["entropy_coef"], errors="coerce").to_numpy() == 0
    if "aggregate" in probes:
        sel &= probes["aggregate"].to_numpy() == "episode"
    return probes[sel]


def lambda_curve(probes: pd.DataFrame, *, seed: int = 0, n_resamples: int = 10_000,
                 level: float = 0.95) -> pd.DataFrame:
    """GAE's bias–variance curve: per GAE level, λ and checkpoint (update), `LAMBDA_COLUMNS` rows of two metrics, each
    with a percentile bootstrap CI over runs (one resample of runs for the whole table, so the rows are paired):

    * `rel_bias` = √max(Σ_runs bias_sq_norm / Σ_runs ‖ū‖², 0), the relative bias ‖E ĝ_λ − ∇J_γ‖/‖∇J_γ‖ against the
      probes' unbiased reference (its mean_sq_norm at the same checkpoint), a ratio of means over the runs at that
      checkpoint as in `gradient_quality` (a run whose reference is exactly 0 is left out);
    * `var_ratio` = exp(mean over runs of log(total_var / total_var of the reference)), the estimator's total
      variance relative to the unbiased reference's on the same batches (a geometric-mean ratio, as
      `variance_ratios`; a run with a non-positive variance is left out).

    Only the rows on ∇J's scale: normalize none, episode aggregation, β = 0. Empty without GAE rows or reference.
    """
    rows, ref = _gae_rows(probes), _reference_estimator(probes)
    if not len(rows) or ref is None:
        return pd.DataFrame(columns=LAMBDA_COLUMNS)
    refs = probes[probes["estimator"] == ref].groupby(["run_id", "update"])[["mean_sq_norm", "total_var"]].mean()
    p = rows.join(refs.rename(columns={"mean_sq_norm": "_ref_sq", "total_var": "_ref_var"}), on=["run_id", "update"])
    info = _estimators(p)
    info["gae_lambda"] = p.drop_duplicates("estimator").set_index("estimator")["gae_lambda"].astype(float)
    info["_returns"] = p.drop_duplicates("estimator").set_index("estimator")["returns"].astype(str)
    runs = sorted(probes["run_id"].unique())
    steps = _checkpoint_steps(probes)
    counts = resample_counts(len(runs), n_resamples, derive_rng(seed, "lambda_curve"))
    frames = []
    for update, g in p.groupby("update", sort=True):
        per_run = g.groupby(["run_id", "estimator"])[["bias_sq_norm", "_ref_sq"]].mean()
        rb = _relative_bias(per_run, runs, info, counts, level)
        for c in ("mean", "ci_low", "ci_high"):
            rb[c] = np.sqrt(np.maximum(rb[c].to_numpy(float), 0.0))
        ratio = (g["total_var"] / g["_ref_var"]).where((g["total_var"] > 0) & (g["_ref_var"] > 0))
        logr = np.log(ratio).groupby([g["run_id"], g["estimator"]]).mean().unstack("estimator")
        logr = logr.reindex(index=runs, columns=info.index)
        n, mean, low, high = _intervals(logr.to_numpy(float), counts, level)
        vr = pd.DataFrame({"estimator": info.index, "n": n, "mean": np.exp(mean), "ci_low": np.exp(low),
                           "ci_high": np.exp(high)})
        frame = pd.concat([rb.assign(metric="rel_bias"), vr.assign(metric="var_ratio")], ignore_index=True)
        frame["update"], frame["env_steps"] = update, float(steps[update])
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["returns"] = out["estimator"].map(info["_returns"])
    out["gae_lambda"] = out["estimator"].map(info["gae_lambda"])
    out["ci_level"], out["ci_method"] = level, "percentile-expanded (runs)"
    return out[LAMBDA_COLUMNS].sort_values(["metric", "returns", "update", "gae_lambda"], kind="stable",
                                            ignore_index=True)
