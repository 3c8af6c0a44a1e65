"""The `run` and `status` commands (registered on the Typer app by `ablations.cli.app`). Thin: parse, call the library.

Exit codes: 0 all runs done (or diverged: a result, not an error); 1 some runs failed; 2 bad study file or unusable
results directory; 3 the results directory is locked by another run; 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import socket
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..study.driver import StudySummary
from ..study.executors import ExecutorError, ExecutorSetupError, make_executor
from ..study.progress import RichProgress, pid_alive, read_in_flight
from ..study.stages import TUNING, StudyPlan, StudyRun, packed_summaries, plan_study, run_plan, stage_status
from . import sequential, tuned
from ..study.store import ResultsDir
from ..study.results_format import StoreError
from ..study.design import Study, StudyError, grid, load_study, unswept_defaults, with_overrides
from ..study.cohorts import DEFAULT_COHORT_SIZE
from ..study.sections import find_study, parse_overrides


class ExecutorName(str, Enum):
    local = "local"
    serial = "serial"
    ray = "ray"


def _console(stderr: bool = False) -> Console:
    return Console(highlight=False, soft_wrap=True, markup=False, stderr=stderr)


def _study_or_exit(console: Console, study: str, overrides: Sequence[str] = ()) -> Study:
    """Load and validate a study file (or name in studies/), with `--set FIELD=VALUE` overrides of [fixed]; a bad
    one exits with code 2 and the message."""
    try:
        spec = load_study(find_study(study))
        return with_overrides(spec, parse_overrides(overrides)) if overrides else spec
    except StudyError as exc:
        raise _fail(console, str(exc), 2) from None


def _fail(console: Console, message: str, code: int) -> typer.Exit:
    """Print `message` on stderr (literally: study keys like [factors] are not markup) → the exit to raise."""
    _console(stderr=True).print(Text.assemble(("error: ", "bold red"), message))
    return typer.Exit(code)


def run(
    study: Annotated[str, typer.Argument(help="A study file (studies/*.toml), or the name of a study in studies/.")],
    out: Annotated[Optional[Path], typer.Option(help="Results directory [default: results/<name>].")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes [default: all cores]; "
                                                               "1 = serial, in-process.")] = None,
    executor: Annotated[ExecutorName, typer.Option(help="Where cohorts train.")] = ExecutorName.local,
    address: Annotated[Optional[str],
                       typer.Option(help="Ray cluster address (e.g. auto); with --executor ray.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed",
                                               help="Also redo the runs recorded as failed.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Print the grid and cohorts; train and write nothing.")] = False,
    cohort_size: Annotated[Optional[int], typer.Option(
        min=1, help=f"Most runs trained together by one worker [default: up to {DEFAULT_COHORT_SIZE}, "
                    "the same number of cohorts for every worker, within half of the free memory].")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="FIELD=VALUE", help="Override a [fixed] field of the study (a TOML value), e.g. "
                                             "--set total_steps=2000; repeatable. The run ids change with it.")] = None,
) -> None:
    """Train a study's runs (resuming what a previous run left), writing tidy CSVs to the results directory."""
    console = _console()
    spec = _study_or_exit(console, study, set_ or ())
    named = out is not None
    out = out if out is not None else Path("results") / spec.name
    what = f"--out {out}" if named else f"the results directory {out} (the default, results/<name>)"
    if out.exists() and not out.is_dir():
        raise _fail(console, f"{what} exists and is not a directory; give --out a directory", 2)
    if address is not None and executor is not ExecutorName.ray:
        raise _fail(console, "--address is for --executor ray", 2)
    try:
        packed = packed_summaries(spec, out, retry_failed=retry_failed)
    except StoreError as exc:
        raise _fail(console, str(exc), 2) from None
    if packed is not None:  # published: every run is in its runs.csv; nothing is trained or written
        console.print(f"{out} is packed (published with `ablations pack --delete-sources`) and holds every run of "
                      f"{spec.name}: nothing to train")
        _print_summary(console, packed[-1], None)
        return
    try:
        ex = make_executor(executor.value, workers=workers, address=address, imports=spec.imports,
                           import_paths=spec.import_paths)
        the_plan = plan_study(spec, out, retry_failed=retry_failed, cohort_size=cohort_size,
                              workers=getattr(ex, "workers", None))
        if not dry_run:
            ResultsDir(out).check_writable()
    except (StoreError, ExecutorError) as exc:
        raise _fail(console, str(exc), 2) from None
    if dry_run:
        (sequential.print_plan if the_plan.sequential else tuned.print_plan if the_plan.tuned
         else _print_plan)(console, the_plan)
        return
    _print_start(console, spec.name, the_plan, ex, out)
    try:
        result = run_plan(the_plan, ex, progress=lambda label: RichProgress(console, f"{spec.name} {label}".rstrip()))
    except StoreError as exc:
        raise _fail(console, str(exc), 3 if "in use" in str(exc) else 2) from None
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise _fail(console, f"{out}: cannot write the results ({exc.strerror or exc}{where}); free space or "
                    "choose another --out, then run the same command again to resume (finished cohorts are kept; "
                    "until then the directory is refused as incomplete)", 2) from None
    except ExecutorSetupError as exc:  # a bad --address or a missing extra: the user's to fix, nothing trained
        raise _fail(console, str(exc), 2) from None
    except ExecutorError as exc:
        raise _fail(console, str(exc), 1) from None
    except KeyboardInterrupt:
        console.print(f"interrupted: finished cohorts are saved in {out}; run the same command again to resume")
        raise typer.Exit(130) from None
    summary = _print_stages(console, the_plan, result)
    extra = f" --executor {executor.value}" if executor is not ExecutorName.local else ""
    extra += f" --address {address}" if address else ""
    _print_summary(console, summary, retry_hint=None if the_plan.sequential else
                   f"ablations run {study} --out {out}{extra} --retry-failed")
    if result.waves is not None:
        sequential.print_waves(console, result.waves.waves, result.waves.stopped, result.waves.reason)
        sequential.print_decisions(console, result.waves)
    if summary.counts["failed"] or summary.failed:
        raise typer.Exit(1)


