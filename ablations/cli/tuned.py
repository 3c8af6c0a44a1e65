"""`run` and `status` for a study with a `[tune]` section (called by `cli.run`): both stages' plan, progress and
counts; and `reproduce`'s comparison of the choice (called by `cli.publish`). Thin: the stages, the choice and the
storage are `ablations.study.tuning`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from ..study.design import Study, grid
from ..study.executors import StudySummary
from ..study.progress import RichProgress
from ..study.results_format import read_text_table
from ..study.store import ResultsDir
from ..study.tuning import CHOICE_FILE, TUNE_DIR, TunedPlan, choice_from_file, run_tuned, tune_dir


def print_plan(console: Console, study: Study, plan: TunedPlan, out: Path) -> None:
    """`run --dry-run` of a tuned study: each stage's runs, cohorts to train and env steps."""
    tune = study.tune
    assert tune is not None
    n_points, n_cands = len(grid(study)), len(tune.grid())
    table = Table("stage", "runs", "to train", "cohorts", "env steps to train", "seeds", title=f"{study.name}: tuned "
                  "in two stages")
    s1_steps = sum(c.env_steps for c in plan.stage1_todo)
    n1 = sum(len(c.configs) for c in plan.stage1_todo)
    table.add_row("1 tuning", f"{n_points} configs × {n_cands} candidates × {len(tune.seeds)} seeds = "
                  f"{len(plan.stage1_configs)}", str(n1),
                  str(len(plan.stage1_todo)), f"{s1_steps:,}", _seeds(tune.seeds))
    if plan.stage2_todo is not None:
        s2 = (str(sum(len(c.configs) for c in plan.stage2_todo)), str(len(plan.stage2_todo)),
              f"{sum(c.env_steps for c in plan.stage2_todo):,}")
    else:
        s2 = (str(plan.stage2_runs), "after stage 1", f"≤ {plan.stage2_env_steps:,}")
    table.add_row("2 evaluation", f"{n_points} configs × {len(study.seeds)} seeds = {plan.stage2_runs}", *s2,
                  _seeds(study.seeds))
    console.print(table)
    console.print(f"stage 1 (tuning): {len(plan.stage1_configs)} runs, {n1} to train, "
                  f"{s1_steps:,} env steps; stage 2 (evaluation): {plan.stage2_runs} runs, "
                  + (f"{s2[0]} to train, {s2[2]} env steps" if plan.stage2_todo is not None
                     else f"known after stage 1, {s2[2]} env steps"))
    console.print("tuned: " + ", ".join(f"{k} ∈ {list(v)}" for k, v in tune.candidates.items())
                  + f"; chosen per config by the highest mean {tune.metric} over the tuning seeds")
    console.print(f"stage 1 → {out / TUNE_DIR}, the choice → {out / CHOICE_FILE}, stage 2 → {out} (dry run: nothing "
                  "written)")


def _seeds(seeds: tuple[int, ...]) -> str:
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]}"
    return ", ".join(map(str, seeds))


def run(console: Console, study: Study, out: Path, executor: Any, *, retry_failed: bool, cohort_size: int | None,
        print_summary: Callable[[Console, StudySummary, str | None], None]) -> StudySummary:
    """Both stages; prints stage 1's counts and the choice, returns stage 2's summary (its `failed` also lists stage
    1's failed runs, so the exit code says so), or stage 1's if stage 2 could not start."""
    result = run_tuned(study, out, executor, retry_failed=retry_failed, cohort_size=cohort_size,
                       progress=lambda stage: RichProgress(console, f"{study.name} {stage}"))
    console.print("stage 1 (tuning):", end=" ")
    print_summary(console, result.stage1, None)
    if result.stage2 is None:
        return result.stage1
    chosen = result.choice[result.choice["chosen"] == "True"] if result.choice is not None else None
    if chosen is not None:
        assert study.tune is not None
        table = Table(*study.factors, *study.tune.candidates, f"mean {study.tune.metric}", title="chosen per config")
        for _, row in chosen.iterrows():
            table.add_row(*[row[k] for k in (*study.factors, *study.tune.candidates)], f"{float(row['mean']):.4g}")
        console.print(table)
    console.print("stage 2 (evaluation):", end=" ")
    summary = result.stage2
    summary.failed = list(result.stage1.failed) + list(summary.failed)
    return summary


def status(console: Console, results_dir: Path, print_summary: Callable[[Console, StudySummary, str | None], None],
           counts: Callable[[ResultsDir, list[str]], StudySummary], stage2_started: bool) -> bool:
    """Print stage 1's counts (`counts`: from its parts, or its runs.csv once packed) if `results_dir` is a tuned
    study's; → whether it is one."""
    results = ResultsDir(tune_dir(results_dir))
    manifest = results.read_manifest()
    if manifest is None:
        return False
    summary = counts(results, manifest["run_ids"])
    holder = results.lock_holder()
    console.print(f"stage 1 (tuning), {tune_dir(results_dir)}: {summary.total} runs"
                  + (f"; running now (pid {holder})" if holder else ""))
    print_summary(console, summary, None)
    choice = Path(results_dir) / CHOICE_FILE
    if choice.is_file():
        df = read_text_table(choice)
        console.print(f"choice recorded in {choice} ({int((df['chosen'] == 'True').sum())} configs)")
    if not stage2_started:
        console.print("stage 2 (evaluation): not started")
    else:
        console.print("stage 2 (evaluation):", end=" ")
    return True


def print_choices(console: Console, study: Study, published: Path, fresh: Path) -> None:
    """`reproduce` of a tuned study, not bit-identical: the published and the fresh choice per config, and how many
    configs chose the same candidate."""
    from ..report.load import config_label, format_level

    def shown(choice: dict[str, Any]) -> str:
        return ", ".join(f"{k} = {format_level(v)}" for k, v in choice.items())

    if not (fresh / CHOICE_FILE).is_file():
        console.print(f"the choice: the fresh run wrote no {CHOICE_FILE} (its stage 1 did not finish)")
        return
    points = grid(study)
    pub, new = choice_from_file(study, published / CHOICE_FILE), choice_from_file(study, fresh / CHOICE_FILE)
    table = Table("config", "published", "fresh", "same", title=f"the choice per config ({CHOICE_FILE})")
    for point, a, b in zip(points, pub, new):
        table.add_row(config_label(point, list(study.factors)), shown(a), shown(b), "yes" if a == b else "NO")
    console.print(table)
    same = sum(a == b for a, b in zip(pub, new))
    console.print(f"the choice: {same} of {len(points)} configs chose the same candidate as published")
