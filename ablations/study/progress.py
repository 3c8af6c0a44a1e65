"""Progress of a study run: env steps (live, from the workers), runs done/failed/total, env-steps/s, ETA.

Workers report env-step deltas per cohort; the bar counts the steps the runs really take. A run stops after the first
update that reaches its budget, so its last batch of N complete episodes may take it past the budget (by less than
N × the env's episode step limit): the step count then passes the planned total, and says so. A finished cohort counts
its runs' recorded env steps (a cohort retried run by run reports its steps twice while it runs).
"""

from __future__ import annotations

import time
from typing import Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress as RichBar, TaskProgressColumn, TextColumn, TimeRemainingColumn

from .design import Cohort


class Progress:
    """Counts only (the base for displays); also the no-op display."""

    def __init__(self) -> None:
        self.planned: dict[str, int] = {}
        self.live: dict[str, int] = {}
        self.total_steps = 0
        self.total_runs = 0
        self.done = self.failed = self.diverged = 0
        self.t0 = time.monotonic()
        self.warnings: list[str] = []

    def start(self, todo: Sequence[Cohort], *, done_runs: int, total_runs: int) -> None:
        self.planned = {c.id: c.env_steps for c in todo}
        self.live = {c.id: 0 for c in todo}
        self.total_steps = sum(self.planned.values())
        self.total_runs, self.done = total_runs, done_runs
        self.t0 = time.monotonic()
        self.refresh()

    def steps(self, cohort_id: str, delta: int) -> None:
        if cohort_id in self.live:
            self.live[cohort_id] = self.live[cohort_id] + int(delta)
            self.refresh()

    def warn(self, message: str) -> None:
        """Something the user should know that is not an error (e.g. a corrupt part trained again)."""
        self.warnings.append(message)

    def cohort_done(self, cohort_id: str, statuses: Sequence[str], env_steps: int | None = None) -> None:
        """`env_steps`: the steps the cohort's runs recorded (None: count the planned budget)."""
        if cohort_id in self.live:
            self.live[cohort_id] = self.planned[cohort_id] if env_steps is None else int(env_steps)
        self.failed += sum(s == "failed" for s in statuses)
        self.diverged += sum(s == "diverged" for s in statuses)
        self.done += sum(s not in ("failed", "diverged") for s in statuses)
        self.refresh()

    @property
    def completed_steps(self) -> int:
        return sum(self.live.values())

    def refresh(self) -> None:
        """Redraw (no-op here)."""

    def stop(self) -> None:
        """Close the display (no-op here)."""


NullProgress = Progress


def si(x: float) -> str:
    """1234567 → '1.23M' (compact counts for the progress line)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.0f}"


class RichProgress(Progress):
    """A rich progress bar on `console`."""

    def __init__(self, console: Console | None = None, description: str = "training") -> None:
        super().__init__()
        self.bar = RichBar(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=16), TaskProgressColumn(),
            TextColumn("{task.fields[steps]}"), TimeRemainingColumn(), TextColumn("{task.fields[runs]}"),
            console=console, transient=False,
        )
        self.description = description
        self.task: int | None = None

    def start(self, todo: Sequence[Cohort], *, done_runs: int, total_runs: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task(self.description, total=max(1, sum(c.env_steps for c in todo)),
                                      steps="", runs="")
        super().start(todo, done_runs=done_runs, total_runs=total_runs)

    def refresh(self) -> None:
        if self.task is None:
            return
        elapsed = max(1e-9, time.monotonic() - self.t0)
        done = self.completed_steps
        runs = f"runs {self.done}/{self.total_runs} done, {self.failed} failed"
        runs += f", {self.diverged} diverged" if self.diverged else ""
        over = f" (+{si(done - self.total_steps)} past the budget)" if done > self.total_steps else ""
        self.bar.update(self.task, completed=min(done, self.total_steps), runs=runs,
                        steps=f"{si(done)}/{si(self.total_steps)} steps{over} {si(done / elapsed)}/s")

    def warn(self, message: str) -> None:
        super().warn(message)
        self.bar.console.print(f"warning: {message}", markup=False, highlight=False)

    def stop(self) -> None:
        self.refresh()
        self.bar.stop()
