"""The `ablations report` command: options, errors, a custom env without render_mode (the report is written without
its video and says why), runs.csv and the report agreeing on final return, and the default output directory of a
results directory that is not the study's default."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ablations.cli.app import app


def _has_report() -> bool:
    return "report" in getattr(get_command(app), "commands", {})


pytestmark = pytest.mark.skipif(not _has_report(), reason="`report` is not registered in ablations.cli yet")


def test_report_command(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = make_results()
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", str(results), "--out", str(out), "--seed", "1", "--resamples", "1000",
                                   "--threshold", "150"])
    assert res.exit_code == 0, res.output
    assert (out / "README.md").exists() and "README.md" in res.output


def test_report_command_error_names_file(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = make_results()
    (results / "runs.csv").unlink()
    res = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "runs.csv" in res.output


# ------------------------------------------------------------------ a custom env: no render_mode, return = −length
class ShortIsGood(gym.Env):
    """Reward −1 a step; action 1 ends the episode from the 3rd step on, else it ends at 40 steps: return = −length.
    Its __init__ takes no render_mode (so no video can be recorded)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self) -> None:
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0, 1.0], np.float32), {}

    def step(self, action: int):
        self.t += 1
        done = (int(action) == 1 and self.t >= 3) or self.t >= 40
        return np.array([self.t / 40, 1.0], np.float32), -1.0, done, False, {}


SHORT_ENV_ID = "AblationsShortIsGood-v0"
if SHORT_ENV_ID not in gym.registry:
    gym.register(SHORT_ENV_ID, entry_point=ShortIsGood)

SHORT_STUDY = f"""
name = "short"
seeds = 2
imports = ["tests.cli.test_report"]
[fixed]
env_id = "{SHORT_ENV_ID}"
total_steps = 600
episodes_per_update = 1
hidden = [8]
eval_episodes = 1
[factors]
returns = ["full", "rtg"]
"""


@pytest.fixture(scope="module")
def short_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ablations.study.design import load_study
    from ablations.study.driver import run_study
    from ablations.study.executors import SerialExecutor

    root = tmp_path_factory.mktemp("short")
    (root / "short.toml").write_text(SHORT_STUDY)
    run_study(load_study(root / "short.toml"), root / "results" / "short", SerialExecutor())
    return root / "results" / "short"


def test_a_custom_env_without_render_mode_still_gets_its_report(short_results: Path, tmp_path: Path) -> None:
    """Issue 28 item 8: the video fails (the env takes no render_mode); the report is written and says why."""
    assert (short_results / "policies").is_dir()
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", str(short_results), "--out", str(out), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    text = (out / "README.md").read_text()
    assert "No video of the best run: recording it failed (" in text and "best_run.gif" not in text


def test_report_final_return_is_runs_csv_final_return(short_results: Path, tmp_path: Path) -> None:
    """Return = −length, one episode per update: the report's per-run final return equals runs.csv's (episodes
    weigh equally; an env-step grid would weigh the long ones more)."""
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", str(short_results), "--out", str(out), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    scores = pd.read_csv(out / "tables" / "scores.csv").set_index("run_id")
    runs = pd.read_csv(short_results / "runs.csv").set_index("run_id")
    runs = runs[runs["status"] == "done"]
    assert len(runs) == 4 and (runs["final_return"] < 0).all()
    assert np.allclose(scores.loc[runs.index, "final_return"], runs["final_return"], rtol=1e-9, atol=0)  # 10 digits


def test_another_results_directory_does_not_overwrite_the_default_report(
        make_results: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 28 item 11: results/<other> of study X reports to report/<other>/, never report/X/."""
    results = make_results(name="mystudy")
    other = results.parent / "mystudy-lr"
    results.rename(other)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report" / "mystudy").mkdir(parents=True)
    (tmp_path / "report" / "mystudy" / "README.md").write_text("the default report")
    res = CliRunner().invoke(app, ["report", str(other), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report" / "mystudy" / "README.md").read_text() == "the default report"
    assert (tmp_path / "report" / "mystudy-lr" / "README.md").exists()
    assert "not the study's default results directory" in res.output
