"""The report's text: `render(report) -> str` (GitHub-flavoured markdown) of a single-env report.

Owns wording only (numbers and tables as `text` formats them): every number comes from the tables `build.compute`
made. Nothing here reads the clock, so the same tables give the same README (the only times shown are the
manifest's).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ablations.report.text import fmt, format_p, md_table
from ablations.report.markdown_tuning import tuning_methods, tuning_section
from ablations.report.anchors import section as anchors_section
from ablations.report.markdown_sequential import findings_note, sequential_methods, sequential_section, summary_line
from ablations.report.model import Report
from ablations.report.questions import answers, key_findings
from ablations.train.scores import SCORE_METHODS, THRESHOLD_METHODS, UNIT_WORDS
from ablations.report.equivalence import DEFAULT_MARGIN, MARGIN_METHODS
from ablations.report.intervals import INTERVAL_METHODS
from ablations.report.metrics import CENSORED, METRICS
from ablations.report.rules import POWER


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
        f"- **Budget:** {fmt(rep.budget)} {UNIT_WORDS[rep.budget_unit]} per run",
        f"- **Factors:** {factor_desc} ({len(r.configs)} configs)",
        f"- **Seeds:** {rep.n_seeds} per config (median over configs of finished runs)",
        f"- **Runs:** {len(runs)} in total; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())),
        f"- **Total environment steps:** {total_steps:,.0f}",
        f"- **Wall time:** {_duration(wall)}"
        + (f" (started {m['started']}, finished {m['finished']})" if m.get("started") and m.get("finished") else ""),
        f"- **Reference config:** `{r.reference_label}`, {r.reference_note}",
        *summary_line(rep),
    ]
    rp = rep.tables.get("random_policy")
    if rp is not None and len(rp):
        lines.insert(1, _random_policy_line(rp.iloc[0]))
    if m.get("git_commit"):
        lines.append(f"- **Git commit:** `{m['git_commit']}`" + (f" on host `{m['host']}`" if m.get("host") else ""))
    if versions:
        lines.append("- **Versions:** " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return lines


def _random_policy_line(row: pd.Series) -> str:
    """The Summary's line on the uniform-random policy (a row of the table `random_policy`)."""
    ci = (f", {row['ci_level']:.0%} CI {_ci(row)} (t-interval)" if np.isfinite(row["ci_low"])
          else " (one episode: no interval)")
    return (f"- **Uniform-random policy:** mean return {fmt(row['mean'])}{ci} over {row['episodes']} episodes "
            f"(seed {row['seed']}; measured by `ablations run` before training, `random_scores.csv`): the dashed "
            "line of the learning curves")


def _findings(rep: "Report") -> list[str]:
    return [f"On {METRICS[rep.primary][0].split(' (')[0]} (the primary metric), ranked:", "",
            *key_findings(rep.tables, rep.primary)]


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
    """The "## Tables" subsections, in order: aliases, per-config summaries, comparisons, effects, power and
    gradient variance (each only when its table has rows)."""
    return [*_alias_lines(rep), *_per_config_lines(rep), *_comparison_lines(rep), *_effect_lines(rep),
            *_power_lines(rep), *_variance_lines(rep)]


def _alias_lines(rep: "Report") -> list[str]:
    """Configs with bit-identical scores, one group a line."""
    t = rep.tables
    lines: list[str] = []
    al = t.get("aliases", pd.DataFrame())
    groups = al[al["n_members"] > 1].drop_duplicates("alias_of") if len(al) else al
    if len(groups):
        lines += ["### Aliased configs", "",
                  "These configs gave bit-identical scores on every seed (the same computation under common random "
                  "numbers); tables show each group once, under its first member, and comparisons test it once:", "",
                  *[f"- {g}" for g in groups["group"]], ""]
    return lines


