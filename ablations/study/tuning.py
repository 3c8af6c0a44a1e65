"""Tuning each config fairly: a study with a `[tune]` section trains in two stages of ordinary cohorts.

Stage 1 (tuning) trains every config × candidate × tuning seed into ``results/<study>/tune/``, a results directory of
its own (parts, lock, manifest, combined CSVs), in which the tuned field(s) are factors and probes are off. The
choice per config is a pure function of stage 1's runs.csv and curves.csv (`choose`), written to
``results/<study>/tune_choice.csv`` (one row per config × candidate, `chosen` marks the choice) and summarized in the
stage-2 manifest (`tune`). Stage 2 (evaluation) trains each config at its chosen candidate on the study's own seeds,
which `tune_spec` checked are disjoint from the tuning seeds, into ``results/<study>/`` itself, so everything that
reads a results directory (status, report, publish) sees the evaluation runs only.

Both stages go through `executors.run_study`: resumable, bit-identical, local or Ray. A run's `run_id` hashes every
field (seed and the tuned values included), so the stages' runs never collide.

The selection score is the report's (`report.stats.run_scores`): each run's `return_mean` linearly interpolated on
a grid of `GRID_POINTS` env-step points up to its budget; `auc` is its mean, `final_return` its mean over the last
`FINAL_FRACTION` of the budget. `run_metric` computes it here, because `study` must not import `report`; the report's
sensitivity curves use this same function, and a test pins it to `report.stats.run_scores`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..config import ConfigError, RunConfig
from .design import Cohort, Study, StudyError, grid, point_fields, seed_fields
from .executors import StudySummary, plan, run_study
from .progress import Progress
from .results_format import file_record, frame, read_text_table, write_csv_atomic
from .store import ResultsDir
from .tune_spec import SELECTION_RULE, TuneSpec

#: Stage 1's results directory, inside the study's.
TUNE_DIR = "tune"
#: The choice, one row per config × candidate, in the study's results directory.
CHOICE_FILE = "tune_choice.csv"
GRID_POINTS = 100
FINAL_FRACTION = 0.1


def tune_dir(out: str | Path) -> Path:
    return Path(out) / TUNE_DIR


def _spec(study: Study) -> TuneSpec:
    if study.tune is None:
        raise ValueError(f"{study.path}: the study has no [tune] section")
    return study.tune


# ---- the two stages' runs --------------------------------------------------------------------------------------
def stage1_study(study: Study) -> Study:
    """Stage 1 as a study of its own: the tuned fields become factors (last), the seeds are the tuning seeds, and
    probes are off (its manifest lets `ablations report results/<study>/tune` show the untuned view)."""
    tune = _spec(study)
    return dataclasses.replace(study, name=f"{study.name}.tune", factors={**study.factors, **tune.candidates},
                               seeds=tune.seeds, tune=None, probe_seeds=None,
                               description=f"stage 1 (tuning) of {study.name}: {study.description}".rstrip(": "))


def stage1_configs(study: Study) -> list[RunConfig]:
    """Every config × candidate × tuning seed (configs in study order, then candidates in [tune] order, seeds
    innermost), probes off."""
    tune = _spec(study)
    try:
        return [RunConfig.from_dict({**point_fields(study, point), **cand, "seed": seed, "probe_every": 0},
                                    where=study.path)
                for point in grid(study) for cand in tune.grid() for seed in tune.seeds]
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


# ---- the selection score and rule (pure) -----------------------------------------------------------------------
def run_metric(runs: pd.DataFrame, curves: pd.DataFrame, metric: str) -> dict[str, float]:
    """run_id → `metric` ("auc" | "final_return") of each run of `runs` (columns run_id, total_steps), from its
    curve rows (run_id, env_steps, return_mean); NaN for a run with no curve rows. Cells may be text (as read back
    from a part) or numbers."""
    c = curves[["run_id", "env_steps", "return_mean"]].copy()
    c["env_steps"] = pd.to_numeric(c["env_steps"], errors="coerce")
    c["return_mean"] = pd.to_numeric(c["return_mean"], errors="coerce")
    c = c.dropna().sort_values(["run_id", "env_steps"], kind="stable")
    groups = {str(rid): g for rid, g in c.groupby("run_id", sort=False)}
    out: dict[str, float] = {}
    for rid, budget in zip(runs["run_id"].astype(str), pd.to_numeric(runs["total_steps"], errors="coerce")):
        g = groups.get(rid)
        if g is None or not len(g) or not math.isfinite(budget):
            out[rid] = float("nan")
            continue
        x = np.linspace(budget / GRID_POINTS, budget, GRID_POINTS)
        y = np.interp(x, g["env_steps"].to_numpy(float), g["return_mean"].to_numpy(float))
        if metric == "auc":
            out[rid] = float(y.mean())
        elif metric == "final_return":
            out[rid] = float(y[x > (1 - FINAL_FRACTION) * budget + 1e-9 * budget].mean())
        else:
            raise ValueError(f"metric={metric!r}; allowed: auc | final_return")
    return out


def choose(study: Study, runs: pd.DataFrame, curves: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The choice per config from stage 1's runs.csv and curves.csv → (the tune_choice table as text cells, the
    chosen candidate of each grid point). Pure and deterministic: the rule is `tune_spec.SELECTION_RULE`."""
    tune = _spec(study)
    cands = tune.grid()
    configs = stage1_configs(study)
    status = dict(zip(runs["run_id"].astype(str), runs["status"].astype(str)))
    scores = run_metric(runs[runs["run_id"].astype(str).isin({c.run_id for c in configs})], curves, tune.metric)
    n_seeds = len(tune.seeds)
    rows: list[dict[str, Any]] = []
    chosen: list[dict[str, Any]] = []
    for i, point in enumerate(grid(study)):
        block = []
        for j, cand in enumerate(cands):
            ids = [c.run_id for c in configs[(i * len(cands) + j) * n_seeds:(i * len(cands) + j + 1) * n_seeds]]
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
    columns = ["config_index", *study.factors, "candidate", *tune.candidates, "metric", "n_seeds", "n_done", "mean", "std",
               "rank", "chosen"]
    return frame(rows, columns), chosen


