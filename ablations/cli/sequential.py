"""What `run` and `status` show of a study with a `[sequential]` section (called by `cli.run`): the dry-run plan
with the minimum and maximum cost, the waves and the decisions. Thin: the waves are `ablations.study.sequential`'s
(`replay`, a pure function of the rows on disk), the plan `ablations.study.stages`'."""

from __future__ import annotations

from typing import Any, Mapping

from rich.console import Console
from rich.table import Table

from ..study.design import Study, grid, point_fields
from ..study.sequential import SequentialState
from ..study.stages import StudyPlan
from ..config import RunConfig


def cost(study: Study, seeds: int) -> tuple[int, int]:
    """(runs, env-step budget) of every config at `seeds` seeds."""
    steps = sum(int(point_fields(study, p).get("total_steps", RunConfig().total_steps)) for p in grid(study))
    return len(grid(study)) * seeds, steps * seeds


def print_plan(console: Console, plan: StudyPlan) -> None:
    """`run --dry-run` of a sequential study: the rule, the minimum and maximum cost, the waves so far and the
    wave to train now."""
    study, stage, state = plan.study, plan.stages[0], plan.waves
    spec = study.sequential
    assert spec is not None and state is not None
    fams = {}
    for c in state.contrasts:
        fams[c.family] = fams.get(c.family, 0) + 1
    lo, hi = cost(study, spec.min), cost(study, spec.max)
    console.print(f"{study.name}: sequential, {len(grid(study))} configs; seeds added in waves of {spec.step} from "
                  f"{spec.min} to {spec.max} a config (looks at {', '.join(map(str, spec.counts()))} seeds); decided "
                  f"on {spec.metric}: " + ", ".join(f"{f} ({n} contrasts)" for f, n in fams.items()))
    console.print(f"cost: at least {lo[0]:,} runs and {lo[1]:,} env steps (every contrast decided at the first look), "
                  f"at most {hi[0]:,} runs and {hi[1]:,} env steps (every config at every seed: the fixed design)")
    print_waves(console, state.waves, state.stopped, state.reason)
    todo = stage.todo or []
    console.print(f"to train now: {sum(len(c.configs) for c in todo)} runs in {len(todo)} cohort(s), "
                  f"{sum(c.env_steps for c in todo):,} env steps; later waves are decided from these runs' results; "
                  f"results → {plan.out} (dry run: nothing written)")


def print_waves(console: Console, waves: list[Mapping[str, Any]], stopped: bool, reason: str) -> None:
    """One row per wave (its seeds, the configs it grew, its runs and budget, whether it is complete), and whether
    the rule stopped."""
    table = Table("wave", "seeds a config", "configs grown", "runs", "env-step budget", "complete", title="waves")
    for w in waves:
        table.add_row(str(w["wave"]), str(w["seeds"]), str(w["configs"]), str(w["runs"]), f"{w['budget_steps']:,}",
                      "yes" if w["complete"] else "no")
    console.print(table)
    console.print(f"stopped: {reason}" if stopped else "not stopped: the next wave is decided when this one is "
                  "complete")


def print_decisions(console: Console, state: SequentialState) -> None:
    """Each contrast's decision (anytime-valid interval) after the last look."""
    d = state.decisions
    if not len(d):
        return
    table = Table("family", *(["env"] if (d["env"] != "").any() else []), "contrast", "seeds", "estimate",
                  "anytime-valid interval", "verdict", title="decisions (every look: ablations report)")
    for _, r in d.iterrows():
        table.add_row(r["family"], *([r["env"]] if (d["env"] != "").any() else []), r["contrast"], str(r["n"]),
                      f"{r['estimate']:.4g}", f"[{r['run_low']:.4g}, {r['run_high']:.4g}]", r["verdict"])
    console.print(table)


def print_record(console: Console, record: Mapping[str, Any]) -> None:
    """`status` of a sequential study: its waves and decisions as its manifest records them."""
    print_waves(console, record.get("waves") or [], bool(record.get("stopped")), str(record.get("reason", "")))
    decided = record.get("decided") or {}
    if decided:
        console.print(f"contrasts ({record.get('contrasts', '?')}): "
                      + ", ".join(f"{k} {v}" for k, v in decided.items()))
