"""What `run` shows of a study with a `[tune]` section (called by `cli.run`): both stages' dry-run plan and the
choice per config; and `reproduce`'s comparison of the choice (called by `cli.publish`). Thin: the stages are
`ablations.study.stages`', the choice and its storage `ablations.study.tuning`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from ..study.design import Study, grid
from ..study.stages import StudyPlan
from ..study.tuning import CHOICE_FILE, TUNE_DIR, choice_from_file


def print_plan(console: Console, plan: StudyPlan) -> None:
    """`run --dry-run` of a tuned study: each stage's runs, cohorts to train and env steps."""
    study, out, (stage1, stage2) = plan.study, plan.out, plan.stages
    tune = study.tune
    assert tune is not None and stage1.configs is not None and stage1.todo is not None
    n_points = len(grid(study))
    n_cands = "/".join(map(str, sorted({len(tune.grid(e)) for e in (None, *tune.env)})))
    table = Table("stage", "runs", "to train", "cohorts", "env steps to train", "seeds", title=f"{study.name}: tuned "
                  "in two stages")
    s1_steps = sum(c.env_steps for c in stage1.todo)
    n1 = sum(len(c.configs) for c in stage1.todo)
    table.add_row("1 tuning", f"{n_points} configs × {n_cands} candidates × {len(tune.seeds)} seeds = "
                  f"{len(stage1.configs)}", str(n1),
                  str(len(stage1.todo)), f"{s1_steps:,}", _seeds(tune.seeds))
    if stage2.todo is not None:
        s2 = (str(sum(len(c.configs) for c in stage2.todo)), str(len(stage2.todo)),
              f"{sum(c.env_steps for c in stage2.todo):,}")
    else:
        s2 = (str(stage2.n_runs), "after stage 1", f"≤ {stage2.env_steps:,}")
    table.add_row("2 evaluation", f"{n_points} configs × {len(study.seeds)} seeds = {stage2.n_runs}", *s2,
                  _seeds(study.seeds))
    console.print(table)
    console.print(f"stage 1 (tuning): {len(stage1.configs)} runs, {n1} to train, "
                  f"{s1_steps:,} env steps; stage 2 (evaluation): {stage2.n_runs} runs, "
                  + (f"{s2[0]} to train, {s2[2]} env steps" if stage2.todo is not None
                     else f"known after stage 1, {s2[2]} env steps"))
    console.print("tuned: " + ", ".join(f"{k} ∈ {list(v)}" for k, v in tune.candidates.items())
                  + "".join(f"; {e}: " + ", ".join(f"{k} ∈ {list(v)}" for k, v in own.items())
                            for e, own in tune.env.items())
                  + f"; chosen per config by the highest mean {tune.metric} over the tuning seeds")
    console.print(f"stage 1 → {out / TUNE_DIR}, the choice → {out / CHOICE_FILE}, stage 2 → {out} (dry run: nothing "
                  "written)")


def _seeds(seeds: tuple[int, ...]) -> str:
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]}"
    return ", ".join(map(str, seeds))


def print_chosen(console: Console, study: Study, choice: pd.DataFrame) -> None:
    """The chosen candidate per config and its mean score (after stage 1 of `run`)."""
    assert study.tune is not None
    chosen = choice[choice["chosen"] == "True"]
    table = Table(*study.factors, *study.tune.candidates, f"mean {study.tune.metric}", title="chosen per config")
    for _, row in chosen.iterrows():
        table.add_row(*[row[k] for k in (*study.factors, *study.tune.candidates)], f"{float(row['mean']):.4g}")
    console.print(table)


def print_choices(console: Console, study: Study, published: Path, fresh: Path) -> None:
    """`reproduce` of a tuned study, not bit-identical: the published and the fresh choice per config, and how many
    configs chose the same candidate."""
    from ..report.load import config_label, level_label

    def shown(choice: dict[str, Any]) -> str:
        return ", ".join(f"{k} = {level_label(v)}" for k, v in choice.items())

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
