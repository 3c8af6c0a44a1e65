"""The report of a sequential study (`report.sequential`, `report.markdown_sequential`): it says the design was
sequential, prints the anytime-valid intervals the waves were decided with and, separately labelled, the fixed-n
ones, and the cost against the fixed design; a study that was not sequential has no such section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ablations.report.build import build_report
from ablations.study import sequential as sq
from ablations.study.design import parse_study
from ablations.study.executors import SerialExecutor
from ablations.study.stages import plan_study, run_plan

FAKE = "tests.helpers.sequential_fake:train_cohort"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("seqreport")
    study = parse_study({"name": "seq", "seeds": 20, "fixed": {"total_steps": 400},
                         "factors": {"baseline": ["none", "mean", "value"], "entropy_coef": [0.0, 0.01]},
                         "sequential": {"min": 5, "step": 5, "families": ["configs", "main"]},
                         "report": {"margin": 5.0, "reference": {"baseline": "none", "entropy_coef": 0.0}}},
                        where="seq.toml")
    result = run_plan(plan_study(study, root / "results"), SerialExecutor(trainer=FAKE))
    readme = build_report(root / "results", root / "report", n_resamples=200, figures=False)
    return readme, root / "report", result.waves


def test_the_report_says_the_design_was_sequential(report):
    readme, _, state = report
    text = readme.read_text()
    assert "- **Design: sequential** (adaptive seeding): " in text
    assert "## Sequential design (anytime-valid)" in text and "### Decisions on final return" in text
    assert "fixed-n confidence intervals and p-values are not valid for these contrasts" in text
    assert "**it is valid only for a number of seeds fixed in advance, not under this design**" in text
    assert "| anytime-valid interval | verdict | fixed-n t-interval (not valid here) | fixed-n verdict |" in text
    assert "**Sequential design.** Stopping rule:" in text and sq.CS_METHOD in text
    assert f"It stopped because {state.reason}." in text


def test_its_intervals_are_the_ones_the_waves_were_decided_with(report):
    _, out, state = report
    table = pd.read_csv(out / "tables" / "sequential.csv")
    looks = pd.read_csv(out / "tables" / "sequential_looks.csv")
    assert len(table) == len(state.contrasts) and list(table["verdict"]) == list(state.decisions["verdict"])
    np.testing.assert_allclose(table["cs_low"], state.decisions["run_low"], rtol=1e-9)
    for _, r in looks.iterrows():  # every look: the sequence at its seeds, from its own mean and SD
        low, high = sq.confidence_sequence(r["estimate"], r["sd"], r["n"], r["alpha"], r["g"])
        flow, fhigh = sq.fixed_interval(r["estimate"], r["sd"], r["n"], r["alpha"])
        assert (r["cs_low"], r["cs_high"], r["fixed_low"], r["fixed_high"]) == pytest.approx(
            (float(low), float(high), float(flow), float(fhigh)), rel=1e-8)
        assert r["cs_high"] - r["cs_low"] > r["fixed_high"] - r["fixed_low"]
    cost = pd.read_csv(out / "tables" / "sequential_cost.csv").iloc[0]
    assert cost["runs"] == sum(state.counts) and cost["fixed_runs"] == 6 * 20
    assert cost["fixed_budget_steps"] == 6 * 20 * 400


def test_a_study_that_was_not_sequential_has_no_section(tmp_path: Path):
    study = parse_study({"name": "plain", "seeds": 3, "fixed": {"total_steps": 400},
                         "factors": {"baseline": ["none", "value"]}}, where="plain.toml")
    run_plan(plan_study(study, tmp_path / "results"), SerialExecutor(trainer=FAKE))
    text = build_report(tmp_path / "results", tmp_path / "report", n_resamples=100, figures=False).read_text()
    assert "Sequential design" not in text and "anytime-valid" not in text
    assert not (tmp_path / "report" / "tables" / "sequential.csv").exists()


def test_a_multi_env_studys_reports_show_each_envs_own_contrasts(tmp_path: Path):
    """Each env's report: that env's contrasts (each env its own Bonferroni family), from the whole study's waves."""
    study = parse_study({"name": "menv", "seeds": 10, "fixed": {"total_steps": 400},
                         "factors": {"env_id": ["CartPole-v1", "Acrobot-v1"], "baseline": ["none", "value"]},
                         "sequential": {"min": 5, "step": 5}, "report": {"margin": 5.0}}, where="menv.toml")
    state = run_plan(plan_study(study, tmp_path / "results"), SerialExecutor(trainer=FAKE)).waves
    build_report(tmp_path / "results", tmp_path / "report", n_resamples=100, figures=False)
    for env in ("CartPole-v1", "Acrobot-v1"):
        table = pd.read_csv(tmp_path / "report" / "envs" / env / "tables" / "sequential.csv")
        mine = state.decisions[state.decisions["env"] == env]
        assert list(table["env"]) == [env] and list(table["contrast"]) == list(mine["contrast"])
        assert table["cs_low"].iloc[0] == pytest.approx(mine["run_low"].iloc[0], rel=1e-9)
        assert "| main | " + env + " | baseline=value vs none |" in (
            tmp_path / "report" / "envs" / env / "README.md").read_text()


def test_runs_are_matched_to_the_design_by_their_levels_and_seed(tmp_path: Path):
    """The report finds each (config, seed)'s run by its factor levels and seed, so the ids the study file expands to
    today (which a later change of a field's default changes) are not needed: here they agree, and a run id that no
    longer matches the study file still finds its run."""
    from ablations.report.load import load_results
    from ablations.report.sequential import ids_by_levels
    from ablations.study.design import study_from_spec

    study = parse_study({"name": "seq", "seeds": 10, "fixed": {"total_steps": 400},
                         "factors": {"baseline": ["none", "value"], "entropy_coef": [0, 0.01]},
                         "sequential": {"min": 5, "step": 5}, "report": {"margin": 5.0}}, where="seq.toml")
    state = run_plan(plan_study(study, tmp_path / "r"), SerialExecutor(trainer=FAKE)).waves
    results = load_results(tmp_path / "r")
    ids = ids_by_levels(study_from_spec(results.manifest["study"]), results)
    expected = sq.run_ids(study)
    trained = ids != ""
    assert (ids[trained] == expected[trained]).all() and trained.sum() == sum(state.counts)
    results.runs["run_id"] = "renamed-" + results.runs["run_id"]  # ids that no study file expands to
    again = ids_by_levels(study_from_spec(results.manifest["study"]), results)
    assert (again[trained] == "renamed-" + expected[trained]).all()