def _per_config_lines(rep: "Report") -> list[str]:
    """Per metric, the summary per config (time to threshold: the censored table)."""
    t = rep.tables
    lines: list[str] = []
    for metric in rep.metrics:
        if metric in CENSORED:
            th = t["threshold"]
            if "alias_of" in t["summary"]:
                th = th[th["config"].isin(set(t["summary"]["alias_of"]))]
            lines += [f"### Time to threshold ({fmt(rep.threshold)}) per config: censored at the budget", "",
                      md_table(_with_ci(th), {"config": "config", "n": "n", "n_reached": "reached",
                                              "km_median": "KM median steps", "rmst": "RMST (steps)",
                                              "_ci": "95% CI", "p_logrank_holm": "log-rank p_holm vs ref"},
                               {"n": str, "n_reached": str, "p_logrank_holm": _p,
                                "km_median": lambda x: "> budget" if not np.isfinite(x) else fmt(x)}), ""]
            continue
        s = t["summary"][t["summary"]["metric"] == metric]
        if "alias_of" in s:
            names = s.groupby("alias_of", sort=False)["config"].agg(" ≡ ".join)
            s = s[s["config"] == s["alias_of"]].assign(config=lambda d, names=names: d["config"].map(names))
        s = _with_ci(s)
        lines += [f"### {METRICS[metric][0].capitalize()} per config", "",
                  md_table(s, {"config": "config", "n": "n", "mean": "mean", "_ci": "95% CI", "iqm": "IQM",
                               "median": "median", "std": "SD"}, {"n": str}), ""]
    return lines


def _comparison_lines(rep: "Report") -> list[str]:
    """The comparisons on the primary metric (paired by seed)."""
    t = rep.tables
    ref = rep.results.reference_label
    lines: list[str] = []
    c = t["comparisons"]
    if len(c):
        c = _with_ci(c)
        title = "All pairs" if rep.all_pairs else f"Each config vs the reference `{ref}`"
        for metric in [m for m in (rep.primary,) if m in rep.metrics]:
            shown = c[c["metric"] == metric]
            if rep.all_pairs:  # up to 1,128 pairs: show the smallest p_holm first, the rest stay in the CSV
                shown = shown.sort_values(["p_holm", "config", "reference"], kind="stable")
            lines += [f"### {title}: {METRICS[metric][0].split(' (')[0]} (paired by seed)", "",
                      md_table(shown,
                               {"config": "config", "reference": "vs", "n_pairs": "pairs", "diff": "difference",
                                "_ci": "95% CI", "p_holm": "p_holm (paired t)", "p_rank_holm": "p_holm (Wilcoxon)",
                                "mdd": "MDD", "prob_improvement": "P(improve)"},
                               {"n_pairs": str, "p_holm": _p, "p_rank_holm": _p},
                               max_rows=60 if rep.all_pairs else None), ""]
    return lines


def _effect_lines(rep: "Report") -> list[str]:
    """Main effects, interactions, simple effects and the ANOVA."""
    t = rep.tables
    lines: list[str] = []
    e = t["effects"]
    if len(e):
        main = _with_ci(e[e["kind"] == "main"])
        lines += ["### Main effects (level vs first level, averaged over the other factors)", "",
                  md_table(main, {"metric": "metric", "factor": "factor", "level": "level", "vs": "vs",
                                  "estimate": "effect", "_ci": "95% CI", "p_holm": "p_holm", "mdd": "MDD",
                                  "hedges_g": "g"}, {"p_holm": _p}), ""]
        inter = _with_ci(e[(e["kind"] == "interaction") & (e["metric"] == rep.primary)])
        lines += [f"### Interactions on {METRICS[rep.primary][0].split(' (')[0]} (differences of differences, every "
                  "order)", "",
                  md_table(inter, {"contrast": "contrast", "estimate": "interaction", "_ci": "95% CI",
                                   "p_holm": "p_holm"}, {"p_holm": _p}), ""]
    lines += _context_lines(rep)
    a = t["anova"]
    if len(a):
        lines += ["### Factorial ANOVA (Type II; seed as a block, every interaction)", "",
                  md_table(a, {"metric": "metric", "term": "term", "df": "df", "F": "F", "p": "p",
                               "partial_eta_sq": "partial η²"}, {"df": lambda x: f"{x:.0f}", "p": _p}), ""]
    return lines


