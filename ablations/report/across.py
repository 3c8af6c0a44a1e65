"""The report of a multi-env study (`env_id` swept): env levels are strata, not an ablation factor.

`build.build_report` writes one full per-study report per env (`envs/<env_id>/README.md`, the same pipeline on that
env's runs: `env_subset`) and then the top README: this module computes its tables (`compute_across`, with the
normalized scores and aggregates of `pooled`); `build` draws its figures and `markdown_across` writes its text. The
random-policy scores come
from `results/<study>/random_scores.csv` (measured by `ablations run` before training); if that file is absent,
`ablations report` measures them with the same function and defaults before building the report (which says so):
the report itself never runs an env.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd

from ablations.report.equivalence import DEFAULT_MARGIN

from ablations.report import pooled as ag
from ablations.report.load import ENV, ReportError, Results, choose_reference, config_label, restrict, study_spec
from ablations.report.model import Report
from ablations.study.random_scores import FILE as RANDOM_SCORES_FILE

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


def random_scores_request(results: Results) -> tuple[list[str], int, int] | None:
    """(envs, episodes, seed) of the random-policy measurement a multi-env study's report needs when its results
    hold no `random_scores.csv` covering its envs (the study's `[report] random_episodes` and `seed`, as
    `study.random_scores.study_settings`); None when nothing is missing. The caller measures it
    (`study.random_scores.random_scores_table`) and hands it to `build_report`."""
    envs = env_levels(results)
    path = results.path / RANDOM_SCORES_FILE
    if not envs or (path.exists() and set(envs) <= set(pd.read_csv(path)["env_id"])):
        return None
    from ablations.evaluate.random_policy import DEFAULT_EPISODES  # a number: the report runs no env

    report = study_spec(results.manifest).get("report") or {}
    return envs, int(report.get("random_episodes", DEFAULT_EPISODES)), int(report.get("seed", 0))


def random_scores(results: Results, envs: list[str], measured: pd.DataFrame | None = None) -> tuple[pd.DataFrame, str]:
    """(the random-policy table, where it came from): `random_scores.csv` when it covers `envs`, else `measured`
    (the caller's measurement: `random_scores_request`)."""
    path = results.path / RANDOM_SCORES_FILE
    if path.exists():
        df = pd.read_csv(path)
        if set(envs) <= set(df["env_id"]):
            return df, f"measured by `ablations run` before training (`{path.name}`)"
    if measured is None or not set(envs) <= set(measured["env_id"]):
        raise ReportError(f"{path}: no random-policy score for every env of {envs}; `ablations report` measures "
                          "the missing ones (library callers: `random_scores_request`)")
    return measured, "measured by `ablations report` (the results have no random_scores.csv)"


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
                            n_resamples=first.n_resamples, level=first.level,
                            margin=first.margin_rule or DEFAULT_MARGIN, norm=norm)
    tuned = tuned_choices(reps)
    anchors = [r.tables["anchors"] for r in reps.values() if len(r.tables.get("anchors", []))]
    rep = dataclasses.replace(first, results=results, tables={"normalization": norm, "normalized_scores": scores,
                                                               **tables, **({"tune_choice": tuned} if len(tuned)
                                                                            else {}),
                                                               **({"anchors": pd.concat(anchors, ignore_index=True)}
                                                                  if anchors else {})}, figures={}, notes=[])
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
