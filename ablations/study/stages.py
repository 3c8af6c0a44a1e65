"""One plan/run interface for every study: a plain study is one stage into its results directory; a tuned study
(`[tune]`, `study.tuning`) is stage 1 (tuning, into out/tune) then stage 2 (evaluation, into out), stage 2's runs
known once stage 1 is complete; a sequential study (`[sequential]`, `study.sequential`) is one stage trained in
waves, each wave's runs decided from the rows on disk (`sequential.replay`) when the previous wave is complete.
`plan_study` plans the stages (read-only), `run_plan` runs them in order through the driver (`driver.run_study`),
`stage_status` reads where each stage of a results directory stands.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from ..config import RunConfig
from .design import Study, grid
from .cohorts import Cohort
from .design import expand
from .driver import StudySummary, counts, packed_summary, plan, run_study
from .progress import Progress
from .store import ResultsDir
from .results_format import StoreError, finish_command, read_text_table, require_complete, verify_sums
from .sequential import SequentialState, record, replay, runs_on_disk, wave_configs
from .tuning import (CHOICE_FILE, choice_from_file, choose, read_stage1, record_choice, stage1_complete, stage1_configs,
                     stage1_manifest, stage1_study, stage2_configs, tune_dir)

TUNING, EVALUATION = "stage 1 (tuning)", "stage 2 (evaluation)"


@dataclass
class StagePlan:
    """One stage: the study it trains into `out`, its runs and the cohorts still to train (both None for stage 2
    until stage 1 is complete: then `n_runs` counts its runs and `env_steps` bounds them, with the largest candidate
    budget per config)."""

    label: str  # "" for a plain study's only stage, else TUNING or EVALUATION
    study: Study
    out: Path
    configs: list[RunConfig] | None
    todo: list[Cohort] | None
    n_runs: int
    env_steps: int


@dataclass
class StudyPlan:
    """A study's stages in the order they train, and the options every stage is planned and run with."""

    study: Study
    out: Path
    stages: list[StagePlan]
    retry_failed: bool = False
    cohort_size: int | None = None
    waves: SequentialState | None = None  # a sequential study: its waves so far, replayed from the rows on disk

    @property
    def tuned(self) -> bool:
        return self.study.tune is not None

    @property
    def sequential(self) -> bool:
        return self.study.sequential is not None


@dataclass
class StudyRun:
    """What `run_plan` did: the summary of each stage that ran (a later stage does not start while an earlier one
    has runs pending) and, once stage 1 finished, the choice table (tune_choice.csv's text cells)."""

    stages: list[StudySummary]
    choice: pd.DataFrame | None = None
    waves: SequentialState | None = None  # a sequential study: where it stands after the last wave that ran

    def summary(self) -> StudySummary:
        """The last stage's summary, its `failed` listing every stage's failed runs (so the exit code says so; a
        sequential study's last wave counts every run of the study)."""
        last = self.stages[-1]
        if self.waves is not None:
            return last
        return dataclasses.replace(last, failed=[f for s in self.stages for f in s.failed])