def _print_stages(console: Console, plan: StudyPlan, result: StudyRun) -> StudySummary:
    """Each stage that ran before the plan's last, with its counts (and the choice after stage 1); the last stage's
    label → the summary to print last (every stage's failed runs listed)."""
    last = plan.stages[-1]
    if plan.sequential:
        return result.summary()
    for stage, summary in zip(plan.stages, result.stages):
        if stage is last:
            if stage.label:
                console.print(f"{stage.label}:", end=" ")
            break
        console.print(f"{stage.label}:", end=" ")
        _print_summary(console, summary, None)
        if result.choice is not None:
            tuned.print_chosen(console, plan.study, result.choice)
    return result.summary()


def status(results_dir: Annotated[Path, typer.Argument(help="A results directory (results/<study>).")]) -> None:
    """What is done, failed and pending in a results directory (and whether a run holds it now).

    Exit 2: not a results directory, or its last `ablations run` did not finish (killed or out of space before the
    combine: the counts shown are the cohort parts'; the message names the command that finishes it), or a file
    does not match its checksum."""
    console = _console()
    try:
        for stage in stage_status(results_dir):
            if stage.label == TUNING:
                console.print(f"{stage.label}, {stage.root}: {stage.summary.total} runs"
                              + (f"; running now (pid {stage.holder})" if stage.holder else ""))
                _print_summary(console, stage.summary, None)
                if stage.choice is not None:
                    console.print(f"choice recorded in {stage.choice[0]} ({stage.choice[1]} configs)")
                if stage.problem:
                    raise StoreError(stage.problem)
                continue
            if stage.manifest is None and stage.label:
                console.print(f"{stage.label}: not started")
                return
            if stage.manifest is None:
                raise StoreError(f"{results_dir} has no manifest.json: not a results directory of `ablations run`")
            if stage.label:
                console.print(f"{stage.label}:", end=" ")
            manifest, summary, holder, problem = stage.manifest, stage.summary, stage.holder, stage.problem
    except (StoreError, OSError) as exc:
        raise _fail(console, str(exc), 2) from None
    console.print(f"study {manifest['name']} ({manifest['study'].get('path', '?')}): {summary.total} runs"
                  + (f"; running now (pid {holder})" if holder else ""))
    _print_summary(console, summary, retry_hint=None)
    if isinstance(manifest.get("sequential"), dict):
        sequential.print_record(console, manifest["sequential"])
    _print_in_flight(console, read_in_flight(results_dir), holder)
    if problem:  # e.g. the combine did not finish: the counts above are the parts', not a result
        raise _fail(console, problem, 2)


def _print_in_flight(console: Console, record: dict | None, holder: int | None) -> None:
    """The cohorts a (Ray) driver recorded as in flight, where Ray runs them, and whether that driver is alive."""
    if record is None:
        return
    pid = record.get("driver_pid")
    here = record.get("driver_host") == socket.gethostname()
    if here:
        alive = isinstance(pid, int) and pid_alive(pid) and holder == pid
        state = "running" if alive else "not running: its tasks died with it; run the study again to resume"
    else:
        state = f"on host {record.get('driver_host')}: cannot check from here"
    cohorts = record.get("cohorts") or {}
    running = sum(c.get("state") == "running" for c in cohorts.values())
    console.print(f"in flight ({record.get('executor')} driver pid {pid}, {state}; recorded {record.get('updated')}): "
                  f"{len(cohorts)} cohort(s), {running} running, {len(cohorts) - running} queued")
    for cohort_id, c in cohorts.items():
        line = f"  cohort {cohort_id}: {c.get('runs', '?')} run(s), {c.get('state', '?')}"
        if c.get("node_id"):
            line += (f" on node {str(c['node_id'])[:16]} ({c.get('host', '?')}, task {str(c.get('task_id'))[:24]}, "
                     f"worker pid {c.get('worker_pid', '?')}, since {c.get('since', '?')})")
        console.print(line)


