"""Tuned studies (`study.tuning`): disjoint seeds, a deterministic re-derivable choice, the planted case, resume
after an interruption in either stage gives byte-identical CSVs, and the selection score equals the report's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tests.tune_fake as fake
from ablations.report import stats as st
from ablations.study.design import Study, StudyError, parse_study
from ablations.study.executors import SerialExecutor
from ablations.study.results_format import read_text_table
from ablations.study.tune_spec import TUNE_SEED_OFFSET
from ablations.study.tuning import (CHOICE_FILE, TUNE_DIR, choice_from_file, choose, plan_tuned, read_stage1,
                                    run_metric, run_tuned, stage1_configs, stage2_configs)

FAKE = "tests.tune_fake:train_cohort"
TABLES = ("runs", "curves", "probes", "timings")


def tuned_study(**tune) -> Study:
    return parse_study({"name": "tuned", "seeds": 3, "fixed": {"total_steps": 400},
                        "factors": {"baseline": ["none", "mean"]},
                        "tune": {"policy_lr": [1e-3, 3e-3, 1e-2], "seeds": 2, **tune}}, where="tuned.toml")


def all_bytes(out: Path) -> dict[str, bytes]:
    files = {f"{t}.csv": (out / f"{t}.csv").read_bytes() for t in TABLES if t != "timings"}
    files |= {f"tune/{t}.csv": (out / TUNE_DIR / f"{t}.csv").read_bytes() for t in TABLES if t != "timings"}
    return files | {CHOICE_FILE: (out / CHOICE_FILE).read_bytes()}


def test_stage2_seeds_never_overlap_stage1_seeds() -> None:
    study = tuned_study()
    assert study.tune is not None and study.tune.seeds == (TUNE_SEED_OFFSET, TUNE_SEED_OFFSET + 1)
    s1 = {c.seed for c in stage1_configs(study)}
    s2 = {c.seed for c in stage2_configs(study, [{"policy_lr": 1e-3}] * 2)}
    assert s1 == set(study.tune.seeds) and s2 == {0, 1, 2} and not s1 & s2
    with pytest.raises(StudyError, match=r"\[tune\] seeds overlap the evaluation seeds .* at \[2\]"):
        tuned_study(seeds=[2, 7])


@pytest.mark.parametrize("tune, message", [
    ({"baseline": ["none"]}, r"\[tune\] baseline is also a factor"),
    ({"metric": "steps"}, r"\[tune\] metric = 'steps' is invalid"),
    ({"policy_lr": []}, r"\[tune\] policy_lr must be a non-empty list"),
    ({"policy_lr": [-1.0]}, r"\[tune\] .*policy_lr"),
    ({"nonsense": [1]}, r"\[tune\] unknown key"),
])
def test_bad_tune_sections_name_the_key(tune: dict, message: str) -> None:
    with pytest.raises(StudyError, match=message):
        tuned_study(**tune)


def test_planted_case_selects_each_configs_best_and_is_rederivable(tmp_path: Path) -> None:
    study = tuned_study()
    result = run_tuned(study, tmp_path, SerialExecutor(trainer=FAKE))
    assert result.stage2 is not None and result.stage2.counts["done"] == 6 and result.stage1.counts["done"] == 12
    assert choice_from_file(study, tmp_path / CHOICE_FILE) == [{"policy_lr": 1e-2}, {"policy_lr": 1e-3}]
    runs = read_text_table(tmp_path / "runs.csv")  # stage 2 trained each config at its own choice, on seeds 0..2
    assert sorted(zip(runs["baseline"], runs["policy_lr"], runs["seed"])) == sorted(
        (b, lr, str(s)) for b, lr in (("none", "0.01"), ("mean", "0.001")) for s in range(3))
    # the choice is a pure function of stage 1's rows: derived again, in any row order, it is the same bytes
    table, _ = choose(study, *read_stage1(tmp_path))
    again, _ = choose(study, *(df.iloc[::-1] for df in read_stage1(tmp_path)))
    text = (tmp_path / CHOICE_FILE).read_text()
    assert table.to_csv(index=False, lineterminator="\n") == text == again.to_csv(index=False, lineterminator="\n")


def test_ties_go_to_the_candidate_listed_first_and_unfinished_candidates_lose() -> None:
    study = tuned_study()
    configs = stage1_configs(study)
    runs = pd.DataFrame({"run_id": [c.run_id for c in configs], "total_steps": 400,
                         "status": ["done"] * len(configs)})
    curves = pd.DataFrame({"run_id": [c.run_id for c in configs], "env_steps": 400, "return_mean": 5.0})
    _, chosen = choose(study, runs, curves)
    assert chosen == [{"policy_lr": 1e-3}, {"policy_lr": 1e-3}]  # all tied: the first listed
    curves.loc[[c.policy_lr == 1e-2 for c in configs], "return_mean"] = 9.0
    runs.loc[[c.policy_lr == 1e-2 and c.seed == TUNE_SEED_OFFSET and c.baseline == "none" for c in configs],
             "status"] = "diverged"
    _, chosen = choose(study, runs, curves)
    assert chosen == [{"policy_lr": 1e-3}, {"policy_lr": 1e-2}]  # a candidate with an unfinished run is not chosen


@pytest.mark.parametrize("stop_after", [1, 5])  # cohort calls 1-4 are stage 1's (12 runs by 3), 5-6 stage 2's
def test_interrupted_in_either_stage_resumes_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            stop_after: int) -> None:
    study = tuned_study()
    run_tuned(study, tmp_path / "clean", SerialExecutor(trainer=FAKE), cohort_size=3)
    monkeypatch.setattr(fake, "CALLS", 0)
    monkeypatch.setattr(fake, "INTERRUPT_AFTER", stop_after)
    with pytest.raises(KeyboardInterrupt):
        run_tuned(study, tmp_path / "killed", SerialExecutor(trainer=FAKE), cohort_size=3)
    assert (tmp_path / "killed" / CHOICE_FILE).exists() == (stop_after >= 4)
    monkeypatch.setattr(fake, "INTERRUPT_AFTER", None)
    plan = plan_tuned(study, tmp_path / "killed", cohort_size=3)
    assert (plan.stage2_configs is None) == (stop_after < 4)
    run_tuned(study, tmp_path / "killed", SerialExecutor(trainer=FAKE), cohort_size=3)
    assert all_bytes(tmp_path / "killed") == all_bytes(tmp_path / "clean")


def test_selection_score_is_the_reports_score() -> None:
    rng = np.random.default_rng(0)
    ids = [f"r{i}" for i in range(4)]
    curves = pd.DataFrame([{"run_id": r, "env_steps": s, "return_mean": float(rng.normal(50, 20))}
                           for r in ids for s in sorted(rng.choice(np.arange(50, 1000), 7, replace=False))])
    runs = pd.DataFrame({"run_id": ids, "total_steps": 1000})
    grid = st.env_step_grid(1000)
    ref = st.run_scores(curves, runs, budget=1000, threshold=60.0, grid=grid).set_index("run_id")
    for metric in ("auc", "final_return"):
        mine = run_metric(runs, curves, metric)
        assert np.allclose([mine[r] for r in ids], ref.loc[ids, metric], rtol=0, atol=1e-12)


def test_env_tables_apply_in_both_stages_and_may_not_fix_a_tuned_field() -> None:
    """A multi-env tuned study: each env's [env."Id"] fields reach its stage-1 and stage-2 runs (they were dropped
    once, so LunarLander's budget silently became the [fixed] one)."""
    raw = {"name": "tuned_envs", "seeds": 2, "fixed": {"total_steps": 400},
           "factors": {"env_id": ["CartPole-v1", "Acrobot-v1"], "baseline": ["none", "mean"]},
           "env": {"Acrobot-v1": {"total_steps": 900, "gamma": 0.95}},
           "tune": {"policy_lr": [1e-3, 1e-2], "seeds": 2}}
    study = parse_study(raw, where="tuned_envs.toml")
    s1 = stage1_configs(study)
    s2 = stage2_configs(study, [{"policy_lr": 1e-2}] * 4)
    for configs in (s1, s2):
        acro = [c for c in configs if c.env_id == "Acrobot-v1"]
        cart = [c for c in configs if c.env_id == "CartPole-v1"]
        assert acro and all(c.total_steps == 900 and c.gamma == 0.95 for c in acro)
        assert cart and all(c.total_steps == 400 and c.gamma == 0.99 for c in cart)
    assert len(s1) == 4 * 2 * 2 and len(s2) == 4 * 2
    with pytest.raises(StudyError, match=r"\[tune\] \['policy_lr'\] also set in an \[env"):
        parse_study({**raw, "env": {"Acrobot-v1": {"policy_lr": 1e-3}}}, where="tuned_envs.toml")
