"""`ablations.study.progress`: what `Progress` (= `NullProgress`) counts — planned and live env steps per cohort, runs
done/failed/diverged, warnings — the `si` count format, and the text `RichProgress` puts in its bar. Time enters
only through the module's monotonic clock, replaced here by a hand-driven one (`InFlight` is tested in
test_in_flight.py)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from ablations.config import RunConfig
from ablations.study import progress
from ablations.study.cohorts import Cohort
from ablations.study.progress import NullProgress, Progress, RichProgress, si


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def monotonic(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=c.monotonic))
    return c


def _cohort(cid: str, n: int, steps: int = 400) -> Cohort:
    return Cohort(cid, tuple(RunConfig(seed=s, total_steps=steps) for s in range(n)))


#: A: 3 runs × 400 steps = 1200 planned; B: 2 runs × 400 = 800; 2000 in all
TODO = [_cohort("A", 3), _cohort("B", 2)]


class Counting(Progress):
    def __init__(self) -> None:
        super().__init__()
        self.refreshes = 0

    def refresh(self) -> None:
        self.refreshes += 1


def test_null_progress_is_the_counting_base():
    assert NullProgress is Progress
    p = Progress()
    assert (p.planned, p.live, p.total_steps, p.total_runs, p.done, p.failed, p.diverged, p.warnings) == \
        ({}, {}, 0, 0, 0, 0, 0, [])
    assert p.completed_steps == 0
    assert p.refresh() is None and p.stop() is None


def test_start_plans_each_cohorts_budget():
    p = Progress()
    p.start(TODO, done_runs=4, total_runs=9)
    assert p.planned == {"A": 1200, "B": 800} and p.live == {"A": 0, "B": 0}
    assert (p.total_steps, p.total_runs, p.done, p.failed, p.diverged) == (2000, 9, 4, 0, 0)


def test_steps_add_up_per_cohort_and_unknown_cohorts_are_ignored():
    p = Progress()
    p.start(TODO, done_runs=0, total_runs=5)
    p.steps("A", 100)
    p.steps("A", 250)
    p.steps("B", 30.0)  # counted as an int
    p.steps("Z", 10_000)  # not in this run's plan
    assert p.live == {"A": 350, "B": 30} and p.completed_steps == 380
    assert isinstance(p.live["B"], int)


def test_cohort_done_counts_statuses_and_recorded_steps():
    p = Progress()
    p.start(TODO, done_runs=1, total_runs=6)
    p.steps("A", 999)
    p.cohort_done("A", ["done", "failed", "diverged"], env_steps=1290)  # the runs' recorded steps replace the live
    assert p.live["A"] == 1290 and (p.done, p.failed, p.diverged) == (2, 1, 1)
    p.cohort_done("B", ["done", "done"])  # no recorded steps: the planned budget
    assert p.live["B"] == 800 and (p.done, p.failed, p.diverged) == (4, 1, 1)
    assert p.completed_steps == 1290 + 800


def test_every_change_refreshes_the_display():
    p = Counting()
    p.start(TODO, done_runs=0, total_runs=5)
    assert p.refreshes == 1
    p.steps("A", 1)
    p.steps("Z", 1)  # ignored: no redraw
    p.cohort_done("B", ["done", "done"])
    assert p.refreshes == 3


def test_warnings_are_kept_in_order():
    p = Progress()
    p.warn("part 1 was corrupt")
    p.warn("part 2 was corrupt")
    assert p.warnings == ["part 1 was corrupt", "part 2 was corrupt"]


@pytest.mark.parametrize("x, text", [
    (0, "0"), (12.4, "12"), (999, "999"), (1000, "1k"), (1500, "1.5k"), (1234567, "1.23M"), (20_000, "20k"),
    (2.5e9, "2.5G"), (-1500, "-1.5k"), (999_499, "999k"),
])
def test_si(x, text):
    assert si(x) == text


@pytest.mark.parametrize("x, text", [(999_999, "1M"), (999_999_999, "1G")])
def test_si_rounds_up_to_the_next_unit(x, text):
    assert si(x) == text


def _fields(p: RichProgress) -> dict:
    task = p.bar.tasks[0]
    return {"completed": task.completed, "total": task.total, **task.fields}


def test_rich_progress_shows_steps_rate_and_runs(clock):
    out = io.StringIO()
    p = RichProgress(Console(file=out, width=200, color_system=None), "quick")
    p.start(TODO, done_runs=1, total_runs=6)
    assert p.bar.tasks[0].description == "quick"
    assert _fields(p) == {"completed": 0, "total": 2000, "steps": "0/2k steps 0/s", "runs": "runs 1/6 done, 0 failed"}
    clock.t = 110.0  # 10 s later
    p.steps("A", 1000)
    assert _fields(p)["steps"] == "1k/2k steps 100/s" and _fields(p)["completed"] == 1000
    p.cohort_done("A", ["done", "failed", "diverged"], env_steps=1500)
    clock.t = 120.0
    p.cohort_done("B", ["done", "done"], env_steps=1000)  # 2500 steps: past the planned 2000
    fields = _fields(p)
    assert fields["completed"] == 2000  # the bar stops at its total
    assert fields["steps"] == "2.5k/2k steps (+500 past the budget) 125/s"
    assert fields["runs"] == "runs 4/6 done, 1 failed, 1 diverged"
    p.stop()


def test_rich_progress_with_nothing_to_do_has_a_total_of_one(clock):
    p = RichProgress(Console(file=io.StringIO(), width=200, color_system=None))
    p.start([], done_runs=5, total_runs=5)
    assert _fields(p) == {"completed": 0, "total": 1, "steps": "0/0 steps 0/s", "runs": "runs 5/5 done, 0 failed"}
    assert p.bar.tasks[0].description == "training"
    p.stop()


def test_rich_progress_before_start_draws_nothing(clock):
    p = RichProgress(Console(file=io.StringIO(), width=200, color_system=None))
    p.refresh()  # no task yet: a no-op
    assert p.task is None and p.bar.tasks == []


def test_rich_progress_prints_warnings_verbatim(clock):
    out = io.StringIO()
    p = RichProgress(Console(file=out, width=200, color_system=None))
    p.warn("cohort [bold]c1[/] retrained")  # no markup interpretation
    assert p.warnings == ["cohort [bold]c1[/] retrained"]
    assert out.getvalue() == "warning: cohort [bold]c1[/] retrained\n"
