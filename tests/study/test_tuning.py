"""Tuned studies (`study.tuning`): disjoint seeds, a deterministic choice (ties, unfinished candidates), env tables in
both stages, and the selection score equals the report's. Running the stages: tests/study/test_stages.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.train import scores as st
from ablations.study.design import Study, StudyError, parse_study
from ablations.study.tune_spec import TUNE_SEED_OFFSET
from ablations.study.tuning import choose, stage1_configs, stage2_configs
from ablations.train.scores import run_metric


def tuned_study(**tune) -> Study:
    return parse_study({"name": "tuned", "seeds": 3, "fixed": {"total_steps": 400},
                        "factors": {"baseline": ["none", "mean"]},
                        "tune": {"policy_lr": [1e-3, 3e-3, 1e-2], "seeds": 2, **tune}}, where="tuned.toml")


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


def test_selection_score_is_the_reports_score() -> None:
    rng = np.random.default_rng(0)
    ids = [f"r{i}" for i in range(4)]
    curves = pd.DataFrame([{"run_id": r, "env_steps": s, "return_mean": float(rng.normal(50, 20))}
                           for r in ids for s in sorted(rng.choice(np.arange(50, 1000), 7, replace=False))])
    runs = pd.DataFrame({"run_id": ids, "total_steps": 1000})
    ref = st.run_scores(curves, runs, budget=1000, threshold=60.0).set_index("run_id")
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


def _per_env_study(**extra) -> Study:
    raw = {"name": "tuned_grids", "seeds": 2, "fixed": {"total_steps": 400},
           "factors": {"env_id": ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"], "baseline": ["none", "mean"]},
           "tune": {"policy_lr": [1e-3, 1e-2], "seeds": 2,
                    "env": {"Acrobot-v1": {"policy_lr": [3e-3, 1e-2, 3e-2]}, "Pendulum-v1": {"policy_lr": [1e-4]}},
                    **extra}}
    return parse_study(raw, where="tuned_grids.toml")


def test_each_env_trains_and_chooses_among_its_own_candidates(tmp_path) -> None:
    """[tune.env."Id"] replaces the candidates for that env's configs only, in stage 1, in the choice, in the
    manifest's spec and in stage 1's own study (whose grid is exactly stage 1's runs)."""
    from ablations.study.design import expand
    from ablations.study.tuning import choice_from_file, point_candidates, stage1_study

    study = _per_env_study()
    want = {"CartPole-v1": [1e-3, 1e-2], "Acrobot-v1": [3e-3, 1e-2, 3e-2], "Pendulum-v1": [1e-4]}
    assert [[c["policy_lr"] for c in cands] for cands in point_candidates(study)] == [
        want[e] for e in want for _ in ("none", "mean")]
    configs = stage1_configs(study)
    for env, lrs in want.items():
        got = sorted({c.policy_lr for c in configs if c.env_id == env})
        assert got == sorted(lrs)
        assert len([c for c in configs if c.env_id == env]) == len(lrs) * 2 * 2
    assert study.tune is not None and study.tune.spec()["env"]["Acrobot-v1"] == {"policy_lr": [3e-3, 1e-2, 3e-2]}
    s1 = stage1_study(study)
    assert s1.factors["policy_lr"] == (1e-3, 1e-2, 3e-3, 3e-2, 1e-4)
    assert sorted(c.run_id for c in expand(s1)) == sorted(c.run_id for c in configs)

    # the best candidate per config: 3e-2 on Acrobot (not a CartPole candidate), 1e-3 on CartPole, 1e-4 on Pendulum
    score = {1e-3: 5.0, 1e-2: 1.0, 3e-3: 2.0, 3e-2: 7.0, 1e-4: 0.0}
    runs = pd.DataFrame({"run_id": [c.run_id for c in configs], "total_steps": 400, "status": "done"})
    curves = pd.DataFrame({"run_id": [c.run_id for c in configs], "env_steps": 400,
                           "return_mean": [score[c.policy_lr] for c in configs]})
    table, chosen = choose(study, runs, curves)
    assert chosen == [{"policy_lr": lr} for lr in (1e-3, 1e-3, 3e-2, 3e-2, 1e-4, 1e-4)]
    assert len(table) == 2 * (2 + 3 + 1)
    path = tmp_path / "tune_choice.csv"
    table.to_csv(path, index=False)
    assert choice_from_file(study, path) == chosen
    s2 = stage2_configs(study, chosen)
    assert {(c.env_id, c.policy_lr) for c in s2} == {("CartPole-v1", 1e-3), ("Acrobot-v1", 3e-2),
                                                     ("Pendulum-v1", 1e-4)}


@pytest.mark.parametrize("env, message", [
    ({"MountainCar-v0": {"policy_lr": [1e-3]}}, r"\[tune.env.\"MountainCar-v0\"\] names an env the study does not "
                                                r"run; allowed: \['CartPole-v1', 'Acrobot-v1', 'Pendulum-v1'\]"),
    ({"Acrobot-v1": {"value_lr": [1e-3]}}, r"\[tune.env.\"Acrobot-v1\"\] key\(s\) \['value_lr'\] are not tuned "
                                           r"fields; allowed: the fields tuned in \[tune\]: \['policy_lr'\]"),
    ({"Acrobot-v1": {"policy_lr": []}}, r"\[tune.env.\"Acrobot-v1\"\] policy_lr must be a non-empty list"),
    ({"Acrobot-v1": {"policy_lr": [1e-3, 1e-3]}}, r"\[tune.env.\"Acrobot-v1\"\] policy_lr repeats candidate"),
    ({"Acrobot-v1": {"policy_lr": [-1.0]}}, r"\[tune\] .*policy_lr"),
    ({"Acrobot-v1": 3}, r"\[tune\] env must hold tables"),
])
def test_bad_per_env_candidates_name_the_table_and_the_allowed_values(env: dict, message: str) -> None:
    with pytest.raises(StudyError, match=message):
        _per_env_study(env=env)
