"""A study whose budget is in episodes (`total_episodes`): the report's x-axis, budget and text follow the unit, and the
study's progress bar counts runs (its env steps are not known in advance). A real tiny study of the short corridor,
trained and reported through the package."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.config import RunConfig
from ablations.report import build, plots
from ablations.report.load import load_results
from ablations.study import progress
from ablations.study.cohorts import Cohort

STUDY = """name = "sc_tiny"
seeds = 2
[fixed]
env_id = "ablations/ShortCorridor-v0"
hidden = []
init_logits = [0.0, -2.9444389791664403]
episodes_per_update = 2
total_episodes = 20
optimizer = "sgd"
gamma = 1.0
baseline = "none"
normalize = "none"
eval_episodes = 2
[factors]
policy_lr = [0.001, 0.01]
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("ep")
    (root / "sc_tiny.toml").write_text(STUDY)
    res = CliRunner().invoke(app, ["run", str(root / "sc_tiny.toml"), "--out", str(root / "res"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    return load_results(root / "res")


def test_the_budget_and_every_curve_are_in_episodes(results, tmp_path):
    assert build.budget_unit_of(results) == "episodes" and build.budget_of(results) == 20.0
    rep = build.compute(results, n_resamples=200, random_policy=False)
    assert rep.budget_unit == "episodes" and rep.grid[-1] == 20.0 and rep.grid[0] == 0.2
    bands = rep.tables["learning_curves"]
    assert "episodes" in bands.columns and "env_steps" not in bands.columns
    assert bands["episodes"].max() == 20.0
    # the curve at the last grid point is the last update's return: episodes 19-20 of each run, averaged
    last = results.curves[pd.to_numeric(results.curves["episodes"]) == 20]
    want = last.merge(results.runs[["run_id", "policy_lr"]]).groupby("policy_lr")["return_mean"].apply(
        lambda s: pd.to_numeric(s).mean())
    got = bands[bands["episodes"] == 20.0].set_index("level")["mean"]
    assert sorted(got.to_numpy()) == pytest.approx(sorted(want.to_numpy()))
    if len(rep.tables["km_curves"]):
        assert "episodes" in rep.tables["km_curves"].columns
    assert any("The budget is in episodes" in n for n in rep.notes)
    from ablations import api

    assert api.learning_curves(results, n_resamples=200).equals(bands)  # the notebook API: the same table


def test_the_report_says_episodes(results, tmp_path):
    readme = build.build_report(results, tmp_path / "rep", n_resamples=200, figures=False).read_text()
    assert "- **Budget:** 20.0 episodes per run" in readme  # `text.fmt`: 3 significant figures
    assert "Learning curves on an episode axis." in readme and "from 0.200 to 20.0 episodes" in readme
    fig = plots.learning_curves(build.compute(results, n_resamples=200, random_policy=False
                                              ).tables["learning_curves"], results.levels)
    assert fig.axes[0].get_xlabel() == "episodes"
    steps = pd.DataFrame({"factor": "f", "level": "a", "env_steps": [1.0, 2.0], "mean": 0.0, "ci_low": 0.0,
                          "ci_high": 0.0})
    assert plots.learning_curves(steps, {"f": ["a"]}).axes[0].get_xlabel() == "environment steps"


def test_a_study_that_mixes_budget_units_is_refused_by_the_report(results):
    mixed = results.done.astype({"total_steps": object, "total_episodes": object})
    mixed.loc[mixed.index[0], ["total_steps", "total_episodes"]] = [1000, None]
    with pytest.raises(ValueError, match="mix budgets in env steps"):
        build.sc.budget_unit(mixed)


def test_the_progress_bar_of_an_episode_budget_counts_runs(monkeypatch):
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=lambda: 100.0))
    cohort = Cohort("A", tuple(RunConfig(seed=s, total_episodes=16) for s in range(3)))
    p = progress.RichProgress(Console(file=io.StringIO(), width=200, color_system=None))
    p.start([cohort], done_runs=0, total_runs=3)
    assert p.bar.tasks[0].total == 3
    p.steps("A", 500)
    p.cohort_done("A", ["done", "done", "diverged"], env_steps=900)
    task = p.bar.tasks[0]
    assert task.completed == 3 and task.fields["steps"].startswith("900 steps") and "past" not in task.fields["steps"]
    p.stop()
    assert np.isfinite(task.completed)