def _print_summary(console: Console, summary: StudySummary, retry_hint: str | None) -> None:
    c = summary.counts
    console.print(f"done {c['done']}, diverged {c['diverged']}, failed {c['failed']}, pending {c['pending']} "
                  f"(of {summary.total})" + (f" in {summary.wall_s:.1f} s" if summary.wall_s else ""))
    if summary.env_steps > summary.budget_steps > 0:
        console.print(f"env steps: {summary.env_steps:,} taken for a budget of {summary.budget_steps:,} "
                      f"(+{summary.env_steps / summary.budget_steps - 1:.1%}: a run stops after the first update "
                      "that reaches its budget, and an update's N episodes are always complete)")
    if summary.failed:
        table = Table("run_id", "error", title="failed runs")
        for run_id, error in summary.failed:
            table.add_row(run_id, error)
        console.print(table)
        if retry_hint:
            console.print(f"to redo only the failed runs: {retry_hint}")


def _print_plan(console: Console, plan: StudyPlan) -> None:
    """`run --dry-run` of a plain study: the grid, the cohorts to train, fixed and default fields."""
    study, out, stage = plan.study, plan.out, plan.stages[0]
    configs, todo = stage.configs or [], stage.todo or []
    points = grid(study)
    units = {c.budget[1] for c in configs}  # an episode budget (total_episodes) is planned in episodes
    word = {frozenset({"env_steps"}): "env steps", frozenset({"episodes"}): "episodes"}.get(frozenset(units),
                                                                                           "steps or episodes")
    table = Table(*["#", *study.factors, "seeds", word], title=f"{study.name}: {study.description}".strip(": "))
    steps_per_point: dict[int, int] = {}
    for cfg_index, cfg in enumerate(configs):
        point = cfg_index // len(study.seeds)
        steps_per_point[point] = steps_per_point.get(point, 0) + cfg.planned_steps
    for i, point in enumerate(points):
        table.add_row(str(i + 1), *[str(point[k]) for k in study.factors], str(len(study.seeds)),
                      f"{steps_per_point[i]:,}")
    console.print(table)
    cohort_table = Table("cohort", "runs", "env", word, title="cohorts to train")
    for cohort in todo:
        cohort_table.add_row(cohort.id, str(len(cohort.configs)), cohort.configs[0].env_id, f"{cohort.env_steps:,}")
    console.print(cohort_table)
    fixed = ", ".join(f"{k}={v!r}" for k, v in study.fixed.items())
    console.print(f"fixed: {fixed or '(none)'}")
    console.print("defaults (neither fixed nor swept): "
                  + ", ".join(f"{k}={v!r}" for k, v in unswept_defaults(study).items()))
    console.print(f"{len(points)} configs × {len(study.seeds)} seeds = {len(configs)} runs; "
                  f"{sum(len(c.configs) for c in todo)} to train in {len(todo)} cohort(s); "
                  f"{sum(c.env_steps for c in todo):,} {word} (of {sum(c.planned_steps for c in configs):,}); "
                  f"results → {out} (dry run: nothing written)")


def standalone_app() -> typer.Typer:
    """A Typer app with just these two commands (tests; `ablations.cli.app` registers them on the real app)."""
    app = typer.Typer(add_completion=False, no_args_is_help=True)
    app.command()(run)
    app.command()(status)
    return app


def _print_start(console, name: str, the_plan: Any, ex: Any, out: Path) -> None:
    """What `run` is about to train: runs, cohorts, executor and the workers it really uses."""
    first = the_plan.stages[0]
    todo = first.todo or []
    asked = getattr(ex, "workers", None)
    used = min(asked, max(1, len(todo))) if asked else None  # a worker per cohort at most (`executors`)
    workers_text = ("cluster worker(s)" if used is None else f"{used} worker(s)" + (
        f", of the {asked} asked: at most one per cohort" if used < asked else ""))
    wave = f" wave {the_plan.waves.waves[-1]['wave']}" if the_plan.sequential else ""
    console.print(f"{name}{' ' + first.label if first.label else ''}{wave}: {len(first.configs or [])} runs, "
                  f"{sum(len(c.configs) for c in todo)} to train in {len(todo)} "
                  f"cohort(s) with the {ex.name} executor ({workers_text}) → {out}")
