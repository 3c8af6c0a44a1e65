"""Progress of a study run: env steps (live, from the workers), runs done/failed/total, env-steps/s, ETA.

Workers report env-step deltas per cohort; the bar counts the steps the runs really take. A run stops after the first
update that reaches its budget, so its last batch of N complete episodes may take it past the budget (by less than
N × the env's episode step limit): the step count then passes the planned total, and says so. A finished cohort counts
its runs' recorded env steps (a cohort retried run by run reports its steps twice while it runs). The same display
serves every executor: Ray tasks send their steps through a Ray queue instead of a multiprocessing one.

`InFlight` is the Ray driver's record of the cohorts it has in flight (`in_flight.json`, for `ablations status`).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress as RichBar, TaskProgressColumn, TextColumn, TimeRemainingColumn

from .cohorts import Cohort


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
    units = (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0))
    for i, (unit, scale) in enumerate(units[:-1]):
        if abs(x) >= scale:
            text = f"{x / scale:.3g}"
            if float(text) >= 1000 and i > 0:  # rounds up to the next unit: 999_999 → '1M', not '1e+03k'
                return f"{x / units[i - 1][1]:.3g}{units[i - 1][0]}"
            return f"{text}{unit}"
    text = f"{x:.0f}"
    return "1k" if abs(float(text)) >= 1000 else text


class RichProgress(Progress):
    """A rich progress bar on `console`."""

    def __init__(self, console: Console | None = None, description: str = "training") -> None:
        super().__init__()
        if console is not None and not console.is_terminal:  # a log or a pipe: the line whole, not cut at 80 columns
            console = Console(file=console.file, width=1000, highlight=False, soft_wrap=True)
        self.bar = RichBar(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=16), TaskProgressColumn(),
            TextColumn("{task.fields[steps]}"), TimeRemainingColumn(), TextColumn("{task.fields[runs]}"),
            console=console, transient=False,
        )
        self.description = description
        self.task: int | None = None
        self.by_runs = False  # a budget in episodes (total_episodes): its steps are unknown, the bar counts runs

    def start(self, todo: Sequence[Cohort], *, done_runs: int, total_runs: int) -> None:
        self.bar.start()
        self.by_runs = any(cfg.total_episodes is not None for c in todo for cfg in c.configs)
        self.task = self.bar.add_task(self.description, total=max(1, total_runs if self.by_runs else
                                                                  sum(c.env_steps for c in todo)), steps="", runs="")
        super().start(todo, done_runs=done_runs, total_runs=total_runs)

    def refresh(self) -> None:
        if self.task is None:
            return
        elapsed = max(1e-9, time.monotonic() - self.t0)
        done = self.completed_steps
        runs = f"runs {self.done}/{self.total_runs} done, {self.failed} failed"
        runs += f", {self.diverged} diverged" if self.diverged else ""
        if self.by_runs:
            self.bar.update(self.task, completed=self.done + self.failed + self.diverged, runs=runs,
                            steps=f"{si(done)} steps {si(done / elapsed)}/s")
            return
        over = f" (+{si(done - self.total_steps)} past the budget)" if done > self.total_steps else ""
        self.bar.update(self.task, completed=min(done, self.total_steps), runs=runs,
                        steps=f"{si(done)}/{si(self.total_steps)} steps{over} {si(done / elapsed)}/s")

    def warn(self, message: str) -> None:
        super().warn(message)
        self.bar.console.print(f"warning: {message}", markup=False, highlight=False)

    def stop(self) -> None:
        self.refresh()
        self.bar.stop()


# ---- cohorts in flight (Ray): a small JSON file in the results directory, for `ablations status` ------------------
IN_FLIGHT_FILE = "in_flight.json"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (signal 0: permission errors mean it exists)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return True


def read_in_flight(root: str | Path) -> dict[str, Any] | None:
    """The in-flight record of a results directory, None if there is none (or it is unreadable: it is advisory)."""
    try:
        data = json.loads((Path(root) / IN_FLIGHT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("cohorts"), dict) else None


class InFlight:
    """The driver's record of its cohorts in flight: queued (submitted) or running (with Ray's node, task and worker
    pid, as the task reported on starting). Rewritten atomically at most every `every` seconds while it changes,
    removed at the end. Advisory only: the parts on disk say what is done."""

    def __init__(self, root: str | Path, executor: str, address: str | None = None, every: float = 1.0) -> None:
        self.path = Path(root) / IN_FLIGHT_FILE
        self.head = {"driver_pid": os.getpid(), "driver_host": socket.gethostname(), "executor": executor,
                     "address": address, "started": _stamp()}
        self.cohorts: dict[str, dict[str, Any]] = {}
        self.every, self.dirty = every, False
        self.last: float | None = None  # monotonic time of the last write; None: the first is not held back

    def queued(self, cohort: Cohort) -> None:
        self.cohorts[cohort.id] = {"state": "queued", "runs": len(cohort.configs)}
        self.dirty = True

    def running(self, cohort_id: str, where: dict[str, Any]) -> None:
        if cohort_id in self.cohorts:
            self.cohorts[cohort_id].update(where, state="running")
            self.dirty = True

    def finished(self, cohort_id: str) -> None:
        if self.cohorts.pop(cohort_id, None) is not None:
            self.dirty = True

    def flush(self, force: bool = False) -> None:
        t = time.monotonic()
        if self.dirty and (force or self.last is None or t - self.last >= self.every):
            from .results_format import write_json_atomic

            write_json_atomic(self.path, {**self.head, "updated": _stamp(), "cohorts": self.cohorts})
            self.last, self.dirty = t, False

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")
