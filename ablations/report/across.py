"""The report of a multi-env study (`env_id` swept): env levels are strata, not an ablation factor.

`build.build_report` writes one full per-study report per env (`envs/<env_id>/README.md`, the same pipeline on that
env's runs: `env_subset`) and then the top README from this module: normalized scores (`aggregate`), the aggregate
tables (`compute_across`), their figures (`draw_across`) and text (`render_across`). The random-policy scores come
from `results/<study>/random_scores.csv` (measured by `ablations run` before training); if that file is absent the
report measures them itself with the same function and defaults, and says so.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ablations.report import aggregate as ag
from ablations.report import plots
from ablations.report.effects import fmt, format_p, level_name
from ablations.report.load import ENV, Results, choose_reference, config_label, restrict, study_spec
from ablations.report.model import Report

TITLES = {"iqm": "IQM", "mean": "mean", "median": "median", "optimality_gap": "optimality gap"}


def env_levels(results: Results) -> list[str]:
    """The study's envs in level order when `env_id` is a factor with two or more levels, else []."""
    return list(results.levels[ENV]) if ENV in results.factors and len(results.levels[ENV]) > 1 else []


def env_subset(results: Results, env: str, threshold: float | None) -> Results:
    """The results of one env as a single-env study (env_id dropped from the factors, configs relabelled)."""
    factors = [f for f in results.factors if f != ENV]
    levels = {f: results.levels[f] for f in factors}
    runs = results.runs[results.runs[ENV] == env].copy()
    runs["config"] = [config_label(r, factors) for r in runs[factors].to_dict("records")] if factors else "all"
    manifest = copy.deepcopy(results.manifest)
    spec = manifest.setdefault("study", {})
    spec["name"] = f"{results.study} / {env}"
    spec["factors"] = {k: v for k, v in (spec.get("factors") or {}).items() if k != ENV}
    spec["fixed"] = {**(spec.get("fixed") or {}), ENV: env, **(spec.get("env") or {}).get(env, {})}
    report = dict(spec.get("report") or {})
    report.pop("threshold", None)
    if threshold is not None:
        report["threshold"] = threshold
    spec["report"] = report
    reference, note = choose_reference(runs, factors, levels, manifest)
    return dataclasses.replace(restrict(results, runs, factors), study=f"{results.study}/{env}", manifest=manifest,
                               reference=reference, reference_note=note, notes=[])


def random_scores(results: Results, envs: list[str]) -> tuple[pd.DataFrame, str]:
    """(random_scores.csv or a fresh measurement, where it came from)."""
    path = results.path / "random_scores.csv"
    if path.exists():
        df = pd.read_csv(path)
        if set(envs) <= set(df["env_id"]):
            return df, f"measured by `ablations run` before training (`{path.name}`)"
    from ablations.study.random_scores import random_scores_table

    report = study_spec(results.manifest).get("report") or {}
    from ablations.evaluate.random_policy import DEFAULT_EPISODES

    df = random_scores_table(envs, int(report.get("random_episodes", DEFAULT_EPISODES)), int(report.get("seed", 0)))
    return df, "measured by `ablations report` (the results have no random_scores.csv)"


def references(results: Results, envs: list[str]) -> dict[str, float]:
    report = study_spec(results.manifest).get("report") or {}
    refs = report.get("references") or {}
    return {e: float(refs[e]) for e in envs if e in refs}


def env_reference(results: Results, env: str, rs: pd.DataFrame) -> float | None:
    """The score an env's own report uses as its threshold: the study's reference for it, else reward_threshold."""
    refs = references(results, [env])
    if env in refs:
        return refs[env]
    row = rs[rs["env_id"] == env]
    value = float(row["reward_threshold"].iloc[0]) if len(row) and "reward_threshold" in row else np.nan
    return value if np.isfinite(value) else None