def _context_lines(rep: "Report") -> list[str]:
    """Every factor level's effect in every combination of the other factors (table `contexts`), summarized, and
    the forests of the verdicts that are read in contexts."""
    cs = rep.tables.get("context_summary", pd.DataFrame())
    if cs is None or not len(cs):
        return []
    name = METRICS[rep.primary][0].split(" (")[0]
    lines = [f"### Effects on {name} in every context (each level vs the reference within every combination of the "
             "other factors)", "",
             "Seed-paired cell differences, Holm over each factor's contexts, TOST at the margin "
             f"±{fmt(rep.margin)}; every context is in table `contexts`:", "",
             md_table(cs, {"factor": "factor", "level": "level", "vs": "vs", "k": "contexts", "helps": "helps",
                           "hurts": "hurts", "equivalent": "equivalent", "undecided": "undecided"},
                      {c: str for c in ("k", "helps", "hurts", "equivalent", "undecided")}), ""]
    for key in [k for k in rep.figures if k.startswith("contexts_")]:
        lines += _figure(rep, key, f"{key[len('contexts_'):].replace('_', ' = ', 1)}: the effect in each combination "
                                   "of its interaction partners (95% CIs; colour: the class; grey band: ±margin)")
    return lines


def _power_lines(rep: "Report") -> list[str]:
    """Minimum detectable differences and seeds needed."""
    t = rep.tables
    lines: list[str] = []
    if len(t["power"]):
        lines += ["### Power", "",
                  "Minimum detectable difference of the comparisons with the reference (paired t-test, "
                  f"power {POWER:g}, at the family-wise α: α/m per test, m tests per metric), from each "
                  "comparison's own SD of "
                  "per-seed differences:", "",
                  md_table(t["power"], {"metric": "metric", "n_tests": "m", "alpha_per_test": "α/m",
                                        "n_pairs": "pairs", "mdd_sd": "MDD (SD units)", "mdd_median": "median MDD",
                                        "mdd_min": "min MDD", "mdd_max": "max MDD"},
                           {"n_tests": str, "n_pairs": str, "alpha_per_test": lambda x: f"{x:.2g}"}), "",
                  "Seeds needed to detect an effect of d SDs of the per-seed differences at the same α/m:", "",
                  md_table(t["seeds_needed"], {"metric": "metric", "effect_size": "d",
                                               "n_seeds_needed": "seeds"}, {"n_seeds_needed": str}), ""]
    return lines


def _variance_lines(rep: "Report") -> list[str]:
    """Gradient variance relative to vanilla REINFORCE (overall checkpoint)."""
    t = rep.tables
    lines: list[str] = []
    if "variance_ratio" in t and len(t["variance_ratio"]):
        vr = t["variance_ratio"]
        vr = _with_ci(vr[vr["update"] == -1].sort_values("ratio", kind="stable"))
        lines += ["### Gradient variance relative to vanilla REINFORCE", "",
                  "Geometric-mean ratio of total gradient variance to the vanilla estimator's, paired by run and "
                  "checkpoint; only estimators on the same scale (no normalization):", "",
                  md_table(vr, {"estimator": "estimator", "n": "runs", "ratio": "variance ratio", "_ci": "95% CI"},
                           {"n": str}), ""]
    return lines


def _methods(rep: "Report") -> list[str]:
    """The Methods section's lines: scores and design, then the tests, then figures and references."""
    return [*_methods_scores(rep), *_methods_tests(rep)]


def _axis_name(rep: "Report") -> str:
    """The curves' x-axis in the Methods heading: env-step (a budget in env steps) or episode (`total_episodes`)."""
    return "episode" if rep.budget_unit == "episodes" else "env-step"


