"""The top README of a multi-env study: writes what `across.compute_across` computed (normalization, aggregates,
probability of improvement, tuned values, consistency across envs) and the figures `build` drew for it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations.report import pooled as ag
from ablations.report.load import ENV
from ablations.report.model import Report
from ablations.report.rules import ALPHA, POWER
from ablations.report.text import AGGREGATE_TITLES, fmt, format_p, level_name, md_table


def _ci(lo: float, hi: float) -> str:
    return f"[{fmt(lo)}, {fmt(hi)}]"


def _effect_subject(r: pd.Series) -> str:
    if r["kind"] == "main":
        return f"Using {level_name(r['factor'], r['level'])} instead of {level_name(r['factor'], r['vs'])}"
    return (f"The interaction {r['factor']} × {r['factor2']} ({r['level']} vs {r['vs']}, {r['level2']} vs "
            f"{r['vs2']})")


def findings(rep: Report) -> list[str]:
    """One line per aggregate effect (main effects first, by |estimate|), with its consistency verdict."""
    c = rep.tables.get("consistency", pd.DataFrame())
    if c.empty:
        return ["_(no factors besides env_id)_"]
    c = c.assign(_main=c["kind"] != "main", _abs=-c["estimate"].abs()).sort_values(["_main", "_abs"], kind="stable")
    lines = []
    for _, r in c.iterrows():
        significant = r["p_holm"] < ALPHA and not (r["ci_low"] <= 0 <= r["ci_high"])
        verb = ("raises" if r["estimate"] > 0 else "lowers") if significant else "changes"  # a verb only when shown
        size = fmt(abs(r["estimate"])) if significant else f"{'+' if r['estimate'] >= 0 else '−'}{fmt(abs(r['estimate']))}"
        lines.append(f"- {_effect_subject(r)} {verb} the mean normalized score by {size} "
                     f"{_ci(r['ci_low'], r['ci_high'])} (p_holm {format_p(r['p_holm'])}"
                     f"{'' if significant else ', not significant' + _mdd(rep, r)}): **{r['verdict']}**."
                     + _depends(rep, r))
    return lines


def _mdd(rep: Report, r: pd.Series) -> str:
    """', the smallest effect it could detect: MDD x' for a term of `aggregate_effects` (its minimum detectable
    difference at `rules.POWER` and the family's α), '' if unknown."""
    e = rep.tables.get("aggregate_effects", pd.DataFrame(columns=["term", "mdd"]))
    row = e[e["term"] == r["term"]]
    if row.empty or not np.isfinite(float(row["mdd"].iloc[0])):
        return ""
    return f"; the smallest effect it could detect, MDD at {POWER:.0%} power: {fmt(float(row['mdd'].iloc[0]))}"


def _depends(rep: Report, r: pd.Series) -> str:
    """For a main effect whose factor interacts significantly with another in aggregate: its simple effects."""
    simple = rep.tables.get("aggregate_simple_effects", pd.DataFrame())
    if r["kind"] != "main" or simple.empty:
        return ""
    out = []
    for by, g in simple[(simple["factor"] == r["factor"]) & (simple["level"] == r["level"])].groupby("by", sort=False):
        parts = [f"{'+' if e >= 0 else '−'}{fmt(abs(e))} {_ci(lo, hi)} with {level_name(by, str(bl))}"
                 + ("" if p < ALPHA else " (n.s.)")
                 for bl, e, lo, hi, p in zip(g["by_level"], g["estimate"], g["ci_low"], g["ci_high"], g["p_holm"])]
        out.append(f" It depends on {by} (the interaction is significant): " + " / ".join(parts) + ".")
    return "".join(out)


def render_across(rep: Report, env_reports: dict[str, str]) -> str:
    """The top README of a multi-env study."""

    r, t = rep.results, rep.tables
    counts = r.runs["status"].value_counts()
    envs = list(env_reports)
    factors = [f for f in r.factors if f != ENV]
    agg = t["aggregate"].assign(_v=lambda d: [f"{fmt(a)} {_ci(b, c)}" for a, b, c in
                                              zip(d["estimate"], d["ci_low"], d["ci_high"])])
    wide = agg.pivot(index="config", columns="statistic", values="_v").reindex(
        list(dict.fromkeys(agg["config"])))[list(ag.AGG_METRICS)].reset_index()
    lines = [f"# {r.study}: across environments", "",
             f"- **Environments:** {', '.join(f'[{e}]({p})' for e, p in env_reports.items())} (each has its full "
             "per-env report)",
             "- **Factors:** " + ("; ".join(f"`{f}` ∈ {{{', '.join(r.levels[f])}}}" for f in factors) or "none"),
             f"- **Seeds:** {rep.n_seeds} per config and env; **runs:** {len(r.runs)} ("
             + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ")",
             f"- **Score:** {rep.primary} normalized per env: (score − random) / (reference − random); 0 is a "
             "uniform-random policy, 1 the reference score", "",
             "## Key findings across environments", "",
             "Aggregate effects on the normalized score (mean over envs, seed-paired 95% CI), each with whether it "
             "holds on every env:", "", *findings(rep), "",
             *(_fig(rep, "effects_by_env", "Each main effect per env and in aggregate (normalized score, 95% CI)")),
             "## Normalization", "",
             md_table(t["normalization"], {"env_id": "env", "random_score": "random policy",
                                           "random_episodes": "episodes", "reference": "reference (score 1)",
                                           "reference_source": "reference from"},
                      {"random_episodes": str}), "",
             "## Aggregate scores per config", "",
             "rliable's aggregates of the normalized scores of each config over all envs and seeds, with 95% "
             "stratified seed-block bootstrap CIs:", "",
             md_table(wide, {"config": "config (" + "/".join(factors) + ")",
                             **{m: AGGREGATE_TITLES[m] for m in ag.AGG_METRICS}}, {m: str for m in ag.AGG_METRICS}), "",
             *(_fig(rep, "aggregate_intervals", "Aggregate scores per config, 95% stratified bootstrap CIs")),
             *(_fig(rep, "aggregate_profile", "Performance profiles of the normalized score (all envs), by level")),
             "## Probability of improvement over the reference", "",
             md_table(t["improvement"].assign(_ci=[_ci(a, b) for a, b in zip(t["improvement"]["ci_low"],
                                                                            t["improvement"]["ci_high"])]),
                      {"config": "config", "reference": "reference", "probability": "P(config > reference)",
                       "_ci": "95% CI"}), ""]
    lines += _tuned_lines(rep, env_reports) + _consistency_lines(rep, envs) + _methods_lines(rep)
    return "\n".join(lines)


def _tuned_lines(rep: Report, env_reports: dict[str, str]) -> list[str]:
    """The chosen value per env × config of a tuned study (no lines for an untuned one)."""
    r, t = rep.results, rep.tables
    if "tune_choice" not in t:
        return []
    envs = list(env_reports)
    factors = [f for f in r.factors if f != ENV]
    lines: list[str] = []
    fields = "/".join((r.manifest.get("tune") or {}).get("candidates") or {}) or "tuned value"
    lines += ["## Tuned values", "",
              f"Each env × config trained at its own `{fields}`, chosen on the tuning seeds (stage 1) by the "
              "highest mean " + str((r.manifest.get("tune") or {}).get("metric", "auc")) + "; every number "
              "above and below comes from the evaluation seeds. Each env's report shows the sensitivity curves "
              "(the metric at every candidate) and the runner-up. †: the smallest or largest candidate (the best value may "
              "lie outside the grid).", "",
              md_table(t["tune_choice"], {"config": "config (" + "/".join(factors) + ")",
                                          **{e: f"[{e}]({env_reports[e]})" for e in envs
                                             if e in t["tune_choice"]}}), ""]
    return lines


def _consistency_lines(rep: Report, envs: list[str]) -> list[str]:
    """Each effect in aggregate and per env, with its consistency verdict (no lines without factors)."""
    t = rep.tables
    if "consistency" not in t:
        return []
    lines: list[str] = []
    c = t["consistency"].assign(
        _term=lambda d: d["term"], _ci=lambda d: [_ci(a, b) for a, b in zip(d["ci_low"], d["ci_high"])])
    by = t["effects_by_env"].assign(_v=lambda d: [f"{fmt(a)} {_ci(b, h)}" for a, b, h in
                                                  zip(d["estimate"], d["ci_low"], d["ci_high"])])
    per_env = by.pivot(index="term", columns="env_id", values="_v")
    for e in envs:
        c[e] = c["term"].map(per_env[e]) if e in per_env else ""
    lines += ["## Consistency across environments", "",
              "Each effect in aggregate and per env (normalized score, seed-paired 95% t-intervals); "
              "*same sign*: envs whose estimate has the aggregate's sign; *reverses on*: envs whose CI lies "
              "wholly on the other side; Q: Cochran's heterogeneity test across envs.", "",
              md_table(c, {"_term": "effect", "estimate": "aggregate", "_ci": "95% CI", **{e: e for e in envs},
                           "n_same_sign": "same sign", "reverses_on": "reverses on", "q_p": "Q p",
                           "i_squared": "I²", "verdict": "verdict"},
                       {"n_same_sign": lambda x: f"{x}/{len(envs)}", "q_p": lambda p: format_p(float(p))}), ""]
    return lines


def _methods_lines(rep: Report) -> list[str]:
    """The Methods section of the multi-env README."""
    t = rep.tables
    lines: list[str] = []
    lines += ["## Methods (across environments)", "",
              f"- **Normalization.** Per env, z = (score − random) / (reference − random) on the primary metric "
              f"({rep.primary}). *random*: the mean return of a uniform-random policy (actions drawn uniformly from "
              "the action space) over complete episodes, from its own seeded stream "
              "(`ablations/envs/random_score.py`), " + str(t["normalization"]["random_source"].iloc[0]) + ". "
              "*reference*: the study's `[report] references`, else the env's registered `reward_threshold` "
              "(gymnasium's solved score), else the best config's mean (see the table).",
              "- **Strata, not a factor.** env_id levels are strata: each env has its own report (its own effects, "
              "comparisons and verdicts, on raw scores) and the aggregate uses normalized scores only.",
              "- **Aggregates.** rliable's definitions on the [seeds × envs] matrix of a config: IQM (25%-trimmed "
              "mean of all runs), mean and median (over envs of the per-env mean), optimality gap (1 − mean of "
              "min(z, 1)), probability of improvement (mean over envs of P(X > Y) + ½P(X = Y)); each equals "
              "`rliable.metrics` on the same matrix (tested).",
              f"- **Stratified seed-block bootstrap.** {rep.n_resamples:,} resamples; each draws S seeds with "
              "replacement per env (a stratum), independently across envs, and applies the same draw to every "
              "config, so comparisons stay paired by seed; percentile intervals.",
              "- **Aggregate effects.** The cell-means contrasts of the per-env reports (seed-paired t-intervals, "
              "Holm per family), computed on each (config, seed)'s mean normalized score over envs; seeds that did "
              "not run on every env are left out.",
              "- **Consistency.** Per env, the same contrasts on that env's normalized scores. Cochran's Q = "
              "Σ w_e (θ_e − θ̄)² with w_e = 1/SE_e², χ² with E − 1 df, and I² = max(0, (Q − df)/Q); the per-env "
              "estimates are independent (different runs). An effect is *consistent* when no env reverses it and "
              f"Q's p ≥ {ALPHA:g}; with few envs Q has little power, so the per-env CIs are shown beside it.", ""]
    return lines


def _fig(rep: Report, name: str, caption: str) -> list[str]:
    if name not in rep.figures:
        return []
    return [f"![{caption}]({rep.figures[name]})", "", f"*{caption}* ([SVG]({rep.figures[name][:-4]}.svg))", ""]
