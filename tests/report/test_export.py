"""report.export's names and rows, by hand: a run's directory name, the rows it writes, its hparams."""

from __future__ import annotations

import math

import pandas as pd

from ablations.report.export import hparams, run_metrics, scalar_rows, run_name


def test_run_name_joins_levels_and_seed():
    run = {"env_id": "ALE/Pong-v5", "baseline": "mean", "seed": 3}
    assert run_name(run, ["env_id", "baseline"]) == "env_id=ALE-Pong-v5,baseline=mean,seed=3"
    assert run_name({"seed": 0}, []) == "seed=0"


def test_scalar_rows_skip_missing_values_and_follow_updates():
    curves = pd.DataFrame({"update": [2, 1], "env_steps": [30, 12], "return_mean": [2.5, 1.0],
                           "value_loss": [math.nan, 0.25]})
    assert list(scalar_rows(curves)) == [("train/return_mean", 12, 1.0), ("train/return_mean", 30, 2.5),
                                         ("train/value_loss", 12, 0.25)]


def test_hparams_and_metrics_of_a_run():
    run = {"run_id": "x", "baseline": "mean", "seed": 1, "max_grad_norm": math.nan, "final_return": 3.5,
           "eval_return": math.nan}
    assert hparams(run) == {"baseline": "mean", "seed": 1, "max_grad_norm": ""}
    assert run_metrics(run) == {"hparams/final_return": 3.5}
