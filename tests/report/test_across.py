"""A multi-env study end to end: studies/multienv.toml, shrunken (tiny budget, 3 seeds), trained for real, then
`build_report`: a report per env, and the aggregate README with normalization, aggregates and the consistency table;
and `across`'s small pieces by hand (where the random scores come from, each env's reference, the tuned choices)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ablations.report.across import env_reference, random_scores, random_scores_request, tuned_choices
from ablations.report.build import build_report
from ablations.report.load import ReportError, load_results
from ablations.study.random_scores import random_scores_table
from ablations.study.design import load_study, with_overrides
from ablations.study.driver import run_study
from ablations.study.executors import SerialExecutor

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("Box2D") is None, reason="Box2D not installed (pip install '.[box2d]')")
def test_shrunken_multienv_study_end_to_end(tmp_path: Path) -> None:
    study = with_overrides(load_study(ROOT / "studies" / "multienv.toml"),
                           {"total_steps": 600, "hidden": [8], "eval_episodes": 1, "episodes_per_update": 4})
    study = dataclasses.replace(study, seeds=(0, 1, 2), report={**study.report, "random_episodes": 3})
    results = tmp_path / "results"
    summary = run_study(study, results, SerialExecutor())
    assert summary.counts["done"] == 36
    rs = pd.read_csv(results / "random_scores.csv")  # measured by the driver, before training
    assert list(rs["env_id"]) == ["CartPole-v1", "Acrobot-v1", "LunarLander-v3"] and set(rs["episodes"]) == {3}
    out = tmp_path / "report"
    readme = build_report(results, out, n_resamples=200)
    text = readme.read_text()
    assert "across environments" in text and "## Consistency across environments" in text
    assert "env_id = Acrobot-v1 instead of" not in text  # env_id is a stratum, not an ablation factor
    for env in rs["env_id"]:
        sub = (out / "envs" / env / "README.md").read_text()
        assert "env_id" not in sub.split("## Key findings")[0].split("**Factors:**")[1].split("\n")[0]
    norm = pd.read_csv(out / "tables" / "normalization.csv")
    assert list(norm["reference"]) == [475.0, -100.0, 200.0]
    assert "measured by `ablations run`" in norm["random_source"].iloc[0]
    cons = pd.read_csv(out / "tables" / "consistency.csv")
    assert set(cons[cons["kind"] == "main"]["factor"]) == {"baseline", "returns"}
    assert cons["aggregate_verdict"].notna().all() and cons["claim"].notna().all()
    agg = pd.read_csv(out / "tables" / "aggregate.csv")
    assert len(agg) == 4 * 4 and (agg["n_envs"] == 3).all()
    for fig in ("effects_by_env", "aggregate_profile", "aggregate_intervals"):
        assert (out / "figures" / f"{fig}.png").exists()
    (results / "random_scores.csv").unlink()  # the caller measures it (the report never plays), and it says so
    loaded = load_results(results)
    with pytest.raises(ReportError, match="no random-policy score"):
        build_report(loaded, tmp_path / "again", n_resamples=200, figures=False)
    envs, episodes, seed = random_scores_request(loaded)
    assert (envs, episodes) == (list(rs["env_id"]), 3)
    build_report(loaded, tmp_path / "again", n_resamples=200, figures=False,
                 random_scores=random_scores_table(envs, episodes, seed))
    again = pd.read_csv(tmp_path / "again" / "tables" / "normalization.csv")
    assert "measured by `ablations report`" in again["random_source"].iloc[0]


def test_shrunken_flagship_tuned_across_envs(tmp_path: Path) -> None:
    """studies/flagship.toml shrunken to two envs (one discrete, one Gaussian), CartPole with two candidates and
    Pendulum with its own three ([tune.env."Pendulum-v1"]): both stages honour each env's [env."Id"] budget, each
    env's report has its tuning section and sensitivity figure over its own candidates (the grid's edge is its own),
    and the aggregate README tabulates the chosen value per env × config."""
    from ablations.study.stages import plan_study, run_plan

    study = with_overrides(load_study(ROOT / "studies" / "flagship.toml"),
                           {"hidden": [8], "eval_episodes": 0, "episodes_per_update": 4})
    assert study.tune is not None
    envs = ["CartPole-v1", "Pendulum-v1"]
    study = dataclasses.replace(
        study, seeds=(0, 1), probe_seeds=0, factors={**study.factors, "env_id": tuple(envs)},
        env={"CartPole-v1": {"total_steps": 600}, "Pendulum-v1": {**study.env["Pendulum-v1"], "total_steps": 800}},
        tune=dataclasses.replace(study.tune, candidates={"policy_lr": (1e-3, 3e-2)}, seeds=(10000, 10001)),
        report={**study.report, "random_episodes": 2, "anchors": [
            *[a for a in study.report["anchors"] if a["env_id"] in envs],
            {"env_id": "Pendulum-v1", "source": "a made-up curve", "value": -900.0, "steps": 400,
             "measures": "nothing", "differs": "everything", "points": [[200, -1000.0], [400, -900.0]]}]})
    results = tmp_path / "results"
    summary = run_plan(plan_study(study, results), SerialExecutor())
    grids = {"CartPole-v1": [1e-3, 3e-2], "Pendulum-v1": [1e-4, 3e-4, 1e-3]}
    assert [c["policy_lr"] for c in study.tune.grid("Pendulum-v1")] == grids["Pendulum-v1"]
    assert len(summary.stages) == 2 and summary.stages[1].counts["done"] == 8 * 2 * 2
    runs = pd.read_csv(results / "runs.csv")
    stage1 = pd.read_csv(results / "tune" / "runs.csv")
    assert len(stage1) == 8 * (2 + 3) * 2
    for env, lrs in grids.items():
        assert sorted(set(stage1.loc[stage1["env_id"] == env, "policy_lr"])) == lrs
    for df in (runs, stage1):
        assert set(df.loc[df["env_id"] == "Pendulum-v1", "total_steps"]) == {800}
        assert set(df.loc[df["env_id"] == "Pendulum-v1", "gamma"]) == {0.95}
        assert set(df.loc[df["env_id"] == "CartPole-v1", "total_steps"]) == {600}
    out = tmp_path / "report"
    text = build_report(results, out, n_resamples=200).read_text()
    assert "## Tuned values" in text
    chosen = pd.read_csv(out / "tables" / "tune_choice.csv")
    assert list(chosen.columns) == ["config", *envs] and len(chosen) == 8
    recorded = pd.read_csv(results / "tune_choice.csv")
    for env in envs:
        sub = (out / "envs" / env / "README.md").read_text()
        assert "## Tuning" in sub and "figures/tune_sensitivity.png" in sub
        assert (out / "envs" / env / "figures" / "tune_sensitivity.png").exists()
        per_env = pd.read_csv(out / "envs" / env / "tables" / "tune_choice.csv")
        want = recorded[(recorded["env_id"] == env) & recorded["chosen"]]["policy_lr"]
        assert list(per_env["chosen"].astype(float)) == list(want.astype(float))
        edge = want.astype(float).isin([min(grids[env]), max(grids[env])])
        assert list(chosen[env].str.endswith(" †")) == list(edge)  # the env's own grid's edge
        assert list(chosen[env].str.rstrip(" †").astype(float)) == list(want.astype(float))
        assert f"**At the grid's edge:** {int(edge.sum())} of 8 configs" in sub or not edge.any()
        sens = pd.read_csv(out / "envs" / env / "tables" / "tune_sensitivity.csv")
        assert len(sens) == 8 * len(grids[env]) and (sens["n"] == 2).all()
        assert sorted(set(sens["candidate"].astype(float))) == grids[env]
        assert sorted(set(sens["candidate_index"])) == list(range(len(grids[env])))
        _check_anchors(out, env, runs[(runs["env_id"] == env) & (runs["status"] == "done")])
    assert "## External anchors" in text and "![Pendulum-v1: our best config" in text
    assert (out / "envs" / "Pendulum-v1" / "figures" / "anchor_curve.png").exists()
    assert not (out / "envs" / "CartPole-v1" / "figures" / "anchor_curve.png").exists()  # no points: no figure


def _check_anchors(out: Path, env: str, runs: pd.DataFrame) -> None:
    """The env's anchors sit beside its best config by mean final return (runs.csv's own column), whose t-interval
    over seeds is scipy's; an anchor inside our budget reads our best config's curve there."""
    from scipy import stats

    table = pd.read_csv(out / "envs" / env / "tables" / "anchors.csv")
    assert len(table) == {"CartPole-v1": 1, "Pendulum-v1": 2}[env]
    factors = ["baseline", "returns", "normalize"]
    means = runs.groupby(factors)["final_return"].mean()
    best = tuple(table["best_config"].iloc[0].split("/"))
    assert np.isclose(means[best], means.max(), rtol=1e-12)  # a tie goes to the config listed first
    x = runs.set_index(factors).loc[best, "final_return"].to_numpy(float)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (table["best_config"] == "/".join(best)).all()
    assert np.allclose(table[["best_final_return", "best_ci_low", "best_ci_high"]].to_numpy(float),
                       [[x.mean(), low, high]] * len(table), rtol=1e-9)
    inside = table["steps"] <= table["best_steps"]
    assert table.loc[~inside, "best_at_steps"].isna().all() and table.loc[inside, "best_at_steps"].notna().all()
    assert list(inside) == [s <= int(runs["total_steps"].max()) for s in table["steps"]]


def _fake(tmp_path: Path, envs: list[str], report: dict | None = None) -> SimpleNamespace:
    """What `across` reads of a `Results`: its path, factors, levels and manifest."""
    return SimpleNamespace(path=tmp_path, factors=["env_id", "baseline"],
                           levels={"env_id": envs, "baseline": ["none", "mean"]},
                           manifest={"study": {"report": report or {}}})


def test_random_scores_come_from_the_file_else_from_the_caller(tmp_path: Path) -> None:
    envs = ["A-v0", "B-v0"]
    results = _fake(tmp_path, envs, {"random_episodes": 7, "seed": 3})
    assert random_scores_request(results) == (envs, 7, 3)  # no file: the caller measures
    measured = pd.DataFrame({"env_id": envs, "random_score": [1.0, 2.0]})
    df, source = random_scores(results, envs, measured)
    assert df is measured and source.startswith("measured by `ablations report`")
    with pytest.raises(ReportError, match="no random-policy score"):
        random_scores(results, envs, measured.iloc[:1])
    pd.DataFrame({"env_id": envs, "random_score": [0.5, 0.5]}).to_csv(tmp_path / "random_scores.csv", index=False)
    assert random_scores_request(results) is None
    df, source = random_scores(results, envs, None)
    assert list(df["random_score"]) == [0.5, 0.5] and source.startswith("measured by `ablations run`")
    assert random_scores_request(_fake(tmp_path, ["A-v0"])) is None  # one env: not a multi-env study


def test_env_reference_prefers_the_study_then_the_registered_threshold(tmp_path: Path) -> None:
    rs = pd.DataFrame({"env_id": ["A-v0", "B-v0"], "reward_threshold": [200.0, np.nan]})
    results = _fake(tmp_path, ["A-v0", "B-v0"], {"references": {"B-v0": -100}})
    assert env_reference(results, "A-v0", rs) == 200.0
    assert env_reference(results, "B-v0", rs) == -100.0
    assert env_reference(_fake(tmp_path, ["A-v0", "B-v0"]), "B-v0", rs) is None


def test_tuned_choices_pivot_per_env_with_edge_marks() -> None:
    def rep(chosen: list[str], edge: list[str]) -> SimpleNamespace:
        return SimpleNamespace(tables={"tune_choice": pd.DataFrame({"config": ["x", "y"], "chosen": chosen,
                                                                    "at_edge": edge})})

    out = tuned_choices({"A-v0": rep(["0.01", "0.1"], ["", "policy_lr=max"]), "B-v0": rep(["0.03", "0.01"], ["", ""])})
    assert out.to_dict("list") == {"config": ["x", "y"], "A-v0": ["0.01", "0.1 †"], "B-v0": ["0.03", "0.01"]}
    assert tuned_choices({"A-v0": SimpleNamespace(tables={})}).empty