def compute_across(results: Results, reps: dict[str, Report], rs: pd.DataFrame, random_source: str) -> Report:
    """The aggregate tables from the per-env reports' scores; returned as a `Report` whose tables are the aggregate
    ones (normalization, scores, aggregate, improvement, aggregate_effects, effects_by_env, consistency,
    aggregate_profile)."""
    envs = list(reps)
    first = reps[envs[0]]
    metric = first.primary
    factors = [f for f in results.factors if f != ENV]
    levels = {f: results.levels[f] for f in factors}
    scores = pd.concat([r.tables["scores"][["run_id", "config", "seed", *factors, metric]].assign(env_id=e)
                        for e, r in reps.items()], ignore_index=True).rename(columns={metric: "value"})
    best = {e: float(scores[scores["env_id"] == e].groupby("config")["value"].mean().max()) for e in envs}
    thresholds = {e: (float(v) if np.isfinite(v) else None)
                  for e, v in zip(rs["env_id"], rs.get("reward_threshold", pd.Series(np.nan, index=rs.index)))}
    norm = ag.normalization_table(envs, rs, references(results, envs), thresholds, best, random_source=random_source)
    scores = ag.normalize_scores(scores, norm)
    configs = [c for c in dict.fromkeys(c for r in reps.values() for c in r.results.configs)]
    reference = first.results.reference_label
    tables = ag.across_envs(scores, factors, levels, envs, configs, reference, metric=metric, seed=first.seed,
                            n_resamples=first.n_resamples, level=first.level)
    tuned = tuned_choices(reps)
    rep = dataclasses.replace(first, results=results, tables={"normalization": norm, "normalized_scores": scores,
                                                               **tables, **({"tune_choice": tuned} if len(tuned)
                                                                            else {})}, figures={}, notes=[])
    return rep


def tuned_choices(reps: dict[str, Report]) -> pd.DataFrame:
    """A tuned study's chosen values, one row per config, one column per env (empty for an untuned study)."""
    frames = [r.tables["tune_choice"].assign(env_id=e, chosen=lambda d: [
        f"{c} †" if edge else str(c) for c, edge in zip(d["chosen"], d["at_edge"])])[["config", "chosen", "env_id"]]
        for e, r in reps.items() if "tune_choice" in r.tables]
    if not frames:
        return pd.DataFrame()
    long = pd.concat(frames, ignore_index=True)
    order = list(dict.fromkeys(long["config"]))
    return long.pivot(index="config", columns="env_id", values="chosen").reindex(
        index=order, columns=[e for e in reps if e in set(long["env_id"])]).reset_index()


def draw_across(rep: Report, out_dir: Path) -> dict[str, str]:
    t = rep.tables
    levels = {f: rep.results.levels[f] for f in rep.results.factors if f != ENV} or {
        "config": list(t["aggregate"]["config"].unique())}
    figures: dict[str, Any] = {
        "aggregate_intervals": lambda: plots.aggregate_intervals(t["aggregate"], [TITLES[m] for m in ag.AGG_METRICS]),
        "aggregate_profile": lambda: plots.performance_profiles(t["aggregate_profile"], levels,
                                                                xlabel="normalized score"),
    }
    if len(t.get("effects_by_env", [])):
        main = t["aggregate_effects"][t["aggregate_effects"]["kind"] == "main"]
        figures["effects_by_env"] = lambda: plots.effects_by_env(t["effects_by_env"], main)
    out = {}
    for name, make in figures.items():
        out[name] = plots.save(make(), out_dir / "figures", name)[0].relative_to(out_dir).as_posix()
    return out


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
        significant = r["p_holm"] < 0.05 and not (r["ci_low"] <= 0 <= r["ci_high"])
        verb = ("raises" if r["estimate"] > 0 else "lowers") if significant else "changes"  # a verb only when shown
        size = fmt(abs(r["estimate"])) if significant else f"{'+' if r['estimate'] >= 0 else '−'}{fmt(abs(r['estimate']))}"
        lines.append(f"- {_effect_subject(r)} {verb} the mean normalized score by {size} "
                     f"{_ci(r['ci_low'], r['ci_high'])} (p_holm {format_p(r['p_holm'])}"
                     f"{'' if significant else ', not significant' + _mdd(rep, r)}): **{r['verdict']}**."
                     + _depends(rep, r))
    return lines