def _methods_scores(rep: "Report") -> list[str]:
    """Methods: the curves and scores, the design, summaries, the bootstrap, comparisons and factor effects."""
    seed = rep.seed
    grid = rep.grid
    return [
        f"- **Learning curves on an {_axis_name(rep)} axis.** Each run's curve is drawn on a grid of {len(grid)} "
        f"equally spaced points from {fmt(grid[0])} to {fmt(grid[-1])} {UNIT_WORDS[rep.budget_unit]}: a point is the "
        "mean return of the "
        "run's episodes in the updates that end in that grid cell (each episode weighted equally; held from the "
        "previous cell when no update ends there), so configs are compared at equal data, not equal updates.",
        f"- **Scores per run.** {SCORE_METHODS} *Steps to threshold* (threshold {fmt(rep.threshold)}, from "
        f"{rep.threshold_source}): {THRESHOLD_METHODS} *Eval return* is copied from runs.csv. The primary metric, on "
        f"which the key findings and verdicts are read, is *{rep.primary}* (`[report] primary` in the study file; "
        "default final return).",
        "- **Design: blocked by seed.** Seed s of every config shares its initialization and environment streams "
        "(common random numbers), so runs with the same seed are correlated across configs. The seed is the block "
        "and the unit of resampling: every bootstrap across configs (marginal means, learning-curve bands, "
        "performance profiles) resamples seed indices jointly for all configs, and every comparison pairs runs by "
        "seed. Configs with bit-identical scores on every seed are aliases (the same computation); they are named "
        "above, shown once, and compared once.",
        "- **Summaries.** Per config (its seeds are independent): n, mean, IQM (`scipy.stats.trim_mean`, 25% cut "
        f"each side), median, SD (ddof = 1), and the {rep.level:.0%} t-interval of the mean. {INTERVAL_METHODS}",
        "- **Small-sample expansion.** A bootstrap interval of a mean is too narrow at small n (a nominal 95% BCa "
        "interval covers about 90% at n = 10). The bootstrap intervals (marginal means, bands, profiles, RMST, "
        "gradient quality) are therefore computed at the level whose normal quantile is r·t_{ν, 0.975} (Hesterberg's "
        "expanded percentile), with r = √(n/(n−1)) and ν = n − 1 (n = runs for one config, seeds for a seed-block "
        "bootstrap). `ci_level` records the nominal level; `ci_method` says `-expanded`.",
        f"- **Random numbers.** Every bootstrap draws from `numpy.random.default_rng(SeedSequence([{seed}, "
        "hash(key)]))`, with the key naming the table and the group (e.g. metric and config), so a table does not "
        "depend on which other tables or groups were computed, and the same inputs give byte-identical tables.",
        f"- **Comparisons.** {'Every pair of configs' if rep.all_pairs else 'Every config vs the reference'}, paired "
        "by seed over the seeds both have: mean of the per-seed differences, its t-interval and the paired t-test "
        "(`scipy.stats.ttest_1samp` on the differences), so a p-value below α and a CI excluding 0 always agree; the "
        "Wilcoxon signed-rank test beside it. Configs without shared seeds fall back to Welch's test with its own "
        "interval. No test is made when the differences are constant. Holm's correction across the comparisons of "
        "one metric. Hedges' g (pooled SD, exact J) and P(X > Y) + ½P(X = Y) over all pairs of runs describe size.",
        "- **Factor effects.** The cell-means model of the full factorial: a main effect is the difference between "
        "a level and the factor's first level, averaged with equal weight over the level combinations of the other "
        "factors; an interaction of k factors is the k-fold difference of differences, for every order up to all "
        "factors. Each contrast's standard error comes from the seed-blocked model: the per-seed contrast (its "
        "seed-cluster influence when runs are missing), with S − 1 df; the CI is the t-interval and the p-value the "
        "t-test of that same SE. Holm within each family of a metric (main effects; interactions; simple effects). "
        "g = contrast / pooled within-cell SD × J (descriptive).",
        "- **Verdicts at every order.** A factor level's verdict averages over another factor only where no "
        "interaction of any order involving both is significant (Holm within the interaction family); every factor "
        "that appears with it in a significant interaction is a *partner*, and the verdict is then read in every "
        "combination of the partners' levels (averaged per seed over the other factors): a seed-paired t-test per "
        "context, Holm over the factor's contexts (contexts that are the same runs counted once), and a class per "
        "context: *helps* / *hurts* (significant, by sign), *equivalent* (TOST significant after Holm), else "
        "*undecided* (with its MDD at the family-wise α). Table `contexts` holds every level in every combination of "
        "all the other factors, `context_summary` the counts. Without partners the main effect is classed the same "
        "way (TOST from its own SE and df, Holm over the main effects).",
        f"- **Equivalence margin.** ±{fmt(rep.margin)} on {rep.primary}: "
        f"{(rep.margin_rule or DEFAULT_MARGIN).describe()}"
        f"{_margin_source(rep)}. "
        f"{MARGIN_METHODS}",
    ]