def choice_from_file(study: Study, path: str | Path) -> list[dict[str, Any]]:
    """The chosen candidate per grid point, as recorded in a tune_choice.csv."""
    df = read_text_table(Path(path))
    cands = _spec(study).grid()
    picked = df[df["chosen"] == "True"].sort_values("config_index", key=lambda s: s.astype(int), kind="stable")
    return [dict(cands[int(j)]) for j in picked["candidate"]]


def read_stage1(out: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stage 1's combined runs.csv and curves.csv (text cells)."""
    root = tune_dir(out)
    return read_text_table(root / "runs.csv"), read_text_table(root / "curves.csv")


# ---- planning and running --------------------------------------------------------------------------------------
@dataclass
class TunedPlan:
    """Both stages' runs and what is left to train. Stage 2 is known once stage 1 is complete; until then its runs
    are counted and its env steps bounded (the largest candidate budget per config)."""

    stage1_configs: list[RunConfig]
    stage1_todo: list[Cohort]
    stage2_configs: list[RunConfig] | None
    stage2_todo: list[Cohort] | None
    stage2_runs: int
    stage2_env_steps: int


def _stage1_complete(study: Study, out: str | Path, retry_failed: bool) -> bool:
    runs_csv = tune_dir(out) / "runs.csv"
    if not runs_csv.is_file():
        return False
    records = ResultsDir(tune_dir(out)).records()
    ids = [c.run_id for c in stage1_configs(study)]
    if any(r not in records or (retry_failed and records[r].status == "failed") for r in ids):
        return False
    return set(ids) <= set(read_text_table(runs_csv).get("run_id", pd.Series(dtype=str)))


def plan_tuned(study: Study, out: str | Path, *, retry_failed: bool = False, cohort_size: int | None = None,
               workers: int | None = None) -> TunedPlan:
    """Both stages' plans (read-only); raises `StoreError` if a stage's directory holds another run set."""
    s1 = stage1_study(study)
    configs1 = stage1_configs(study)
    if tune_dir(out).is_dir():
        ResultsDir(tune_dir(out)).check_compatible([c.run_id for c in configs1], f"{study.path} [tune]")
    _, todo1 = plan(s1, tune_dir(out), retry_failed=retry_failed, cohort_size=cohort_size, workers=workers,
                    configs=configs1)
    points = grid(study)
    n2 = len(points) * len(study.seeds)
    if _stage1_complete(study, out, retry_failed):
        _, chosen = choose(study, *read_stage1(out))
        configs2 = stage2_configs(study, chosen)
        if Path(out).is_dir():
            ResultsDir(out).check_compatible([c.run_id for c in configs2], study.path)
        _, todo2 = plan(study, out, retry_failed=retry_failed, cohort_size=cohort_size, workers=workers,
                        configs=configs2)
        return TunedPlan(configs1, todo1, configs2, todo2, n2, sum(c.total_steps for c in configs2))
    per_point = [max(c.total_steps for c in configs1[i * len(configs1) // len(points):
                                                      (i + 1) * len(configs1) // len(points)]) for i in range(len(points))]
    return TunedPlan(configs1, todo1, None, None, n2, sum(per_point) * len(study.seeds))


@dataclass
class TunedSummary:
    """What `run_tuned` did: each stage's summary (stage 2 None if stage 1 left runs pending) and the choice."""

    stage1: StudySummary
    stage2: StudySummary | None
    choice: pd.DataFrame | None


def run_tuned(study: Study, out: str | Path, executor: Any, *, retry_failed: bool = False,
              cohort_size: int | None = None,
              progress: Callable[[str], Progress] | None = None) -> TunedSummary:
    """Stage 1 into out/tune, the choice into out/tune_choice.csv, then stage 2 into out. Each stage holds its own
    directory's lock; an interrupted run resumes where it stopped (stage 1's done cohorts are kept, the choice is
    derived again from the same rows, stage 2's done cohorts are kept)."""
    tune = _spec(study)
    make = progress or (lambda stage: None)  # type: ignore[return-value]
    s1 = stage1_study(study)
    configs1 = stage1_configs(study)
    summary1 = run_study(s1, tune_dir(out), executor, retry_failed=retry_failed, cohort_size=cohort_size,
                         progress=make("stage 1 (tuning)"), configs=configs1,
                         manifest_extra={"tune_stage": 1, "tuned_fields": list(tune.candidates),
                                         "parent": study.name})
    if summary1.counts["pending"]:
        return TunedSummary(summary1, None, None)
    table, chosen = choose(study, *read_stage1(out))
    Path(out).mkdir(parents=True, exist_ok=True)
    write_csv_atomic(Path(out) / CHOICE_FILE, table)
    points = grid(study)
    extra = {"tune": {**tune.spec(), "stage1_dir": TUNE_DIR, "stage1_runs": len(configs1),
                      "choice_file": {CHOICE_FILE: file_record(Path(out) / CHOICE_FILE)},
                      "choice": [{**{k: _plain(v) for k, v in p.items()}, **{k: _plain(v) for k, v in c.items()}}
                                 for p, c in zip(points, chosen)],
                      "rule": SELECTION_RULE}}
    summary2 = run_study(study, out, executor, retry_failed=retry_failed, cohort_size=cohort_size,
                         progress=make("stage 2 (evaluation)"), configs=stage2_configs(study, chosen),
                         manifest_extra=extra)
    return TunedSummary(summary1, summary2, table)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
