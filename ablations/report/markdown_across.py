"""The top README of a multi-env study: writes what `across.compute_across` computed (normalization, aggregates,
probability of improvement, tuned values, consistency across envs) and the figures `build` drew for it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations.report import anchors
from ablations.report import pooled as ag
from ablations.report.load import ENV
from ablations.report.model import Report
from ablations.report.rules import ALPHA, POWER
from ablations.report.text import AGGREGATE_TITLES, fmt, format_p, level_name, md_table
from ablations.report.verdicts import verdict_sentence


def _ci(lo: float, hi: float) -> str:
    return f"[{fmt(lo)}, {fmt(hi)}]".replace("-", "−")


def _effect_subject(r: pd.Series) -> str:
    if r["kind"] == "main":
        return f"Using {level_name(r['factor'], r['level'])} instead of {level_name(r['factor'], r['vs'])}"
    return f"The interaction {r['term']} ({r['contrast']})"


def findings(rep: Report) -> list[str]:
    """One line per aggregate effect (main effects first, by |estimate|): the aggregate verdict (a main effect that
    interacts is read in every context of its partners, `verdicts.verdict_sentence`), then where it holds per env
    (each env's own Holm: `perenv.env_claims`) and its heterogeneity across envs (Cochran's Q, I²)."""
    c = rep.tables.get("consistency", pd.DataFrame())
    if c.empty:
        return ["_(no factors besides env_id)_"]
    c = c.assign(_main=c["kind"] != "main", _abs=-c["estimate"].abs()).sort_values(["_main", "_abs"], kind="stable")
    v = rep.tables.get("aggregate_verdicts", pd.DataFrame(columns=["factor", "level"]))
    ctx = rep.tables.get("aggregate_contexts", pd.DataFrame())
    lines = []
    for _, r in c.iterrows():
        mine = (v[(v["factor"] == r["factor"]) & (v["level"].astype(str) == str(r["level"]))]
                if r["kind"] == "main" else v.iloc[:0])
        if len(mine):
            head = verdict_sentence(mine.iloc[0].copy().replace({mine.iloc[0]["metric"]: SCORE}), ctx, brief=True)
        else:
            head = (f"{_effect_subject(r)}: {_signed(r['estimate'])} {_ci(r['ci_low'], r['ci_high'])} on "
                    f"{SCORE} (p_holm {format_p(r['p_holm'])}): {_class_text(r)}.")
        lines.append(f"- {head} **Per env** (each env's own Holm): {r['claim']}; {r['heterogeneity']}.")
    return lines


SCORE = "the mean normalized score"


def _signed(x: float) -> str:
    return ("+" if x > 0 else "−" if x < 0 else "") + fmt(abs(x)) if np.isfinite(x) else "n/a"


def _class_text(r: pd.Series) -> str:
    """The aggregate class of a consistency row in words (TOST at its margin; undecided with its MDD)."""
    v = r["aggregate_verdict"]
    if v in ("helps", "hurts"):
        return f"it {v} in aggregate"
    ci90 = f"90% CI {_ci(r['ci90_low'], r['ci90_high'])}"
    if v == "equivalent":
        return f"equivalent to no effect within ±{fmt(r['margin'])} in aggregate ({ci90})"
    mdd = f", MDD at {POWER:.0%} power {fmt(r['mdd'])}" if np.isfinite(r["mdd"]) else ""
    return f"undecided in aggregate ({ci90} not inside ±{fmt(r['margin'])}{mdd})"


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
             *_anchor_lines(rep, env_reports),
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


def _anchor_lines(rep: Report, env_reports: dict[str, str]) -> list[str]:
    """Each env's external anchors beside its best config (`report.anchors`), and the per-env anchor figures."""
    if "anchors" not in rep.tables:
        return []
    lines = ["## External anchors", "", anchors.NOTE, "", *anchors.table_lines(rep.tables["anchors"])]
    for env in env_reports:
        if env in set(rep.tables["anchors"]["env_id"]) and rep.figures.get(f"anchor_curve:{env}"):
            lines += [f"![{env}: our best config beside the external anchor]({rep.figures[f'anchor_curve:{env}']})",
                      ""]
    return lines


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
              "(the metric at every candidate) and the runner-up. †: the smallest or largest candidate (the best "
              "value may lie outside the grid).", "",
              md_table(t["tune_choice"], {"config": "config (" + "/".join(factors) + ")",
                                          **{e: f"[{e}]({env_reports[e]})" for e in envs
                                             if e in t["tune_choice"]}}), ""]
    return lines