def _methods_tests(rep: "Report") -> list[str]:
    """Methods: ANOVA, power, time to threshold, gradient quality, figures, the random policy, the reference."""
    r = rep.results
    return [
        "- **ANOVA.** `statsmodels` OLS on per-seed scores with seed as a block and every main effect and interaction "
        "of the factors (a saturated cell-means model plus blocks), Type II sums of squares (`anova_lm(typ=2)`); "
        "with a complete balanced design the terms are orthogonal and the type does not matter. Its F-tests pool the "
        "seed × cell residual (sphericity); the contrasts above do not need that assumption. Partial η² = SS_term / "
        "(SS_term + SS_residual). Skipped when the design is rank-deficient.",
        f"- **Power.** `statsmodels.stats.power.TTestPower` (paired, two-sided, power {POWER:g}) at the family-wise "
        "α: α/m per test for m tests (Holm's first, strictest step), with each comparison's own SD of per-seed "
        "differences; "
        "each effect's MDD uses its own SE and family.",
        "- **Time to threshold.** A right-censored outcome: Kaplan–Meier curves and medians (`scipy.stats.ecdf` on "
        "`scipy.stats.CensoredData`), the restricted mean time to threshold up to the budget (RMST, the area under "
        "the KM curve; with every censoring at the budget it equals the mean of min(T, budget), whose bootstrap CI "
        "over runs is shown), and log-rank tests against the reference (`scipy.stats.logrank`), Holm-corrected with "
        "aliased configs counted once (they give the same test). The KM median convention is stated with the "
        "threshold rule under Scores per run. "
        "It is never put through t-tests or the ANOVA; with no event in either arm no test is made.",
        "- **Gradient quality.** Per estimator, each run's `snr` and `cos_to_reference` are averaged over that "
        "run's own checkpoints, then over runs, with a percentile bootstrap CI over runs (runs resampled jointly for "
        "all estimators, so comparisons are paired). The relative squared bias is a ratio of such means: the mean "
        "over runs of each run's mean bias_sq_norm over the mean over runs of each run's mean mean_sq_norm of the "
        "unbiased reference full/loo/none/0 (unnormalized estimators only: a normalized one is on another scale), "
        "the bootstrap recomputing the ratio in each resample. Both are unbiased estimates that can be negative (a "
        "run's ‖E ĝ_ref‖² estimate is, where the gradient is small next to its noise), so a per-run ratio would flip "
        "sign and explode; the pooled one does not. The relative bias is √max(·, 0) of the ratio and of each CI end; "
        "a CI reaching 0 reads \"indistinguishable from 0\", a resample with a non-positive pooled ‖E ĝ_ref‖² makes "
        "the upper end ∞. The variance ratio to the vanilla estimator "
        "(full/none/none/0) is exp(mean over runs of log(var / var_vanilla)), paired by run and checkpoint, and only "
        "for estimators on the same scale (no normalization). The per-checkpoint table `gradvar` (mean over the runs "
        "that reached each checkpoint) feeds the figure only.",
        *(["- **GAE(λ).** The probes measure `gae` (ψ_t A^λ_t: with the exact value it estimates what `rtg` does, "
           "for every λ) and `gae_gpomdp` (ψ_t γ^t A^λ_t: ∇J_γ with the exact value) at each λ on the same episodes "
           "as every other estimator, with the critic fitted to G_t (the run's own where it has one, else "
           "cross-fitted) and truncation treated as termination. Table `gae_lambda_curve`, per level, λ and "
           "checkpoint: the relative bias against the unbiased reference (√ of the ratio of the means over runs of "
           "bias_sq_norm and of the reference's ‖E ĝ‖², as above) and the variance relative to the reference's "
           "(geometric mean over runs of total_var / the reference's), with percentile bootstrap CIs over runs; "
           "unnormalized estimators, episode aggregation, β = 0."] if "gae_lambda_curve" in rep.tables else []),
        "- **Figures.** Bands and error bars are the intervals in the tables (no resampling while drawing); colours "
        "from seaborn's colour-blind palette. Learning curves and performance profiles pool runs over the other "
        "factors' levels.",
        *(["- **Uniform-random policy.** Actions drawn uniformly from the action space for complete episodes, from "
           "a seeded stream of its own (`ablations/envs/random_score.py`; `[report] random_episodes` and `seed`), "
           f"before training; its mean return with the t-interval mean ± t_{{K−1, {0.5 + rep.level / 2:g}}}·SD/√K "
           "over the K episodes (SD with ddof = 1). Table `random_policy`."] if "random_policy" in rep.tables else []),
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
    unit = {"env_steps": "env steps"}.get(rep.budget_unit, UNIT_WORDS[rep.budget_unit])  # published captions' words
    curves = (f"Learning curves per factor level (mean return vs {unit}; seed-block "
              "bootstrap bands"
              + ("; dashed: the uniform-random policy's mean return)" if "random_policy" in rep.tables else ")"))
    parts = [f"# Ablation report: {r.study}", "", "## Summary", "", *_summary_section(rep), "",
             "## Key findings", "", *findings_note(rep), *_findings(rep), "",
             *sequential_section(rep),
             *_questions(rep),
             *tuning_section(rep),
             *anchors_section(rep),
             "## Figures", "",
             *_figure(rep, "learning_curves", curves),
             *_figure(rep, "final_return_by_config", "Final return per config (mean, 95% CI)"),
             *_figure(rep, "main_effects", "Main effects with 95% CIs"),
             *_figure(rep, "interactions", "Interaction plots (marginal means of final return)"),
             *_figure(rep, "gradient_variance", "Gradient variance and SNR vs env steps (log scale)"),
             *_figure(rep, "gae_lambda", "GAE(λ): relative bias and variance vs λ, per checkpoint"),
             *_figure(rep, "performance_profile", "Performance profiles of final return"),
             *_figure(rep, "time_to_threshold", "Time to threshold: Kaplan–Meier curves per factor level"),
             *_figure(rep, "best_run", "The best config's best seed: one greedy evaluation episode"),
             "## Tables", "", "All tables are also in [`tables/`](tables/) as CSV.", "",
             *_tables_section(rep), "## Methods", "", *_methods(rep),
             *tuning_methods(rep), *sequential_methods(rep), "", "## Missing data", "",
             *_missing_section(rep), ""]
    text = "\n".join(parts)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def _margin_source(rep: Report) -> str:
    """Where the equivalence margin came from, for Methods."""
    if rep.margin_rule is not None and rep.margin_rule != DEFAULT_MARGIN:
        return " (the study's `[report] margin`)"
    return " (the default)"
