"""The uniform-random policy in a single-env report: read from the results' random_scores.csv (the driver writes it
when `[report] random_episodes` is set), stated in the Summary with its t-interval, drawn in the learning curves and
written as tables/random_policy.csv; without the file the report is unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats as sps

from ablations.report import build_report
from ablations.report import metrics as mt
from ablations.report.build import compute
from ablations.report.load import load_results
from ablations.report.text import fmt
from ablations.study.random_scores import FILE, random_scores_table


def test_t_interval_equals_scipy_by_hand() -> None:
    x = np.array([-21.0, -20.0, -21.0, -19.0, -21.0, -20.0, -21.0])
    low, high = mt.t_interval(float(x.mean()), float(x.std(ddof=1)), len(x), 0.95)
    want = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=x.std(ddof=1) / np.sqrt(len(x)))
    np.testing.assert_allclose([low, high], want, rtol=1e-12)
    np.testing.assert_allclose(mt.t_interval(2.0, 3.0, 10, 0.9),
                               sps.t.interval(0.9, 9, loc=2.0, scale=3.0 / np.sqrt(10)), rtol=1e-12)
    assert mt.t_interval(-21.0, 0.0, 5) == (-21.0, -21.0)
    assert all(np.isnan(mt.t_interval(-21.0, 0.0, 1))) and all(np.isnan(mt.t_interval(1.0, np.nan, 5)))


def test_random_policy_row_from_the_csv() -> None:
    rs = random_scores_table(["CartPole-v1", "Acrobot-v1"], 4, 0)
    row = mt.random_policy(rs, "CartPole-v1").iloc[0]
    assert list(mt.random_policy(rs, "CartPole-v1").columns) == mt.RANDOM_POLICY_COLUMNS
    assert row["mean"] == rs.loc[0, "random_score"] and row["episodes"] == 4 and row["ci_method"] == "t"
    np.testing.assert_allclose([row["ci_low"], row["ci_high"]], sps.t.interval(
        0.95, 3, loc=rs.loc[0, "random_score"], scale=rs.loc[0, "random_std"] / 2), rtol=1e-12)
    assert mt.random_policy(rs, "Pendulum-v1").empty


def test_single_env_report_shows_the_random_policy(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = make_results(seeds=3)  # synthetic CartPole-v1 runs
    build_report(results, tmp_path / "plain", n_resamples=200, figures=False)
    random_scores_table(["CartPole-v1"], 5, 0).to_csv(results / FILE, index=False)
    csv = pd.read_csv(results / FILE)
    readme = build_report(results, tmp_path / "out", n_resamples=200)
    text = readme.read_text()
    table = pd.read_csv(tmp_path / "out" / "tables" / "random_policy.csv")
    assert table.loc[0, "mean"] == csv.loc[0, "random_score"] and table.loc[0, "episodes"] == 5
    line = next(ln for ln in text.splitlines() if ln.startswith("- **Uniform-random policy:**"))
    assert f"mean return {fmt(csv.loc[0, 'random_score'])}, 95% CI [" in line and "over 5 episodes" in line
    assert f"[{fmt(table.loc[0, 'ci_low'])}, {fmt(table.loc[0, 'ci_high'])}]" in line
    assert "dashed: the uniform-random policy's mean return" in text
    assert (tmp_path / "out" / "figures" / "learning_curves.png").stat().st_size > 1000
    # a multi-env study's per-env reports (compute(random_policy=False)) leave it to the top README's normalization
    assert "random_policy" not in compute(load_results(results), n_resamples=50, random_policy=False).tables
    plain = (tmp_path / "plain" / "README.md").read_text()
    assert "random_policy" not in plain and "Uniform-random policy" not in plain
    assert not (tmp_path / "plain" / "tables" / "random_policy.csv").exists()
    random_scores_table(["Acrobot-v1"], 2, 0).to_csv(results / FILE, index=False)  # not the study's env: no line
    build_report(results, tmp_path / "other", n_resamples=200, figures=False)
    assert not (tmp_path / "other" / "tables" / "random_policy.csv").exists()
