"""The report's text: `render(report) -> str` (GitHub-flavoured markdown) and the table formatter it uses.

Owns wording and rounding only: every number comes from the tables `build.compute` made. Nothing here reads the
clock, so the same tables give the same README (the only times shown are the manifest's).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from ablations.report.effects import effect_sentence, fmt, format_p, significant
from ablations.report.model import Report
from ablations.report.questions import answers
from ablations.report.stats import FINAL_FRACTION, METRICS


def md_table(df: pd.DataFrame, columns: dict[str, str], formats: dict[str, Callable[[Any], str]] | None = None,
             max_rows: int | None = None) -> str:
    """A markdown table of `columns` (name → header), each cell formatted by `formats[name]` (default `fmt`)."""
    formats = formats or {}
    if df.empty:
        return "_(none)_\n"
    shown = df if max_rows is None else df.head(max_rows)
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in shown.iterrows():
        cells = [formats.get(c, _cell)(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells).replace("\n", " ") + " |")
    if max_rows is not None and len(df) > max_rows:
        lines.append(f"\n_{len(df) - max_rows} more rows in the CSV._")
    return "\n".join(lines) + "\n"


def _cell(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        return fmt(float(x))
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    return str(x).replace("|", "\\|")


def _ci(row: pd.Series, low: str = "ci_low", high: str = "ci_high") -> str:
    return f"[{fmt(row[low])}, {fmt(row[high])}]"


def _p(p: Any) -> str:
    return format_p(float(p)).replace("= ", "").replace("< ", "<")


def _with_ci(df: pd.DataFrame, value: str = "mean") -> pd.DataFrame:
    return df.assign(_ci=[_ci(r) for _, r in df.iterrows()]) if len(df) else df.assign(_ci=[])


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "n/a"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def _summary_section(rep: "Report") -> list[str]:
    r = rep.results
    m = r.manifest
    runs = r.runs
    counts = runs["status"].value_counts()
    env = runs["env_id"].dropna().unique().tolist() if "env_id" in runs else []
    total_steps = pd.to_numeric(runs["env_steps"], errors="coerce").sum()
    wall = m.get("wall_s")
    if wall is None and r.timings is not None:
        wall = r.timings["wall_s"].sum()
    versions = m.get("versions") if isinstance(m.get("versions"), dict) else {}
    factor_desc = "; ".join(f"`{f}` ∈ {{{', '.join(r.levels[f])}}}" for f in r.factors) or "none"
    lines = [
        f"- **Environment:** {', '.join(map(str, env)) or 'n/a'}",
        f"- **Budget:** {fmt(rep.budget)} environment steps per run",
        f"- **Factors:** {factor_desc} ({len(r.configs)} configs)",
        f"- **Seeds:** {rep.n_seeds} per config (median over configs of finished runs)",
        f"- **Runs:** {len(runs)} in total; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())),
        f"- **Total environment steps:** {total_steps:,.0f}",
        f"- **Wall time:** {_duration(wall)}"
        + (f" (started {m['started']}, finished {m['finished']})" if m.get("started") and m.get("finished") else ""),
        f"- **Reference config:** `{r.reference_label}`, {r.reference_note}",
    ]
    if m.get("git_commit"):
        lines.append(f"- **Git commit:** `{m['git_commit']}`" + (f" on host `{m['host']}`" if m.get("host") else ""))
    if versions:
        lines.append("- **Versions:** " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return lines


def _findings(rep: "Report") -> list[str]:
    e = rep.tables["effects"]
    if e.empty:
        return ["No factor effects were estimated (fewer than two levels of every factor)."]
    out = []
    for metric in [m for m in ("final_return", "auc") if m in rep.metrics]:
        sig = significant(e[e["metric"] == metric])
        out += [f"- {effect_sentence(row)}" for _, row in sig.iterrows()]
    if not out:
        out.append("- No main effect or interaction on final return or AUC is significant after Holm correction.")
    return out


def _questions(rep: "Report") -> list[str]:
    lines = answers(rep.tables)
    return ["## The tutorials' questions", "", *lines, ""] if lines else []


def _figure(rep: "Report", name: str, caption: str) -> list[str]:
    if name not in rep.figures:
        return []
    if rep.figures[name].endswith(".gif"):
        return [f"![{caption}]({rep.figures[name]})", "", f"*{caption}*", ""]
    svg = rep.figures[name][:-4] + ".svg"
    return [f"![{caption}]({rep.figures[name]})", "", f"*{caption}* ([SVG]({svg}))", ""]


def _tables_section(rep: "Report") -> list[str]:
    t = rep.tables
    ref = rep.results.reference_label
    lines = []
    for metric in rep.metrics:
        s = _with_ci(t["summary"][t["summary"]["metric"] == metric])
        lines += [f"### {METRICS[metric][0].capitalize()} per config", "",
                  md_table(s, {"config": "config", "n": "n", "mean": "mean", "_ci": "95% CI", "iqm": "IQM",
                               "median": "median", "std": "SD"}, {"n": str}), ""]
        if metric == "steps_to_threshold":
            th = t["threshold"].assign(median_steps=t["threshold"]["median_steps"])
            lines += [f"Runs reaching the threshold ({fmt(rep.threshold)}):", "",
                      md_table(th, {"config": "config", "n": "n", "n_reached": "reached", "frac_reached": "fraction",
                                    "median_steps": "median steps"},
                               {"n": str, "n_reached": str,
                                "median_steps": lambda x: "> budget" if not np.isfinite(x) else fmt(x)}), ""]
    c = t["comparisons"]
    if len(c):
        c = _with_ci(c)
        title = "All pairs" if rep.all_pairs else f"Each config vs the reference `{ref}`"
        for metric in [m for m in ("final_return", "auc") if m in rep.metrics]:
            shown = c[c["metric"] == metric]
            if rep.all_pairs:  # up to 1,128 pairs: show the smallest p_holm first, the rest stay in the CSV
                shown = shown.sort_values(["p_holm", "config", "reference"], kind="stable")
            lines += [f"### {title}: {METRICS[metric][0].split(' (')[0]}", "",
                      md_table(shown,
                               {"config": "config", "reference": "vs", "diff": "difference", "_ci": "95% CI",
                                "p_welch": "p (Welch)", "p_holm": "p_holm", "p_mwu_holm": "p_holm (MWU)",
                                "hedges_g": "Hedges' g", "prob_improvement": "P(improve)"},
                               {"p_welch": _p, "p_holm": _p, "p_mwu_holm": _p},
                               max_rows=60 if rep.all_pairs else None), ""]
    e = t["effects"]
    if len(e):
        main = _with_ci(e[e["kind"] == "main"])
        lines += ["### Main effects (level vs first level, averaged over the other factors)", "",
                  md_table(main, {"metric": "metric", "factor": "factor", "level": "level", "vs": "vs",
                                  "estimate": "effect", "_ci": "95% CI", "p_holm": "p_holm", "hedges_g": "g"},
                           {"p_holm": _p}), ""]
        inter = _with_ci(e[(e["kind"] == "interaction") & (e["metric"] == "final_return")])
        lines += ["### Two-way interactions on final return (difference of differences)", "",
                  md_table(inter, {"factor": "A", "level": "a", "vs": "vs a₀", "factor2": "B", "level2": "b",
                                   "vs2": "vs b₀", "estimate": "interaction", "_ci": "95% CI", "p_holm": "p_holm"},
                           {"p_holm": _p}), ""]
    a = t["anova"]
    if len(a):
        lines += ["### Factorial ANOVA (Type II; main effects + two-way interactions)", "",
                  md_table(a, {"metric": "metric", "term": "term", "df": "df", "F": "F", "p": "p",
                               "partial_eta_sq": "partial η²"}, {"df": lambda x: f"{x:.0f}", "p": _p}), ""]
    lines += ["### Power", "",
              f"Minimum detectable difference at {rep.n_seeds} seeds per config (two-sided two-sample t-test, "
              "α = 0.05, power 0.8):", "",
              md_table(t["power"], {"metric": "metric", "pooled_sd": "pooled SD", "mdd_sd": "MDD (SD units)",
                                    "mdd": "MDD (metric units)"}), "",
              "Seeds per config needed to detect a standardized effect (Cohen's d) with the same test:", "",
              md_table(t["seeds_needed"], {"effect_size": "d", "n_seeds_needed": "seeds per config"},
                       {"n_seeds_needed": str}), ""]
    if "variance_ratio" in t and len(t["variance_ratio"]):
        vr = t["variance_ratio"]
        vr = _with_ci(vr[vr["update"] == -1].sort_values("ratio", kind="stable"))
        lines += ["### Gradient variance relative to vanilla REINFORCE", "",
                  "Geometric-mean ratio of total gradient variance to the vanilla estimator's, paired by run and "
                  "checkpoint:", "",
                  md_table(vr, {"estimator": "estimator", "n": "runs", "ratio": "variance ratio", "_ci": "95% CI"},
                           {"n": str}), ""]
    return lines


def _methods(rep: "Report") -> list[str]:
    r = rep.results
    B, seed = rep.n_resamples, rep.seed
    grid = rep.grid
    return [
        f"- **Learning curves on an env-step axis.** Each run's per-update mean episode return (`return_mean`) is "
        f"linearly interpolated onto a common grid of {len(grid)} equally spaced points from {fmt(grid[0])} to "
        f"{fmt(grid[-1])} environment steps (held constant before a run's first and after its last update), so "
        "configs are compared at equal data, not equal updates.",
        f"- **Scores per run.** *Final return*: the mean of the interpolated curve over the grid points in the last "
        f"{FINAL_FRACTION:.0%} of the budget. *AUC*: the mean of the interpolated curve over the whole grid (area "
        "normalized by the budget). *Steps to threshold*: the env steps of the first update whose mean return reaches "
        f"{fmt(rep.threshold)} (threshold from {rep.threshold_source}); runs that never reach it are right-censored and "
        "counted as the budget, so their means are lower bounds. Because every censoring time is the budget, "
        "the reported median equals the Kaplan–Meier median when at least half the runs reach the threshold, and is "
        "shown as \"> budget\" otherwise. *Eval return* is copied from runs.csv.",
        "- **Unit of analysis.** One seed (run) is one observation; only runs with status `done` are scored.",
        f"- **Summaries.** n, mean, IQM (`scipy.stats.trim_mean`, 25% cut each side), median, SD (ddof = 1), and a "
        f"{rep.level:.0%} bootstrap CI of the mean: `scipy.stats.bootstrap`, BCa with {B:,} resamples (percentile "
        "when BCa is NaN or does not contain the estimate; a CI of width 0 when all values are equal).",
        "- **Small-sample expansion.** A bootstrap interval of a mean is too narrow at small n (a nominal 95% BCa "
        "interval covers about 90% at n = 10). Every bootstrap interval is therefore computed at the level whose "
        "normal quantile is r·t_{ν, 0.975} (Hesterberg's expanded percentile), with r the ratio of the unbiased to "
        "the plug-in standard error (√(n/(n−1)) for one mean) and ν its degrees of freedom (n − 1; Welch's ν for a "
        "difference; N − C for a factor effect). `ci_level` records the nominal level; `ci_method` says `-expanded`.",
        f"- **Random numbers.** Every bootstrap draws from `numpy.random.default_rng(SeedSequence([{seed}, "
        "hash(key)]))`, with the key naming the table and the group (e.g. metric and config), so a table does not "
        "depend on which other tables or groups were computed, and the same inputs give byte-identical tables.",
        f"- **Comparisons.** {'Every pair of configs' if rep.all_pairs else 'Every config vs the reference'}: "
        "difference of means with a two-sample bootstrap CI (BCa, expanded), Welch's t-test and the Mann–Whitney U "
        "test (two-sided). Holm's step-down correction is applied across the comparisons of one metric "
        "(`p_holm` for Welch, `p_holm (MWU)` for Mann–Whitney). Effect sizes: Hedges' g (pooled SD, exact "
        "small-sample factor J) and the probability of improvement P(X > Y) + ½P(X = Y) over all pairs of runs. "
        "For steps to threshold lower is better, so improvement there means P < 0.5.",
        "- **Factor effects.** A main effect is the difference between a level and the factor's first level, "
        "averaged with equal weight over the level combinations of the other factors (over the combinations where "
        "both cells exist). A two-way interaction is the difference of differences for each pair of non-first "
        "levels against the first levels, averaged the same way. CIs: seed-level bootstrap (seeds resampled within "
        f"each cell, {B:,} resamples shared by all contrasts of a metric), expanded percentile intervals. p-values: "
        "two-sided t-tests of each contrast against the pooled within-cell variance (df = N − C), Holm-corrected "
        "within each family (main effects; interactions) of a metric. g = contrast / pooled within-cell SD × J.",
        "- **ANOVA.** `statsmodels` OLS on per-seed scores with all main effects and two-way interactions (factors as "
        "categorical), Type II sums of squares (`anova_lm(typ=2)`: each term adjusted for all others not containing "
        "it; appropriate when higher-order interactions are small, and insensitive to the coding of factors); "
        "partial η² = SS_term / (SS_term + SS_residual). Skipped when the design is rank-deficient.",
        "- **Power.** `statsmodels.stats.power.TTestIndPower`, two-sided, α = 0.05, power 0.8, equal group sizes. "
        "The pooled SD is the square root of the df-weighted mean of per-config variances.",
        "- **Gradient variance.** Per estimator and probe checkpoint (update), the mean across runs of `total_var`, "
        "`snr`, `cos_to_reference` and `bias_sq_norm`, with a percentile bootstrap CI over runs (runs resampled "
        "jointly for all estimators). A checkpoint's env-step coordinate is the median over runs. The variance ratio "
        "to the vanilla estimator (full/none/none/0) is exp(mean over runs of log(var / var_vanilla)), paired by "
        "run and checkpoint (each run's log-ratios are first averaged over its checkpoints for the overall ratio).",
        "- **Figures.** Bands and error bars are the intervals in the tables (no resampling while drawing); colours "
        "from seaborn's colour-blind palette. Learning curves and performance profiles pool runs over the other "
        "factors' levels.",
    ] + ([f"- Reference: {r.reference_note}."])


def _missing_section(rep: "Report") -> list[str]:
    r = rep.results
    miss = rep.tables["missing"]
    n = rep.tables["scores"].groupby("config").size().reindex(r.configs, fill_value=0)
    expected = int(n.max()) if len(n) else 0
    short = n[n < expected]
    lines = [f"{len(r.done)} of {len(r.runs)} runs finished and are scored. "
             + (f"{len(miss)} runs are missing from the statistics." if len(miss) else "No run is missing.")]
    if len(short):
        lines += ["", "Configs with fewer scored seeds than the most complete config "
                  f"({expected}):", "",
                  md_table(short.rename("n").reset_index().rename(columns={"index": "config"}),
                           {"config": "config", "n": "scored seeds"}, {"n": str})]
    if len(miss):
        lines += ["", md_table(miss, {"run_id": "run_id", "config": "config", "seed": "seed", "status": "status",
                                      "error": "error"}, {"seed": str})]
    lines += [""] + [f"- {note}" for note in rep.notes + rep.results.notes]
    return lines


def render(rep: "Report") -> str:
    """The README.md of a report."""
    r = rep.results
    parts = [f"# Ablation report: {r.study}", "", "## Summary", "", *_summary_section(rep), "",
             "## Key findings", "", *_findings(rep), "",
             *_questions(rep),
             "## Figures", "",
             *_figure(rep, "learning_curves", "Learning curves per factor level (mean return vs env steps)"),
             *_figure(rep, "final_return_by_config", "Final return per config (mean, 95% CI)"),
             *_figure(rep, "main_effects", "Main effects with 95% CIs"),
             *_figure(rep, "interactions", "Interaction plots (marginal means of final return)"),
             *_figure(rep, "gradient_variance", "Gradient variance and SNR vs env steps (log scale)"),
             *_figure(rep, "performance_profile", "Performance profiles of final return"),
             *_figure(rep, "best_run", "The best config's best seed: one greedy evaluation episode"),
             "## Tables", "", "All tables are also in [`tables/`](tables/) as CSV.", "",
             *_tables_section(rep), "## Methods", "", *_methods(rep), "", "## Missing data", "",
             *_missing_section(rep), ""]
    text = "\n".join(parts)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text
