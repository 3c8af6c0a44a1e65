"""The study driver: plan a stage (the runs a results directory still lacks, in cohorts), run it through an executor
(the directory's lock, resume, one atomic part per finished cohort, combined CSVs, the manifest as the commit
record written last), and summarize a results directory. `train_configs` runs the same loop (`_train`) for
`ablations train`, whose rows are kept in memory and written as plain CSVs (`save_trained`).

Executors only execute (`study.executors`); memory sizing is `study.memory`; a study's stages (plain: one; tuned:
tuning then evaluation) are planned and run by `study.stages` through this module.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from ..config import RunConfig
from .design import Study, expand, grid
from .cohorts import Cohort, cohort_id, cohorts
from .executors import CohortResult
from .memory import cohort_plan_size
from .progress import IN_FLIGHT_FILE, InFlight, NullProgress, Progress
from .random_scores import ensure_random_scores
from .store import ResultsDir, now
from .results_format import StoreError, read_text_table, verify_sums
from .machine import git_commit, host, versions

#: Studies with at most this many runs save each finished run's final policy (results/<study>/policies/<run_id>.pt).
SAVE_POLICIES_MAX_RUNS = 100


@dataclass
class StudySummary:
    """What `run_study` did and where the study stands."""

    out: Path
    total: int
    trained: int
    counts: dict[str, int] = field(default_factory=dict)  # done / diverged / failed / pending
    failed: list[tuple[str, str]] = field(default_factory=list)  # (run_id, error)
    wall_s: float = 0.0
    discarded: list[tuple[str, str]] = field(default_factory=list)  # (part, problem): corrupt parts, trained again
    env_steps: int = 0  # env steps the runs actually took (a run may overshoot its budget; see `budget_overshoot`)
    budget_steps: int = 0  # the budget: sum of total_steps of the runs that have rows


def plan(study: Study, out: str | Path, *, retry_failed: bool = False, cohort_size: int | None = None,
         workers: int | None = None, configs: Sequence[RunConfig] | None = None
         ) -> tuple[list[RunConfig], list[Cohort]]:
    """The study's runs and the cohorts still to train in `out` (read-only). `cohort_size=None` picks
    `memory.auto_cohort_size` for `workers`; rows never depend on the cohort a run trains in (invariant 1).
    `configs`: the runs, when they are not `expand(study)` (a stage of a tuned study: `study.stages`)."""
    configs = expand(study) if configs is None else list(configs)
    records = ResultsDir(out).records() if Path(out).is_dir() else {}
    todo = [c for c in configs if c.run_id not in records
            or (retry_failed and records[c.run_id].status == "failed")]
    size = cohort_plan_size(todo, workers, cohort_size, study.path)
    return configs, cohorts(todo, max_size=size)


def run_study(study: Study, out: str | Path, executor: Any, *, retry_failed: bool = False,
              cohort_size: int | None = None, progress: Progress | None = None,
              configs: Sequence[RunConfig] | None = None, manifest_extra: dict[str, Any] | None = None,
              manifest_final: Callable[[], dict[str, Any]] | None = None, grows: bool = False,
              close: bool = True) -> StudySummary:
    """Train what `out` lacks (and the failed runs if `retry_failed`), one atomic part per cohort, then rebuild the
    combined CSVs. Holds the directory's lock throughout; raises `StoreError` if it is locked or incompatible.
    `configs` (default `expand(study)`) and `manifest_extra` (merged into the manifest) serve a tuned study's
    stages and a sequential study's waves (`study.stages.run_plan`); `manifest_final()` is merged into the manifest
    written last once every cohort finished (a sequential study's record after the wave), `grows` lets the runs
    include more than the directory's (the next wave), and `close=False` leaves the executor connected (the caller
    closes it: a cluster kept across a sequential study's waves)."""
    progress = progress or NullProgress()
    results = ResultsDir(out)
    configs = expand(study) if configs is None else list(configs)
    run_ids = [c.run_id for c in configs]
    if results.root.is_dir():
        results.check_compatible(run_ids, study.path, grows=grows)
        if results.packed():
            return packed_summary(results, run_ids, retry_failed)
    if getattr(executor, "connect", None) is not None:  # a cluster answers before anything is written
        executor.connect()
    try:
        return _run_locked(results, study, executor, configs, retry_failed=retry_failed, cohort_size=cohort_size,
                           progress=progress, manifest_extra=manifest_extra, manifest_final=manifest_final,
                           grows=grows)
    finally:
        if close and getattr(executor, "close", None) is not None:
            executor.close()


def _run_locked(results: ResultsDir, study: Study, executor: Any, configs: list[RunConfig], *, retry_failed: bool,
                cohort_size: int | None, progress: Progress, manifest_extra: dict[str, Any] | None,
                manifest_final: Callable[[], dict[str, Any]] | None = None, grows: bool = False,
              close: bool = True) -> StudySummary:
    """`run_study`'s work under the directory's lock: resume, train, combine, and the manifest written last."""
    run_ids = [c.run_id for c in configs]
    out = results.root
    t0, started = time.perf_counter(), now()
    with results.lock():
        results.check_compatible(run_ids, study.path, grows=grows)
        results.clean_incomplete()
        (results.root / IN_FLIGHT_FILE).unlink(missing_ok=True)  # a killed driver's: its tasks died with it
        discarded = [(str(path), problem) for path, problem in results.verify_parts()]
        if discarded:
            progress.warn(f"{len(discarded)} cohort part(s) did not match their checksums and will be trained "
                          "again: " + "; ".join(f"{p}: {why}" for p, why in discarded))
        _, todo = plan(study, out, retry_failed=retry_failed, cohort_size=cohort_size,
                       workers=getattr(executor, "workers", None), configs=configs)
        ensure_random_scores(results.root, study)  # multi-env, or [report] random_episodes: before training
        manifest = {**_manifest(results, study, configs, started, executor, cohort_size), **(manifest_extra or {})}
        invocation = manifest["invocations"][-1]
        results.write_manifest(manifest)  # status "running" until the combine below is written
        outcome, written = "interrupted", []

        def keep(res: CohortResult) -> None:
            _write_cohort(results, study, configs, res)
            written.append(len(res.runs))
            invocation["trained_runs"] = sum(written)  # so a killed invocation's record says what it trained
            results.write_manifest(manifest)

        try:
            progress.start(todo, done_runs=len(configs) - sum(len(c.configs) for c in todo), total_runs=len(configs))
            _train(executor, todo, progress, keep, results.root)
            outcome = "finished"
        finally:
            progress.stop()
            (results.root / IN_FLIGHT_FILE).unlink(missing_ok=True)
            wall, trained = time.perf_counter() - t0, sum(written)
            results.combine(run_ids)  # also after an interrupt: the combined CSVs hold every finished cohort
            manifest["files"] = results.combined_files()
            summary = summarize(results, run_ids, trained=trained, wall_s=wall)
            summary.discarded = discarded
            invocation.update(finished=now(), wall_s=round(wall, 3), trained_runs=trained, outcome=outcome)
            manifest.update(finished=invocation["finished"],
                            wall_s=round(sum(i.get("wall_s") or 0.0 for i in manifest["invocations"]), 3),
                            status="complete" if summary.counts["pending"] == 0 else "incomplete",
                            counts=summary.counts, machines=results.machines(run_ids))
            if manifest_final is not None and outcome == "finished":
                manifest.update(manifest_final())
            results.write_manifest(manifest)  # last: the commit record of this invocation
    return summary


def _train(executor: Any, todo: Sequence[Cohort], progress: Progress, keep: Callable[[CohortResult], None],
           root: Path | None = None) -> None:
    """The one training loop of `run` and `train`: the cohorts `todo` through `executor`, each result handed to
    `keep` as it arrives, then counted by `progress`. An executor that records its cohorts in flight (Ray) keeps
    `root/in_flight.json` up to date."""
    if root is not None and getattr(executor, "records_in_flight", False):
        in_flight = InFlight(root, executor.name, getattr(executor, "address", None))
        results = executor.map(todo, progress.steps, in_flight=in_flight)
    else:
        results = executor.map(todo, progress.steps)
    for res in results:
        keep(res)
        progress.cohort_done(res.cohort_id, [r["status"] for r in res.runs],
                             env_steps=sum(int(r.get("env_steps") or 0) for r in res.runs))


def _write_cohort(results: ResultsDir, study: Study, configs: Sequence[RunConfig], res: CohortResult) -> None:
    """One finished cohort: its done runs' policies (a study of at most SAVE_POLICIES_MAX_RUNS runs), then its part
    (after the policies: a done part implies them)."""
    if _study_size(study, configs) <= SAVE_POLICIES_MAX_RUNS:
        from ..evaluate.policy_io import policy_path, save_policy  # torch: only in a driver that saves policies

        by_id = {c.run_id: c for c in configs}
        for run in res.runs:
            if run["status"] == "done" and run["run_id"] in res.policies:
                save_policy(policy_path(results.root, run["run_id"]), by_id[run["run_id"]],
                            res.policies[run["run_id"]], imports=study.imports, import_paths=study.import_paths)
    results.write_part(res.cohort_id, study.name, res.runs, res.curves, res.probes, res.wall_s, machine=res.machine)


def _study_size(study: Study, configs: Sequence[RunConfig]) -> int:
    """The runs a study may train: its runs, or a sequential study's at every seed (so whether it saves policies
    does not change from wave to wave)."""
    return len(configs) if study.sequential is None else len(grid(study)) * len(study.seeds)


# ---- `ablations train`: the same loop, rows kept in memory -----------------------------------------------------
def deal(configs: Sequence[RunConfig], n: int) -> list[Cohort]:
    """The configs dealt round-robin into `n` cohorts (`train`: one per worker)."""
    return [Cohort(cohort_id([c.run_id for c in configs[i::n]]), tuple(configs[i::n])) for i in range(n)]


def train_configs(configs: Sequence[RunConfig], executor: Any, todo: Sequence[Cohort],
                  progress: Progress | None = None) -> CohortResult:
    """Train the cohorts `todo` (of `configs`) through `executor` → every run's rows in config order (each run's
    rows in their own order, as `ResultsDir.combine` orders them: a cohort appends probe rows as its runs reach
    checkpoints, so their raw order depends on the cohort), and the policies."""
    progress = progress or NullProgress()
    out = CohortResult("", [], [], [], {})

    def keep(res: CohortResult) -> None:
        out.runs.extend(res.runs)
        out.curves.extend(res.curves)
        out.probes.extend(res.probes)
        out.wall_s.update(res.wall_s)
        out.policies.update(res.policies)

    progress.start(todo, done_runs=0, total_runs=len(configs))
    try:
        _train(executor, todo, progress, keep)
    finally:
        progress.stop()
    order = {c.run_id: i for i, c in enumerate(configs)}
    for rows in (out.runs, out.curves, out.probes):
        rows.sort(key=lambda r: order[r["run_id"]])
    return out


# ---- summaries -------------------------------------------------------------------------------------------------
def summarize(results: ResultsDir, run_ids: Sequence[str], *, trained: int = 0, wall_s: float = 0.0) -> StudySummary:
    """Counts of done / diverged / failed / pending runs, and the failed runs with their errors (study order)."""
    records = results.records()
    counts = {"done": 0, "diverged": 0, "failed": 0, "pending": 0}
    failed = []
    for run_id in run_ids:
        rec = records.get(run_id)
        status = rec.status if rec else "pending"
        counts[status] = counts.get(status, 0) + 1
        if status == "failed":
            failed.append((run_id, rec.error))
    steps, budget = _steps(results, set(run_ids), records)
    return StudySummary(results.root, len(run_ids), trained, counts, failed, wall_s, env_steps=steps,
                        budget_steps=budget)


def counts(results: ResultsDir, run_ids: Sequence[str]) -> StudySummary:
    """A results directory's counts: from its cohort parts, or from runs.csv once packed (the parts are gone)."""
    if not results.parts() and (results.root / "SHA256SUMS").exists():  # a packed, published directory
        return _summary_from_runs_csv(results.root, run_ids)
    return summarize(results, run_ids)


def packed_summary(results: ResultsDir, run_ids: Sequence[str], retry_failed: bool) -> StudySummary:
    """`run_study` on a packed directory (`ResultsDir.packed`): nothing is trained or written when its runs.csv (its
    SHA256SUMS checked) holds every run; otherwise `StoreError` (its cohort parts are gone: it cannot be resumed)."""
    verify_sums(results.root)
    summary = _summary_from_runs_csv(results.root, run_ids)
    if summary.counts["pending"] or (retry_failed and summary.counts["failed"]):
        what = (f"{summary.counts['pending']} run(s) pending" if summary.counts["pending"]
                else f"{summary.counts['failed']} failed run(s) to retry")
        raise StoreError(f"{results.root} is packed (`ablations pack --delete-sources`: its cohort parts are gone) "
                         f"and has {what}; a packed directory is not trained into: run the study with another --out")
    return summary


def _summary_from_runs_csv(root: Path, run_ids: Sequence[str]) -> StudySummary:
    """Counts from a packed directory's runs.csv (its cohort parts are gone)."""
    rows = {r["run_id"]: r for r in read_text_table(root / "runs.csv").to_dict("records")}
    tally = {"done": 0, "diverged": 0, "failed": 0, "pending": 0}
    failed = []
    for run_id in run_ids:
        row = rows.get(run_id)
        status = row["status"] if row else "pending"
        tally[status] = tally.get(status, 0) + 1
        if status == "failed":
            failed.append((run_id, row["error"]))
    return StudySummary(root, len(run_ids), 0, tally, failed)


def _steps(results: ResultsDir, run_ids: set[str], records: dict) -> tuple[int, int]:
    """(env steps taken, budget) over the runs of `run_ids` that have a row with env_steps."""
    steps = budget = 0
    for part in {id(r.part): r.part for r in records.values()}.values():
        df = read_text_table(part.path / "runs.csv")
        if not len(df) or "env_steps" not in df or "total_steps" not in df:
            continue
        latest = [records[r].part.path == part.path and r in run_ids for r in df["run_id"]]
        df = df[latest]
        df = df[df["env_steps"] != ""]
        steps += int(pd.to_numeric(df["env_steps"]).sum())
        budget += int(pd.to_numeric(df["total_steps"], errors="coerce").fillna(0).sum())  # "": an episode budget
    return steps, budget


def _manifest(results: ResultsDir, study: Study, configs: Sequence[RunConfig], started: str, executor: Any,
              cohort_size: int | None) -> dict[str, Any]:
    previous = results.read_manifest() or {}
    invocations = [{**i, "outcome": "killed"} if i.get("outcome") == "running" else i
                   for i in previous.get("invocations", [])]  # an invocation that never wrote its end was killed
    invocations.append({"started": started, "finished": None, "wall_s": None, "executor": executor.name,
                        "workers": getattr(executor, "workers", None), "cohort_size": cohort_size or "auto",
                        "trained_runs": 0, "outcome": "running", "pid": os.getpid()})
    return {
        "study": study.spec(),
        "name": study.name,
        "n_runs": len(configs),
        "n_configs": len(configs) // max(1, len(study.seeds)),
        "total_env_steps": sum(c.planned_steps for c in configs),
        "run_ids": [c.run_id for c in configs],
        "versions": versions(),
        "git": git_commit(),
        "host": host(),
        "started": previous.get("started", started),
        "finished": None,
        "wall_s": previous.get("wall_s"),
        "status": "running",
        "invocations": invocations,
    }


def save_trained(out: str | Path, configs: Sequence[RunConfig], trained: CohortResult, *, imports: Sequence[str] = (),
                 import_paths: Sequence[str] = ()) -> None:
    """`ablations train`'s files: out/runs.csv, curves.csv (probes.csv if any rows), each run's final policy."""
    from ..evaluate.policy_io import policy_path, save_policy
    from .results_format import frame, write_csv_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out / "runs.csv", frame(trained.runs))
    write_csv_atomic(out / "curves.csv", frame(trained.curves))
    if trained.probes:
        write_csv_atomic(out / "probes.csv", frame(trained.probes))
    for cfg in configs:
        if cfg.run_id in trained.policies:  # a run that failed in a worker has none
            save_policy(policy_path(out, cfg.run_id), cfg, trained.policies[cfg.run_id], imports=imports,
                        import_paths=import_paths)
