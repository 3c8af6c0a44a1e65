"""The package from Python (a notebook): load a results directory into typed DataFrames, and the report's
computations and figures as documented functions of them.

    import ablations.api as ab
    res = ab.load("results/quick")
    scores = ab.scores(res)                                   # one row per finished run
    ab.summary(scores)                                        # per-config mean, IQM, median, bootstrap CI
    ab.effects(scores, res.levels)                            # every main effect and interaction, paired by seed
    ab.compare(scores, res.reference_label)                   # each config vs the reference

Owns nothing but names: every number comes from the function of `ablations.report` (or `ablations.train.scores`)
that the markdown report calls, with the report's defaults (seed 0, 10,000 resamples, 95% intervals), so a table
here equals the report's `tables/<name>.csv` for the same settings. `report_tables` returns all of them at once.
The only code of its own reshapes a wide `scores` table into the long one (config, seed, factors, value) that the
report's functions take. Import it as a module (`import ablations.api as ab`); `import ablations` stays light.

The DataFrames of `load` (a `Results`; the report's reader validates the files and verifies their checksums):

- `runs`: one row per run: `run_id, study, status` (done / failed / diverged), `error, env_steps, updates,
  final_return` (the engine's), `eval_return`, every `RunConfig` field (`env_id, seed, returns, baseline, normalize,
  aggregate, entropy_coef, gamma, policy_lr, ..., total_steps, hidden, ...`), and `config`: the run's label, its
  factor levels joined by "/" in `factors` order ("all" with no factor); factor columns hold the levels as labels.
- `curves`: one row per run and update: `run_id, update, env_steps, episodes, return_mean, return_std,
  length_mean, policy_loss, value_loss, entropy, grad_norm` (+ `terminated_frac, truncated_frac`).
- `probes` (None without probes): one row per run, checkpoint and probed estimator: `run_id, update, env_steps,
  estimator` (its label "returns/baseline/normalize/entropy_coef"), `returns, baseline, normalize, entropy_coef,
  n_episodes, k_batches, total_var, mean_sq_norm, snr, cos_to_reference, pairwise_cos, bias_sq_norm,
  is_trained_estimator`, ...
- `timings` (None if absent): `run_id, wall_s`, ...; `manifest`: manifest.json as a dict.
- and `factors` (the swept fields), `levels` (factor → its levels in order), `configs` (labels in level order),
  `reference_label` (the config comparisons are made against), `done` (the runs with status done).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd

#: The backend the user chose before this import (a notebook's inline one), or None: `report.plots` selects Agg when
#: imported (the command line draws to files), and a notebook must keep its own.
_BACKEND = matplotlib.get_backend(auto_select=False)

from ablations.report import across  # noqa: E402 - after the backend is noted
from ablations.report import intervals as iv
from ablations.report import build
from ablations.report import comparisons as cmp
from ablations.report import effects as fx
from ablations.report import gradvar as gv
from ablations.report import metrics as mt
from ablations.report import plots
from ablations.report.export import export_tensorboard, export_wandb
from ablations.report.load import Results, load_results
from ablations.train import scores as sc

if _BACKEND is not None:
    matplotlib.use(_BACKEND)

__all__ = ["Results", "aggregate", "anova", "compare", "effects", "export_tensorboard", "export_wandb",
           "gradient_quality", "gradient_variance", "learning_curves", "load", "long_scores", "marginal_means",
           "plot_config_estimates", "plot_effects", "plot_gradient_variance", "plot_interactions",
           "plot_learning_curves", "report_tables", "scores", "summary", "variance_ratios"]

#: The report's defaults for every interval (`build.build_report`).
SEED, N_RESAMPLES, LEVEL = 0, 10_000, 0.95


def load(results_dir: str | Path) -> Results:
    """Read a results directory (`results/<study>/`) into a `Results`: the DataFrames `runs`, `curves`, `probes`,
    `timings` and the `manifest`, with the study's factors, levels and reference config (see the module docstring
    for the columns). A missing file or column is a `ReportError` naming it."""
    return load_results(results_dir)


def scores(results: Results, *, threshold: float | None = None) -> pd.DataFrame:
    """One row per finished run: `run_id, config, seed`, one column per factor, and the run's scores
    (`ablations.train.scores.run_scores`, each episode weighted equally): `final_return` (mean return of the episodes
    of the updates ending in the last 10% of the budget), `auc` (mean return over all training episodes),
    `steps_to_threshold` (a moving average over ≥ 2N episodes crossing it; censored at the budget),
    `reached` (bool), and `eval_return` when the runs were evaluated. `threshold`: as `ablations report
    --threshold` (default: the manifest's, else the env's)."""
    return build.run_scores_of(results, threshold)[0]


def long_scores(scores: pd.DataFrame, metric: str | Sequence[str] | None = None) -> pd.DataFrame:
    """`scores` in long form, the form the report's statistics take: `run_id, config, seed`, the factor columns,
    `metric`, `value`; one row per run and metric (`metric`: one name or several; default: every metric present
    except the censored `steps_to_threshold`, which only survival analysis may use)."""
    present = [m for m in mt.METRICS if m in scores.columns]
    names = ([metric] if isinstance(metric, str) else list(metric)) if metric is not None else [
        m for m in present if m not in mt.CENSORED]
    unknown = [m for m in names if m not in present]
    if unknown:
        raise ValueError(f"metric {unknown} is not a column of scores; allowed: {present}")
    ids = [c for c in scores.columns if c not in mt.METRICS and c != "reached"]
    return scores.melt(id_vars=ids, value_vars=names, var_name="metric", value_name="value")


def summary(scores: pd.DataFrame, *, metric: str | Sequence[str] | None = None, seed: int = SEED,
            n_resamples: int = N_RESAMPLES, level: float = LEVEL) -> pd.DataFrame:
    """Per metric and config: `metric, config, n, mean, iqm, median, std, ci_low, ci_high, ci_level, ci_method`
    (the t-interval of the mean over seeds: `report.intervals.config_summary`, as the report's summary table;
    `seed` and `n_resamples` are accepted for symmetry with the other tables and unused)."""
    return iv.config_summary(long_scores(scores, metric), ["metric", "config"], level=level)


def effects(scores: pd.DataFrame, levels: dict[str, list[str]], *, metric: str = "final_return", seed: int = SEED,
            n_resamples: int = N_RESAMPLES, level: float = LEVEL) -> pd.DataFrame:
    """Every main effect and interaction of the factors (`levels`: factor → levels in order, e.g. `results.levels`)
    on `metric`, paired by seed (`report.effects.factor_effects`). Columns: `metric, kind` (main | interaction),
    `order, term, contrast, factor, level, vs, factor2, level2, vs2, n_cells, n_seeds, estimate, ci_low, ci_high,
    ci_level, ci_method, se, df, t, p, p_holm, mdd, hedges_g`."""
    return fx.factor_effects(long_scores(scores, metric), list(levels), levels, metric=metric, seed=seed,
                             n_resamples=n_resamples, level=level)[0]


def marginal_means(scores: pd.DataFrame, levels: dict[str, list[str]], *, metric: str = "final_return",
                   seed: int = SEED, n_resamples: int = N_RESAMPLES, level: float = LEVEL) -> pd.DataFrame:
    """Mean of `metric` per level of each factor and per pair of levels of two factors, with a seed-block bootstrap
    CI (`report.effects.factor_effects`). Columns: `metric, factor, level, factor2, level2` ("" for a single
    factor), `n_cells, mean, ci_low, ci_high, ci_level, ci_method`."""
    return fx.factor_effects(long_scores(scores, metric), list(levels), levels, metric=metric, seed=seed,
                             n_resamples=n_resamples, level=level)[1]


def anova(scores: pd.DataFrame, levels: dict[str, list[str]], *, metric: str = "final_return") -> pd.DataFrame:
    """The factorial ANOVA of `metric` (`report.effects.anova`). Columns: `metric, term, df, sum_sq, F, p,
    partial_eta_sq, anova_type`."""
    return fx.anova(long_scores(scores, metric), list(levels), metric=metric)


def compare(scores: pd.DataFrame, reference: str, *, metric: str = "final_return", all_pairs: bool = False,
            level: float = LEVEL) -> pd.DataFrame:
    """Each config vs `reference` (a config label, e.g. `results.reference_label`; `all_pairs`: every pair),
    paired by seed (`report.comparisons.compare`; one Holm family per call). Columns: `metric, config, reference,
    n, n_ref, n_pairs, mean, mean_ref, diff, ci_low, ci_high, ci_level, ci_method, p, p_holm, p_rank, p_rank_holm,
    sd_diff, mdd, hedges_g, prob_improvement`. The report compares one config per group of aliases (configs with
    bit-identical results); this compares every config in `scores`."""
    configs = list(dict.fromkeys(scores["config"]))
    pairs = cmp.comparison_pairs(configs, reference, all_pairs)
    return cmp.compare(long_scores(scores, metric), pairs, metric=metric, level=level)


def gradient_variance(probes: pd.DataFrame, *, seed: int = SEED, n_resamples: int = N_RESAMPLES,
                      level: float = LEVEL) -> pd.DataFrame:
    """Per probed estimator, checkpoint and probe metric (`total_var, snr, cos_to_reference, bias_sq_norm`): the
    mean over runs with its CI (`report.gradvar.gradvar_summary`). Columns: `estimator, returns, baseline,
    normalize, entropy_coef, update, env_steps, metric, n, mean, ci_low, ci_high, ci_level, ci_method`."""
    return gv.gradvar_summary(probes, seed=seed, n_resamples=n_resamples, level=level)


def gradient_quality(probes: pd.DataFrame, *, seed: int = SEED, n_resamples: int = N_RESAMPLES,
                     level: float = LEVEL) -> pd.DataFrame:
    """Per probed estimator, its gradient quality over the checkpoints (variance, SNR, cosine to the unbiased
    reference, relative bias: `report.gradvar.gradient_quality`). Columns: `estimator, returns, baseline,
    normalize, entropy_coef, metric, n, mean, ci_low, ci_high, ci_level, ci_method, n_checkpoints`, ..."""
    return gv.gradient_quality(probes, seed=seed, n_resamples=n_resamples, level=level)


def variance_ratios(probes: pd.DataFrame, *, seed: int = SEED, n_resamples: int = N_RESAMPLES,
                    level: float = LEVEL) -> pd.DataFrame:
    """Each probed estimator's gradient variance over vanilla REINFORCE's (full/none/none/0), per checkpoint
    (`report.gradvar.variance_ratios`; empty if vanilla was not probed). Columns: `estimator, returns, baseline,
    normalize, entropy_coef, update, env_steps, n, ratio, ci_low, ci_high, ci_level, ci_method`."""
    return gv.variance_ratios(probes, seed=seed, n_resamples=n_resamples, level=level)


def learning_curves(results: Results, *, seed: int = SEED, n_resamples: int = N_RESAMPLES,
                    level: float = LEVEL) -> pd.DataFrame:
    """Mean return vs env steps per level of each factor (pooled over the others; "config" without factors), with a
    seed-block bootstrap band, on the report's grid of the finished runs. Columns: `factor, level, env_steps, n,
    mean, ci_low, ci_high, ci_level, ci_method` (`episodes` instead of `env_steps` for an episode budget)."""
    done = results.done.reset_index(drop=True)
    budget, unit = build.budget_of(results), build.budget_unit_of(results)
    grid = sc.env_step_grid(budget)
    y = sc.binned_curves(results.curves, done["run_id"].tolist(), grid, unit)
    return build.factor_bands(y, done, results.factors, grid, seed, n_resamples, level, unit)


def report_tables(results: Results, *, seed: int = SEED, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                  threshold: float | None = None, all_pairs: bool = False) -> dict[str, pd.DataFrame]:
    """Every table of a single-env study's report, by name (`scores, summary, comparisons, effects,
    marginal_means, anova, simple_effects, verdicts, threshold, power, learning_curves, gradvar, ...`), computed
    exactly as `ablations report` writes them to `tables/<name>.csv` (`report.build.compute`); nothing is written."""
    return build.compute(results, seed=seed, n_resamples=n_resamples, level=level, threshold=threshold,
                         all_pairs=all_pairs).tables


def aggregate(results: Results, *, seed: int = SEED, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
              random_scores: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """A multi-env study's aggregate tables, by name (`normalization`, `normalized_scores`, `aggregate` (IQM, mean,
    median, optimality gap of the normalized scores per config: `config, statistic, estimate, ci_low, ci_high,
    ci_level, ci_method, n_seeds, n_envs`), `improvement`, `aggregate_effects`, `effects_by_env`, `consistency`,
    `aggregate_profile`), as the report's top README computes them from each env's report (`report.across`).
    `random_scores`: the uniform-random policy's scores when the results have no `random_scores.csv`."""
    envs = across.env_levels(results)
    if not envs:
        raise ValueError(f"{results.path}: env_id is not a factor with two or more levels; nothing to aggregate")
    rs, source = across.random_scores(results, envs, random_scores)
    reps = {env: build.compute(across.env_subset(results, env, across.env_reference(results, env, rs)),
                               seed=seed, n_resamples=n_resamples, level=level, threshold=None, random_policy=False)
            for env in envs}
    return across.compute_across(results, reps, rs, source).tables


def plot_learning_curves(bands: pd.DataFrame, levels: dict[str, list[str]]) -> plt.Figure:
    """The report's learning-curve figure from `learning_curves(results)`: one panel per factor."""
    return plots.learning_curves(bands, levels or {"config": list(dict.fromkeys(bands["level"]))})


def plot_config_estimates(summary: pd.DataFrame, reference: str, *, metric: str = "final_return") -> plt.Figure:
    """The report's per-config estimates of `metric` with their CIs, from `summary(scores)`; `reference` marked."""
    return plots.config_estimates(summary[summary["metric"] == metric], reference, xlabel=mt.METRICS[metric][0])


def plot_effects(effects: pd.DataFrame, *, metrics: Sequence[str] = ("final_return",)) -> plt.Figure:
    """The report's forest plot of the main effects in `effects(...)` (one panel per metric)."""
    main = effects[(effects["kind"] == "main") & effects["metric"].isin(metrics)]
    return plots.forest(main, metrics=list(metrics), xlabels={m: mt.METRICS[m][0].split(" (")[0] for m in mt.METRICS})


def plot_interactions(margins: pd.DataFrame, levels: dict[str, list[str]], *,
                      metric: str = "final_return") -> plt.Figure:
    """The report's interaction plots (one panel per pair of factors) from `marginal_means(...)`."""
    return plots.interactions(margins[margins["metric"] == metric], levels, ylabel=metric.replace("_", " "))


def plot_gradient_variance(gradvar: pd.DataFrame, **kw: Any) -> plt.Figure:
    """The report's gradient variance and SNR vs env steps from `gradient_variance(probes)`."""
    return plots.gradient_variance(gradvar, **kw)
