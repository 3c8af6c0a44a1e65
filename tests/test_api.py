"""ablations.api: README's "From Python" example runs on a tiny results directory trained in the test, and each
function returns the report's own numbers (the table `report.build.compute` makes, for the same settings)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ablations.api as ab
from ablations.cli.app import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## From Python\n", 1)[1].split("\n## ", 1)[0]
EXAMPLE = re.findall(r"```python\n(.*?)```", SECTION, re.S)
TINY = """name = "quick"
seeds = 2
probe_seeds = 1
[fixed]
env_id = "CartPole-v1"
total_steps = 600
episodes_per_update = 4
hidden = [4]
eval_episodes = 1
probe_every = 2
probe_batches = 2
[factors]
baseline = ["none", "mean"]
"""
R = 200  # bootstrap resamples in the comparisons below (the example runs with the report's 10,000)


@pytest.fixture(scope="module")
def results_root(tmp_path_factory) -> Path:
    """A directory holding results/quick: 2 configs x 2 seeds of CartPole, 600 steps each, probes on seed 0."""
    root = tmp_path_factory.mktemp("api")
    (root / "tiny.toml").write_text(TINY, encoding="utf-8")
    res = CliRunner().invoke(app, ["run", str(root / "tiny.toml"), "--out", str(root / "results" / "quick"),
                                   "--workers", "1"])
    assert res.exit_code == 0, res.output
    return root


@pytest.fixture(scope="module")
def res(results_root) -> ab.Results:
    return ab.load(results_root / "results" / "quick")


@pytest.fixture(scope="module")
def tables(res) -> dict[str, pd.DataFrame]:
    return ab.report_tables(res, n_resamples=R)


def test_the_readme_example_runs(results_root, monkeypatch):
    assert len(EXAMPLE) == 1
    monkeypatch.chdir(results_root)
    namespace: dict = {}
    try:
        exec(compile(EXAMPLE[0], "README.md (From Python)", "exec"), namespace)  # noqa: S102 - the README's own code
    finally:
        plt.close("all")
    assert set(namespace["table"]["config"]) == {"none", "mean"}
    assert (namespace["effects"]["term"] == "baseline").any()
    assert isinstance(namespace["fig"], plt.Figure) and (results_root / "learning_curves.png").stat().st_size > 0
    assert namespace["quality"] is not None and len(namespace["quality"])
    assert "summary" in namespace["tables"]


def test_load_gives_typed_frames(res):
    assert res.factors == ["baseline"] and res.levels == {"baseline": ["none", "mean"]}
    assert len(res.runs) == 4 and set(res.runs["config"]) == {"none", "mean"}
    for col in ["update", "env_steps", "episodes", "return_mean", "entropy", "grad_norm"]:
        assert pd.api.types.is_numeric_dtype(res.curves[col]), col
    assert res.probes is not None and pd.api.types.is_numeric_dtype(res.probes["total_var"])
    assert res.timings is not None and res.manifest["study"]["name"] == "quick"


def test_scores_are_the_reports(res, tables):
    pd.testing.assert_frame_equal(ab.scores(res), tables["scores"])


def test_long_scores_by_hand():
    wide = pd.DataFrame({"run_id": ["a", "b"], "config": ["x", "y"], "seed": [0, 0], "baseline": ["x", "y"],
                         "final_return": [1.0, 2.0], "auc": [0.5, 1.5], "steps_to_threshold": [10.0, 20.0],
                         "reached": [True, False]})
    long = ab.long_scores(wide)
    assert long.columns.tolist() == ["run_id", "config", "seed", "baseline", "metric", "value"]
    assert long["metric"].tolist() == ["final_return", "final_return", "auc", "auc"]  # censored metric left out
    assert long["value"].tolist() == [1.0, 2.0, 0.5, 1.5]
    with pytest.raises(ValueError, match="eval_return"):
        ab.long_scores(wide, "eval_return")


def _same(mine: pd.DataFrame, report: pd.DataFrame) -> None:
    report = report[mine.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), report, check_dtype=False)


def test_tables_are_the_reports(res, tables):
    scores = tables["scores"]
    summary = ab.summary(scores, n_resamples=R)
    _same(summary, tables["summary"].set_index(["metric", "config"]).loc[
        list(zip(summary["metric"], summary["config"]))].reset_index())
    metric = "final_return"
    _same(ab.effects(scores, res.levels, metric=metric, n_resamples=R),
          tables["effects"][tables["effects"]["metric"] == metric])
    _same(ab.marginal_means(scores, res.levels, metric=metric, n_resamples=R),
          tables["marginal_means"][tables["marginal_means"]["metric"] == metric])
    _same(ab.anova(scores, res.levels, metric=metric), tables["anova"][tables["anova"]["metric"] == metric])
    _same(ab.compare(scores, res.reference_label, metric=metric),
          tables["comparisons"][tables["comparisons"]["metric"] == metric])
    _same(ab.gradient_variance(res.probes, n_resamples=R), tables["gradvar"])
    _same(ab.gradient_quality(res.probes, n_resamples=R), tables["gradient_quality"])
    _same(ab.learning_curves(res, n_resamples=R), tables["learning_curves"])


def test_figures_are_matplotlib_figures(res, tables):
    scores = tables["scores"]
    try:
        figures = [ab.plot_learning_curves(tables["learning_curves"], res.levels),
                   ab.plot_config_estimates(tables["summary"], res.reference_label),
                   ab.plot_effects(ab.effects(scores, res.levels, n_resamples=R)),
                   ab.plot_gradient_variance(tables["gradvar"])]
        assert all(isinstance(f, plt.Figure) for f in figures)
    finally:
        plt.close("all")


def test_aggregate_needs_several_envs(res):
    with pytest.raises(ValueError, match="env_id is not a factor"):
        ab.aggregate(res)


def _python(code: str, **env: str) -> str:
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1], env={**os.environ, **env}).stdout.strip()


def test_import_ablations_stays_light():
    code = "import sys, ablations; print(any(m.startswith(('pandas', 'torch', 'ablations.api')) for m in sys.modules))"
    assert _python(code) == "False"


def test_a_notebook_keeps_its_matplotlib_backend():
    """The report's plots select Agg when imported; the API gives the user's chosen backend back (inline in a
    notebook; here the one MPLBACKEND names)."""
    assert _python("import ablations.api, matplotlib; print(matplotlib.get_backend())", MPLBACKEND="svg") == "svg"


def test_aggregate_is_the_reports(make_results, tmp_path):
    """A two-env study (synthetic): the aggregate tables equal the ones `ablations report` writes."""
    from ablations.report import build_report

    envs = ["CartPole-v1", "Acrobot-v1"]
    path = make_results(factors={"env_id": envs, "baseline": ["none", "value"]}, seeds=3, updates=5)
    runs = pd.read_csv(path / "runs.csv")
    runs["env_id"] = [envs[0]] * (len(runs) // 2) + [envs[1]] * (len(runs) // 2)  # the helper fixes one env
    runs.to_csv(path / "runs.csv", index=False)
    pd.DataFrame({"env_id": envs, "episodes": 10, "seed": 0, "random_score": [20.0, -500.0], "random_std": 1.0,
                  "random_min": 0.0, "random_max": 1.0, "reward_threshold": [475.0, -100.0]}).to_csv(
        path / "random_scores.csv", index=False)
    mine = ab.aggregate(ab.load(path), n_resamples=R)
    build_report(path, tmp_path / "report", n_resamples=R, figures=False)
    for name in ["aggregate", "improvement", "aggregate_effects", "consistency"]:
        written = pd.read_csv(tmp_path / "report" / "tables" / f"{name}.csv", keep_default_na=False,
                              na_values=[""])
        numeric = [c for c in written.columns if pd.api.types.is_float_dtype(written[c])]
        assert len(mine[name]) == len(written) > 0, name
        ours = mine[name][numeric].apply(pd.to_numeric, errors="coerce")  # "" (no value) → NaN, as the CSV reads
        np.testing.assert_allclose(ours.to_numpy(float), written[numeric].to_numpy(float), rtol=1e-9, err_msg=name)
