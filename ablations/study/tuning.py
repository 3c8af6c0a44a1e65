"""Tuning each config fairly: a study with a `[tune]` section trains in two stages of ordinary cohorts.

Stage 1 (tuning) trains every config × candidate × tuning seed into ``results/<study>/tune/``, a results directory of
its own (parts, lock, manifest, combined CSVs), in which the tuned field(s) are factors and probes are off. The
choice per config is a pure function of stage 1's runs.csv and curves.csv (`choose`), written to
``results/<study>/tune_choice.csv`` (one row per config × candidate, `chosen` marks the choice) and summarized in the
stage-2 manifest (`tune`). Stage 2 (evaluation) trains each config at its chosen candidate on the study's own seeds,
which `tune_spec` checked are disjoint from the tuning seeds, into ``results/<study>/`` itself, so everything that
reads a results directory (status, report, publish) sees the evaluation runs only.

Both stages are planned and run by `study.stages` through the driver's `run_study`: resumable, bit-identical, local
or Ray. This module says what each stage trains and records the choice; it runs nothing. A run's `run_id` hashes
every field (seed and the tuned values included), so the stages' runs never collide.

The selection score is a run metric of `ablations.train.scores` (`run_metric`, the one home of final return and AUC,
which the report uses too), so the report's sensitivity curves show exactly what was maximized.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..config import ConfigError, RunConfig
from .design import Study, StudyError, env_ids, grid, point_fields, seed_fields
from .sections import norm_level
from .store import ResultsDir
from .results_format import file_record, frame, read_text_table, write_csv_atomic
from ..train.scores import run_metric
from .tune_spec import SELECTION_RULE, TuneSpec

#: Stage 1's results directory, inside the study's.
TUNE_DIR = "tune"
#: The choice, one row per config × candidate, in the study's results directory.
CHOICE_FILE = "tune_choice.csv"


def tune_dir(out: str | Path) -> Path:
    return Path(out) / TUNE_DIR


def _spec(study: Study) -> TuneSpec:
    if study.tune is None:
        raise ValueError(f"{study.path}: the study has no [tune] section")
    return study.tune


# ---- the two stages' runs --------------------------------------------------------------------------------------
def stage1_study(study: Study) -> Study:
    """Stage 1 as a study of its own: the tuned fields become factors (last; their levels over every env's grid), the
    seeds are the tuning seeds, and probes are off (its manifest lets `ablations report results/<study>/tune` show the
    untuned view). An env with its own candidates ([tune.env."…"]) excludes the other envs' values."""
    tune = _spec(study)
    levels = tune.levels()
    rules = tuple({**({"env_id": (env,)} if "env_id" in study.factors else {}), key: rest}
                  for env in env_ids(study) for key, own in tune.fields(env).items()
                  if (rest := tuple(norm_level(v) for v in levels[key] if v not in own)))
    return dataclasses.replace(study, name=f"{study.name}.tune", factors={**study.factors, **levels},
                               exclude=(*study.exclude, *rules),
                               seeds=tune.seeds, tune=None, probe_seeds=None,
                               description=f"stage 1 (tuning) of {study.name}: {study.description}".rstrip(": "))


def point_candidates(study: Study) -> list[list[dict[str, Any]]]:
    """Each grid point's candidates: its env's grid ([tune.env."…"] where given, else [tune]'s), in [tune] order."""
    tune = _spec(study)
    return [tune.grid(point_fields(study, point).get("env_id")) for point in grid(study)]


def stage1_configs(study: Study) -> list[RunConfig]:
    """Every config × candidate (its env's) × tuning seed (configs in study order, then candidates in [tune] order,
    seeds innermost), probes off."""
    tune = _spec(study)
    try:
        return [RunConfig.from_dict({**point_fields(study, point), **cand, "seed": seed, "probe_every": 0},
                                    where=study.path)
                for point, cands in zip(grid(study), point_candidates(study)) for cand in cands
                for seed in tune.seeds]
    except (ConfigError, TypeError) as exc:
        raise StudyError(f"{study.path}: [tune] {exc}") from None


def stage2_configs(study: Study, chosen: Sequence[dict[str, Any]]) -> list[RunConfig]:
    """Each config at its chosen candidate (`chosen[i]` for grid point i) on the study's evaluation seeds, with the
    study's probe rule (`probe_seeds`), in the order `design.expand` uses."""
    points = grid(study)
    if len(chosen) != len(points):
        raise ValueError(f"{len(chosen)} choices for {len(points)} configs")
    return [RunConfig.from_dict({**point_fields(study, point), **choice, **seed_fields(study, seed)},
                                where=study.path)
            for point, choice in zip(points, chosen) for seed in study.seeds]


# ---- the selection rule (pure; the score is train.scores.run_metric) ----------------------------------------------
def choose(study: Study, runs: pd.DataFrame, curves: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The choice per config from stage 1's runs.csv and curves.csv → (the tune_choice table as text cells, the
    chosen candidate of each grid point). Pure and deterministic: the rule is `tune_spec.SELECTION_RULE`."""
    tune = _spec(study)
    configs = stage1_configs(study)
    status = dict(zip(runs["run_id"].astype(str), runs["status"].astype(str)))
    scores = run_metric(runs[runs["run_id"].astype(str).isin({c.run_id for c in configs})], curves, tune.metric)
    n_seeds = len(tune.seeds)
    rows: list[dict[str, Any]] = []
    chosen: list[dict[str, Any]] = []
    start = 0
    for i, (point, cands) in enumerate(zip(grid(study), point_candidates(study))):
        block = []
        for j, cand in enumerate(cands):
            ids = [c.run_id for c in configs[start:start + n_seeds]]
            start += n_seeds
            values = np.array([scores.get(r, np.nan) for r in ids if status.get(r) == "done"], dtype=float)
            values = values[np.isfinite(values)]
            mean = float(values.mean()) if len(values) else float("nan")
            std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
            block.append({"config_index": i, **point, "candidate": j, **cand, "metric": tune.metric, "n_seeds": n_seeds,
                          "n_done": len(values), "mean": mean, "std": std})
        order = sorted(range(len(block)), key=lambda j: (block[j]["n_done"] < n_seeds,
                                                         -block[j]["mean"] if math.isfinite(block[j]["mean"])
                                                         else math.inf, j))
        for rank, j in enumerate(order, start=1):
            block[j]["rank"] = rank
            block[j]["chosen"] = rank == 1
        chosen.append(dict(cands[order[0]]))
        rows += block
    columns = ["config_index", *study.factors, "candidate", *tune.candidates, "metric", "n_seeds", "n_done", "mean",
               "std",
               "rank", "chosen"]
    return frame(rows, columns), chosen


def choice_from_file(study: Study, path: str | Path) -> list[dict[str, Any]]:
    """The chosen candidate per grid point, as recorded in a tune_choice.csv."""
    df = read_text_table(Path(path))
    cands = point_candidates(study)
    picked = df[df["chosen"] == "True"].sort_values("config_index", key=lambda s: s.astype(int), kind="stable")
    return [dict(cands[int(i)][int(j)]) for i, j in zip(picked["config_index"], picked["candidate"])]


def read_stage1(out: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stage 1's combined runs.csv and curves.csv (text cells)."""
    root = tune_dir(out)
    return read_text_table(root / "runs.csv"), read_text_table(root / "curves.csv")


# ---- the stages' state in a results directory ------------------------------------------------------------------
def stage1_complete(study: Study, out: str | Path, retry_failed: bool) -> bool:
    """Whether stage 1 has every run (none failed if `retry_failed`) and its combined runs.csv lists them all."""
    runs_csv = tune_dir(out) / "runs.csv"
    if not runs_csv.is_file():
        return False
    records = ResultsDir(tune_dir(out)).records()
    ids = [c.run_id for c in stage1_configs(study)]
    if any(r not in records or (retry_failed and records[r].status == "failed") for r in ids):
        return False
    return set(ids) <= set(read_text_table(runs_csv).get("run_id", pd.Series(dtype=str)))


def stage1_manifest(study: Study) -> dict[str, Any]:
    """What stage 1's manifest adds to a study's."""
    return {"tune_stage": 1, "tuned_fields": list(_spec(study).candidates), "parent": study.name}


def record_choice(study: Study, out: str | Path) -> tuple[pd.DataFrame, list[RunConfig], dict[str, Any]]:
    """The choice from stage 1's combined CSVs, written to out/tune_choice.csv → (the choice table, stage 2's runs,
    what stage 2's manifest adds: the `tune` record)."""
    tune = _spec(study)
    table, chosen = choose(study, *read_stage1(out))
    Path(out).mkdir(parents=True, exist_ok=True)
    write_csv_atomic(Path(out) / CHOICE_FILE, table)
    extra = {"tune": {**tune.spec(), "stage1_dir": TUNE_DIR, "stage1_runs": len(stage1_configs(study)),
                      "choice_file": {CHOICE_FILE: file_record(Path(out) / CHOICE_FILE)},
                      "choice": [{**{k: _plain(v) for k, v in p.items()}, **{k: _plain(v) for k, v in c.items()}}
                                 for p, c in zip(grid(study), chosen)],
                      "rule": SELECTION_RULE}}
    return table, stage2_configs(study, chosen), extra


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