def _mdd(rep: Report, r: pd.Series) -> str:
    """', the smallest effect it could detect: MDD x' for a term of `aggregate_effects` (its minimum detectable
    difference at 80% power and the family's α), '' if unknown."""
    e = rep.tables.get("aggregate_effects", pd.DataFrame(columns=["term", "mdd"]))
    row = e[e["term"] == r["term"]]
    if row.empty or not np.isfinite(float(row["mdd"].iloc[0])):
        return ""
    return f"; the smallest effect it could detect, MDD at 80% power: {fmt(float(row['mdd'].iloc[0]))}"


def _depends(rep: Report, r: pd.Series) -> str:
    """For a main effect whose factor interacts significantly with another in aggregate: its simple effects."""
    simple = rep.tables.get("aggregate_simple_effects", pd.DataFrame())
    if r["kind"] != "main" or simple.empty:
        return ""
    out = []
    for by, g in simple[(simple["factor"] == r["factor"]) & (simple["level"] == r["level"])].groupby("by", sort=False):
        parts = [f"{'+' if e >= 0 else '−'}{fmt(abs(e))} {_ci(lo, hi)} with {level_name(by, str(bl))}"
                 + ("" if p < 0.05 else " (n.s.)")
                 for bl, e, lo, hi, p in zip(g["by_level"], g["estimate"], g["ci_low"], g["ci_high"], g["p_holm"])]
        out.append(f" It depends on {by} (the interaction is significant): " + " / ".join(parts) + ".")
    return "".join(out)


def render_across(rep: Report, env_reports: dict[str, str]) -> str:
    """The top README of a multi-env study."""
    from ablations.report.markdown import md_table

    r, t = rep.results, rep.tables
    counts = r.runs["status"].value_counts()
    envs = list(env_reports)
    factors = [f for f in r.factors if f != ENV]
    lv = "%"
    agg = t["aggregate"].assign(_v=lambda d: [f"{fmt(a)} {_ci(b, c)}" for a, b, c in
                                              zip(d["estimate"], d["ci_low"], d["ci_high"])])
    wide = agg.pivot(index="config", columns="statistic", values="_v").reindex(
        list(dict.fromkeys(agg["config"])))[list(ag.AGG_METRICS)].reset_index()
    lines = [f"# {r.study}: across environments", "",
             f"- **Environments:** {', '.join(f'[{e}]({p})' for e, p in env_reports.items())} (each has its full "
             "per-env report)",
             f"- **Factors:** " + ("; ".join(f"`{f}` ∈ {{{', '.join(r.levels[f])}}}" for f in factors) or "none"),
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
                             **{m: TITLES[m] for m in ag.AGG_METRICS}}, {m: str for m in ag.AGG_METRICS}), "",
             *(_fig(rep, "aggregate_intervals", "Aggregate scores per config, 95% stratified bootstrap CIs")),
             *(_fig(rep, "aggregate_profile", "Performance profiles of the normalized score (all envs), by level")),
             "## Probability of improvement over the reference", "",
             md_table(t["improvement"].assign(_ci=[_ci(a, b) for a, b in zip(t["improvement"]["ci_low"],
                                                                            t["improvement"]["ci_high"])]),
                      {"config": "config", "reference": "reference", "probability": "P(config > reference)",
                       "_ci": "95% CI"}), ""]
    if "tune_choice" in t:
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
    if "consistency" in t:
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
              "Q's p ≥ 0.05; with few envs Q has little power, so the per-env CIs are shown beside it.", ""]
    del lv
    return "\n".join(lines)


def _fig(rep: Report, name: str, caption: str) -> list[str]:
    if name not in rep.figures:
        return []
    return [f"![{caption}]({rep.figures[name]})", "", f"*{caption}* ([SVG]({rep.figures[name][:-4]}.svg))", ""]