def plan_study(study: Study, out: str | Path, *, retry_failed: bool = False, cohort_size: int | None = None,
               workers: int | None = None) -> StudyPlan:
    """Every stage's plan (read-only); raises `StoreError` if a stage's directory holds another run set, and
    `ExecutorError` if a config cannot fit in memory (`memory.check_memory`)."""
    out = Path(out)
    kw: dict[str, Any] = {"retry_failed": retry_failed, "cohort_size": cohort_size, "workers": workers}
    if study.sequential is not None:
        return _plan_sequential(study, out, cohort_size, workers, retry_failed)
    if study.tune is None:
        configs, todo = plan(study, out, **kw)
        if out.is_dir():
            ResultsDir(out).check_compatible([c.run_id for c in configs], study.path)
        stage = StagePlan("", study, out, configs, todo, len(configs), sum(c.planned_steps for c in configs))
        return StudyPlan(study, out, [stage], retry_failed, cohort_size)
    configs1 = stage1_configs(study)
    if tune_dir(out).is_dir():
        ResultsDir(tune_dir(out)).check_compatible([c.run_id for c in configs1], f"{study.path} [tune]")
    s1 = stage1_study(study)
    _, todo1 = plan(s1, tune_dir(out), configs=configs1, **kw)
    first = StagePlan(TUNING, s1, tune_dir(out), configs1, todo1, len(configs1), sum(c.planned_steps for c in configs1))
    points = grid(study)
    n2 = len(points) * len(study.seeds)
    if stage1_complete(study, out, retry_failed):
        _, chosen = choose(study, *read_stage1(out))
        configs2 = stage2_configs(study, chosen)
        if out.is_dir():
            ResultsDir(out).check_compatible([c.run_id for c in configs2], study.path)
        _, todo2 = plan(study, out, configs=configs2, **kw)
        second = StagePlan(EVALUATION, study, out, configs2, todo2, n2, sum(c.planned_steps for c in configs2))
    else:
        per_point = [max(c.planned_steps for c in configs1[i * len(configs1) // len(points):
                                                          (i + 1) * len(configs1) // len(points)])
                     for i in range(len(points))]
        second = StagePlan(EVALUATION, study, out, None, None, n2, sum(per_point) * len(study.seeds))
    return StudyPlan(study, out, [first, second], retry_failed, cohort_size)


def _plan_sequential(study: Study, out: Path, cohort_size: int | None, workers: int | None,
                     retry_failed: bool) -> StudyPlan:
    """A sequential study's plan: the waves replayed from the rows on disk, the runs through the current wave and
    the cohorts it still lacks. `StoreError` for `--retry-failed` (the waves were decided with those runs failed)."""
    if retry_failed:
        raise StoreError(f"{study.path}: --retry-failed is refused for a sequential study: its waves were decided "
                         "from the runs as they finished (a failed run is a missing seed of its contrasts), and "
                         "retrying one would change decisions already acted on; run the study into a new --out")
    state = replay(study, runs_on_disk(out, study.sequential.metric))
    configs = wave_configs(study, state.counts)
    if out.is_dir():
        ResultsDir(out).check_compatible([c.run_id for c in configs], study.path, grows=True)
    _, todo = plan(study, out, configs=configs, cohort_size=cohort_size, workers=workers)
    stage = StagePlan("", study, out, configs, todo, len(configs), sum(c.total_steps for c in configs))
    return StudyPlan(study, out, [stage], False, cohort_size, waves=state)


def _run_sequential(plan: StudyPlan, executor: Any, make: Callable[[str], Progress | None]) -> StudyRun:
    """The waves, each an ordinary `run_study` over the runs through it (the manifest records the waves at its
    start and, once the wave is complete, the looks after it); the next wave is replayed from the rows on disk, so
    a killed run resumes into the same waves. Stops when the rule stops or a wave has runs pending."""
    study, out = plan.study, plan.out
    metric = study.sequential.metric
    n_configs = len(grid(study))
    state = replay(study, runs_on_disk(out, metric))
    done = StudyRun([], waves=state)

    def after() -> dict[str, Any]:
        done.waves = replay(study, runs_on_disk(out, metric))
        return {"sequential": record(study, done.waves), "n_configs": n_configs}

    try:
        while True:
            wave = state.waves[-1]
            summary = run_study(study, out, executor, cohort_size=plan.cohort_size, close=False,
                                progress=make(f"wave {wave['wave']}"), configs=wave_configs(study, state.counts),
                                grows=True, manifest_final=after,
                                manifest_extra={"sequential": record(study, state), "n_configs": n_configs})
            done.stages.append(summary)
            if summary.counts["pending"] or done.waves.stopped or done.waves.counts == state.counts:
                return done
            state = done.waves
    finally:  # one connection for every wave (a Ray cluster is not started again for each)
        if getattr(executor, "close", None) is not None:
            executor.close()


def run_plan(plan: StudyPlan, executor: Any,
             progress: Callable[[str], Progress | None] | None = None) -> StudyRun:
    """Run the stages in order, each holding its own directory's lock (`driver.run_study`), each planned again
    there; a stage with runs pending ends the run. `progress(label)`: each stage's display. Stage 2's runs are
    derived again from stage 1's rows (the choice written to tune_choice.csv first), so an interrupted run resumes
    where it stopped."""
    make = progress or (lambda label: None)
    if plan.sequential:
        return _run_sequential(plan, executor, make)
    done = StudyRun([])
    for stage in plan.stages:
        configs, extra = stage.configs, None
        if stage.label == TUNING:
            extra = stage1_manifest(plan.study)
        elif stage.label == EVALUATION:
            done.choice, configs, extra = record_choice(plan.study, plan.out)
        summary = run_study(stage.study, stage.out, executor, retry_failed=plan.retry_failed,
                            cohort_size=plan.cohort_size, progress=make(stage.label), configs=configs,
                            manifest_extra=extra)
        done.stages.append(summary)
        if summary.counts["pending"]:
            break
    return done


def packed_summaries(study: Study, out: str | Path, *, retry_failed: bool = False) -> list[StudySummary] | None:
    """`ablations run` on a directory packed with --delete-sources (its cohort parts gone): each stage's counts from
    its runs.csv (SHA256SUMS checked) when it holds every run, so nothing is trained or written; None if `out` is
    not packed. `StoreError` if a run is missing (or failed, with `retry_failed`): a packed directory is not
    trained into."""
    out = Path(out)
    if not ResultsDir(out).packed():
        return None
    summaries = []
    configs = expand(study)
    if study.sequential is not None:
        verify_sums(out)
        state = replay(study, runs_on_disk(out, study.sequential.metric))
        if not state.stopped:
            raise StoreError(f"{out} is packed (`ablations pack --delete-sources`: its cohort parts are gone) and its "
                             "sequential study has waves to train; a packed directory is not trained into: run the "
                             "study with another --out")
        configs = wave_configs(study, state.counts)
    if study.tune is not None:
        ids1 = [c.run_id for c in stage1_configs(study)]
        ResultsDir(tune_dir(out)).check_compatible(ids1, f"{study.path} [tune]")
        summaries.append(packed_summary(ResultsDir(tune_dir(out)), ids1, retry_failed))
        try:
            configs = stage2_configs(study, choice_from_file(study, out / CHOICE_FILE))
        except (OSError, KeyError, ValueError, IndexError) as exc:
            raise StoreError(f"{out / CHOICE_FILE}: cannot be read as the choice of {study.path} "
                             f"({type(exc).__name__}: {exc}); restore the published files") from None
    ids = [c.run_id for c in configs]
    ResultsDir(out).check_compatible(ids, study.path)
    summaries.append(packed_summary(ResultsDir(out), ids, retry_failed))
    return summaries


@dataclass
class StageStatus:
    """Where one stage of a results directory stands (`ablations status`)."""

    label: str
    root: Path
    manifest: dict[str, Any] | None  # None: the stage has not started
    summary: StudySummary | None
    holder: int | None  # the pid that holds the directory's lock now
    choice: tuple[Path, int] | None = None  # (tune_choice.csv, configs chosen) once recorded
    problem: str | None = None  # why the directory is not a result yet (`results_format.require_complete`)


def _problem(root: Path, holder: int | None, command: str | None = None) -> str | None:
    """`require_complete`'s refusal of a directory no run holds now (None: complete, or being written)."""
    if holder is not None:
        return None
    try:
        require_complete(root, command=command)
    except StoreError as exc:
        return str(exc)
    return None


def stage_status(results_dir: str | Path) -> Iterator[StageStatus]:
    """Each stage's state, as it is read: the study for a plain results directory; stage 1 then stage 2 for a tuned
    study's (its out/tune has a manifest). Counts come from the cohort parts, or from runs.csv once packed
    (`driver.counts`). Raises `StoreError` (e.g. a corrupt manifest) when it reaches the stage."""
    root = Path(results_dir)
    results = ResultsDir(root)
    manifest = results.read_manifest()
    tuning = ResultsDir(tune_dir(root))
    manifest1 = tuning.read_manifest()
    if manifest1 is not None:
        choice_path, choice = root / CHOICE_FILE, None
        summary1 = counts(tuning, manifest1["run_ids"])
        holder1 = tuning.lock_holder()
        if choice_path.is_file():
            choice = (choice_path, int((read_text_table(choice_path)["chosen"] == "True").sum()))
        command = finish_command(root, manifest or manifest1) if manifest else None
        yield StageStatus(TUNING, tuning.root, manifest1, summary1, holder1, choice,
                          _problem(tuning.root, holder1, command))
    summary = counts(results, manifest["run_ids"]) if manifest is not None else None
    holder = results.lock_holder() if manifest is not None else None
    yield StageStatus(EVALUATION if manifest1 is not None else "", results.root, manifest, summary, holder,
                      problem=_problem(results.root, holder) if manifest is not None else None)
