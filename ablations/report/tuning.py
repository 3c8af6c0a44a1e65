"""The report of a tuned study (a `[tune]` section, `study.tuning`): the chosen values per config, the sensitivity
curves (the selection metric vs candidate per config, with CIs, from stage 1) and, when asked, the untuned view
(each candidate as a level: the factor verdicts at every candidate, on the tuning seeds).

Everything else in the report is computed from stage 2 (the evaluation seeds) only: this module reads stage 1 from
``<results>/tune/`` and the choice from ``<results>/tune_choice.csv``. The selection score is
`train.scores.run_metric`, the one definition of a run's metrics (each episode weighted equally), which the tuning
choice uses too, so the curves show what is maximized. (Results tuned before the metrics were defined per episode
chose on the older env-step-grid score: their `tune_choice.csv` means can differ from these curves.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ablations.report import effects as fx
from ablations.report.load import ENV, Results, config_label, level_label, load_results, restrict
from ablations.report.model import Report
from ablations.study.results_format import file_record
from ablations.study.tuning import CHOICE_FILE, TUNE_DIR
from ablations.train.scores import run_metric
from ablations.report import verdicts as vd
from ablations.report.equivalence import DEFAULT_MARGIN, pooled_sd
from ablations.report.intervals import config_summary

CHOICE_COLUMNS = ["config", "chosen", "tuning_metric", "tuning_mean", "tuning_n", "runner_up", "runner_up_mean",
                  "eval_mean", "eval_ci_low", "eval_ci_high", "eval_n", "at_edge"]
SENSITIVITY_COLUMNS = ["config", "candidate", "candidate_index", "metric", "n", "mean", "ci_low", "ci_high",
                       "ci_level", "ci_method", "chosen"]


def tune_info(results: Results) -> dict[str, Any] | None:
    """The manifest's `tune` record when `results` is stage 2 of a tuned study with its stage 1 and choice present;
    for the runs of one env with its own candidates ([tune.env."…"]; one env's report of a multi-env study), those
    are its `candidates`."""
    info = results.manifest.get("tune")
    root = Path(results.path)
    if not isinstance(info, dict) or not (root / CHOICE_FILE).is_file() or not (root / TUNE_DIR).is_dir():
        return None
    envs = results.runs[ENV].unique() if ENV in results.runs else []
    own = (info.get("env") or {}).get(str(envs[0])) if len(envs) == 1 else None
    return {**info, "candidates": {**info["candidates"], **own}} if own else info


def candidates(info: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(tuned fields, candidate labels in [tune] order: formatted values joined with "/")."""
    import itertools

    cands = info["candidates"]
    fields = list(cands)
    labels = ["/".join(level_label(v) for v in combo) for combo in itertools.product(*cands.values())]
    return fields, labels


def compute(rep: Report, *, untuned: bool = False, env: str | None = None) -> None:
    """Add the tables `tune_choice`, `tune_sensitivity` (and `untuned_verdicts` if asked) to `rep` (their text is
    `markdown_tuning`'s). A no-op for an untuned study. `env`: `rep` is one env of a multi-env study
    (`across.env_subset`): stage 1's runs and the choice are restricted to that env_id."""
    results = rep.results
    info = tune_info(results)
    if info is None:
        return
    factors, metric = results.factors, str(info.get("metric", "auc"))
    fields, labels = candidates(info)
    stage1 = load_results(Path(results.path) / TUNE_DIR)
    if env is not None:
        stage1 = _env_only(stage1, env)
    runs = stage1.runs.copy()
    runs["config"] = [config_label(r, factors) for r in runs[factors].to_dict("records")] if factors else "all"
    runs["candidate"] = ["/".join(level_label(r[f]) for f in fields) for r in runs[fields].to_dict("records")]
    done = runs[runs["status"] == "done"]
    scores = run_metric(done, stage1.curves, metric)
    long = done.assign(value=done["run_id"].map(scores)).dropna(subset=["value"])
    sens = config_summary(long, ["config", "candidate"], level=rep.level)
    choice = pd.read_csv(Path(results.path) / CHOICE_FILE, dtype=str, keep_default_na=False)
    if env is not None:
        choice = choice[choice[ENV] == env].reset_index(drop=True)
    choice["config"] = ([config_label({f: level_label(r[f]) for f in factors}, factors)
                         for r in choice.to_dict("records")] if factors else "all")
    choice["label"] = [labels[int(j)] for j in choice["candidate"]]
    chosen = set(zip(choice.loc[choice["chosen"] == "True", "config"], choice.loc[choice["chosen"] == "True", "label"]))
    sens["candidate_index"] = sens["candidate"].map({lb: i for i, lb in enumerate(labels)})
    sens["metric"] = metric
    sens["chosen"] = [(c, k) in chosen for c, k in zip(sens["config"], sens["candidate"])]
    order = {c: i for i, c in enumerate(results.configs)}
    sens = sens.sort_values(["config", "candidate_index"], key=lambda s: s.map(order) if s.name == "config" else s,
                            kind="stable").reset_index(drop=True)
    rep.tables["tune_sensitivity"] = sens[SENSITIVITY_COLUMNS]
    rep.tables["tune_choice"] = _choice_table(rep, choice, metric, info)
    if untuned and factors:
        rep.tables["untuned_verdicts"] = _untuned_verdicts(long, factors, stage1, fields, labels, metric, rep)
    recorded = (info.get("choice_file") or {}).get(CHOICE_FILE, {}).get("sha256")
    if recorded and recorded != file_record(Path(results.path) / CHOICE_FILE)["sha256"]:
        rep.notes.append(f"{CHOICE_FILE} does not match the checksum the run recorded: it was edited after the run.")


def _env_only(stage1: Results, env: str) -> Results:
    """Stage 1's results restricted to one env_id (its factor dropped, as `across.env_subset` does for stage 2)."""
    return restrict(stage1, stage1.runs[stage1.runs[ENV] == env], [f for f in stage1.factors if f != ENV])


def edge_fields(row: dict[str, Any], candidates: dict[str, list[Any]]) -> str:
    """The numeric tuned fields whose chosen value is the smallest or largest candidate ("policy_lr=min"; "" if
    none): there the optimum may lie outside the grid."""
    out = []
    for field, values in candidates.items():
        nums = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
        value = pd.to_numeric(pd.Series([row[field]], dtype=object), errors="coerce").iloc[0]
        if len(values) < 2 or nums.isna().any() or pd.isna(value):
            continue
        if value == nums.min() or value == nums.max():
            out.append(f"{field}={'min' if value == nums.min() else 'max'}")
    return ", ".join(out)


def _choice_table(rep: Report, choice: pd.DataFrame, metric: str, info: dict[str, Any]) -> pd.DataFrame:
    summary = rep.tables.get("summary", pd.DataFrame(columns=["metric", "config"]))
    ev = summary[summary["metric"] == metric].set_index("config")
    rows = []
    for config, g in choice.groupby("config", sort=False):
        g = g.assign(rank=g["rank"].astype(int)).sort_values("rank")
        top, second = g.iloc[0], (g.iloc[1] if len(g) > 1 else None)
        e = ev.loc[config] if config in ev.index else None
        rows.append({"config": config, "chosen": top["label"], "tuning_metric": metric,
                     "tuning_mean": float(top["mean"]), "tuning_n": int(top["n_done"]),
                     "runner_up": "" if second is None else second["label"],
                     "runner_up_mean": np.nan if second is None else float(second["mean"]),
                     "eval_mean": np.nan if e is None else float(e["mean"]),
                     "eval_ci_low": np.nan if e is None else float(e["ci_low"]),
                     "eval_ci_high": np.nan if e is None else float(e["ci_high"]),
                     "eval_n": 0 if e is None else int(e["n"]),
                     "at_edge": edge_fields(top.to_dict(), info["candidates"])})
    order = {c: i for i, c in enumerate(rep.results.configs)}
    out = pd.DataFrame(rows, columns=CHOICE_COLUMNS)
    return out.sort_values("config", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _untuned_verdicts(long: pd.DataFrame, factors: list[str], stage1: Results, fields: list[str],
                      labels: list[str], metric: str, rep: Report) -> pd.DataFrame:
    """The verdict on every factor level at each candidate (stage 1's runs, the candidate held fixed)."""
    frames = []
    levels = {f: stage1.levels[f] for f in factors}
    for label in labels:
        lm = long[long["candidate"] == label][["run_id", "config", "seed", *factors, "value"]].assign(metric=metric)
        if lm["seed"].nunique() < 2 or lm["config"].nunique() < 2:
            continue
        e, _ = fx.factor_effects(lm, factors, levels, metric=metric, seed=rep.seed, n_resamples=rep.n_resamples,
                                 level=rep.level)
        sd = lm.groupby("config")["value"].agg(["size", "std"])
        rule = rep.margin_rule if rep.margin_rule is not None else DEFAULT_MARGIN
        margin = rule.resolve(pooled_sd(sd["size"].to_numpy(float), sd["std"].to_numpy(float)))
        v, _ = vd.verdicts(e, lm, factors, levels, metric=metric, margin=margin)
        frames.append(v.assign(candidate=label))
    if not frames:
        return pd.DataFrame(columns=["candidate", *vd.VERDICT_COLUMNS])
    out = pd.concat(frames, ignore_index=True)
    return out[["candidate", *vd.VERDICT_COLUMNS]]
