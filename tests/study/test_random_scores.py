"""random_scores.csv: measured by the driver for a multi-env study only, atomically, kept on a rerun."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ablations.study.design import parse_study
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


def test_not_written_for_one_env(tmp_path: Path) -> None:
    study = parse_study({**RAW, "factors": {"baseline": ["none", "mean"]}, "fixed": {"env_id": "CartPole-v1"}})
    assert ensure_random_scores(tmp_path, study) is None and not (tmp_path / FILE).exists()