def _consistency_lines(rep: Report, envs: list[str]) -> list[str]:
    """Each effect in aggregate and per env, with its class per env and the claim (no lines without factors)."""
    t = rep.tables
    if "consistency" not in t:
        return []
    c = t["consistency"].assign(_ci=lambda d: [_ci(a, b) for a, b in zip(d["ci_low"], d["ci_high"])])
    lab = t["env_labels"].assign(_v=lambda d: [f"{fmt(a)} {_ci(b, h)} {v}" for a, b, h, v in
                                               zip(d["estimate"], d["ci_low"], d["ci_high"], d["verdict"])])
    per_env = lab.pivot(index="contrast", columns="env_id", values="_v")
    for e in envs:
        c[e] = c["contrast"].map(per_env[e]) if e in per_env else ""
    return ["## Consistency across environments", "",
            "Each effect in aggregate and per env (normalized score, seed-paired 95% t-intervals), each env's class "
            "under its own Holm (helps / hurts: significant; equivalent: TOST within that env's margin; else "
            "undecided); Q: Cochran's heterogeneity test across envs, I² the share of variation beyond chance.", "",
            md_table(c, {"contrast": "effect", "estimate": "aggregate", "_ci": "95% CI",
                         "aggregate_verdict": "aggregate class", **{e: e for e in envs}, "q_p": "Q p",
                         "i_squared": "I²", "claim": "per env"},
                     {"q_p": lambda p: _p(p)}), ""]


def _p(p: object) -> str:
    """A p-value for a table cell: "0.03", "< 0.001" (never "= < 0.001")."""
    return format_p(float(p)).removeprefix("= ")


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
              "- **Aggregate verdicts.** As in each env's report: a main effect is averaged over another factor only "
              "where no interaction of any order involving both is significant in aggregate; otherwise it is read "
              "in every combination of its partners' levels. Each aggregate effect is classed helps / hurts "
              "(p_holm < α), equivalent (TOST at the margin: the study's `[report] margin` rule on the pooled "
              "within-config SD of the per-seed mean normalized score), else undecided with its MDD.",
              "- **Per env, each env's own correction.** Per env, the same contrasts on that env's normalized scores "
              "(their p-values are those of the env's own report: normalization is affine), classed under that "
              "env's own Holm families (its report's main effects; interactions), TOST at that env's margin. "
              "\"Helps / hurts on all envs\" is said only when it is significant on every env, \"equivalent on all "
              "envs\" only when every env is equivalent; otherwise the claim lists each class's envs.",
              "- **Heterogeneity, for every aggregate effect.** Cochran's Q = Σ w_e (θ_e − θ̄)² with w_e = 1/SE_e², "
              "χ² with E − 1 df, and I² = max(0, (Q − df)/Q); the per-env estimates are independent (different "
              f"runs). Q's p < {ALPHA:g} says the size differs across envs; a larger p with few envs is not evidence "
              "that the effect is the same on every env, and the text says so.", ""]
    return lines


def _fig(rep: Report, name: str, caption: str) -> list[str]:
    if name not in rep.figures:
        return []
    return [f"![{caption}]({rep.figures[name]})", "", f"*{caption}* ([SVG]({rep.figures[name][:-4]}.svg))", ""]
