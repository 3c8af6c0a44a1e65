"""random_scores.csv: measured by the driver for a multi-env study, and for a single-env study whose [report] sets
random_episodes; atomically, kept on a rerun; the study's imports are imported first."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pandas as pd

from ablations.study.design import parse_study
from ablations.study.driver import run_study
from ablations.study.executors import SerialExecutor
from ablations.study.random_scores import COLUMNS, FILE, ensure_random_scores

RAW = {"name": "m", "seeds": 2, "fixed": {"total_steps": 1000},
       "factors": {"env_id": ["CartPole-v1", "Acrobot-v1"], "baseline": ["none", "mean"]},
       "report": {"random_episodes": 5}}


def test_written_for_a_multi_env_study_and_kept_on_rerun(tmp_path: Path) -> None:
    study = parse_study(RAW)
    path = ensure_random_scores(tmp_path, study)
    assert path == tmp_path / FILE
    df = pd.read_csv(path)
    assert list(df.columns) == COLUMNS and list(df["env_id"]) == ["CartPole-v1", "Acrobot-v1"]
    assert list(df["episodes"]) == [5, 5] and df.loc[1, "random_score"] == -500.0
    mtime = path.stat().st_mtime_ns
    ensure_random_scores(tmp_path, study)
    assert path.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob(".*tmp*"))


def test_not_written_for_one_env_without_random_episodes(tmp_path: Path) -> None:
    study = parse_study({**RAW, "factors": {"baseline": ["none", "mean"]}, "fixed": {"env_id": "CartPole-v1"},
                         "report": {"seed": 1}})
    assert ensure_random_scores(tmp_path, study) is None and not (tmp_path / FILE).exists()


ONE_ENV = {"name": "one", "seeds": 1, "fixed": {"env_id": "CartPole-v1", "total_steps": 200, "hidden": [8],
                                                "eval_episodes": 1}}


def test_single_env_study_with_random_episodes_measures_it_through_run_study(tmp_path: Path) -> None:
    run_study(parse_study({**ONE_ENV, "report": {"random_episodes": 3}}), tmp_path / "with", SerialExecutor())
    df = pd.read_csv(tmp_path / "with" / FILE)
    assert list(df.columns) == COLUMNS and list(df["env_id"]) == ["CartPole-v1"]
    assert list(df["episodes"]) == [3] and list(df["seed"]) == [0] and df.loc[0, "random_std"] > 0
    run_study(parse_study(ONE_ENV), tmp_path / "without", SerialExecutor())
    assert (tmp_path / "without" / "runs.csv").exists() and not (tmp_path / "without" / FILE).exists()


def test_imports_the_study_modules_before_measuring(tmp_path: Path) -> None:
    module = "ablations_random_scores_env"
    (tmp_path / f"{module}.py").write_text(
        "import gymnasium as gym\n"
        "gym.register(id='RandomScoresCart-v0', entry_point='gymnasium.envs.classic_control:CartPoleEnv', "
        "max_episode_steps=20)\n")
    study = parse_study({**ONE_ENV, "report": {"random_episodes": 2}})
    study = dataclasses.replace(study, fixed={**study.fixed, "env_id": "RandomScoresCart-v0"}, imports=(module,),
                                import_paths=(str(tmp_path),))
    assert module not in sys.modules
    try:
        df = pd.read_csv(ensure_random_scores(tmp_path / "out", study))
    finally:
        sys.modules.pop(module, None)
    assert list(df["env_id"]) == ["RandomScoresCart-v0"] and df.loc[0, "random_max"] <= 20
