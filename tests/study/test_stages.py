"""One plan/run interface (`study.stages`): a plain study is one stage; a tuned study's planted case chooses each
config's best and is re-derivable; resume after an interruption in either stage gives byte-identical CSVs; the
status of each stage."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.helpers.tune_fake as fake
from ablations.study.design import Study, parse_study
from ablations.study.executors import SerialExecutor
from ablations.study.stages import EVALUATION, TUNING, StudyRun, plan_study, run_plan, stage_status
from ablations.study.results_format import read_text_table
from ablations.study.tuning import CHOICE_FILE, TUNE_DIR, choice_from_file, choose, read_stage1

FAKE = "tests.helpers.tune_fake:train_cohort"
PLAIN_FAKE = "tests.helpers.failing_env:fake_train_cohort"
TABLES = ("runs", "curves", "probes", "timings")


def tuned_study(**tune) -> Study:
    return parse_study({"name": "tuned", "seeds": 3, "fixed": {"total_steps": 400},
                        "factors": {"baseline": ["none", "mean"]},
                        "tune": {"policy_lr": [1e-3, 3e-3, 1e-2], "seeds": 2, **tune}}, where="tuned.toml")


def run_tuned(study: Study, out: Path, executor, cohort_size: int | None = None) -> StudyRun:
    return run_plan(plan_study(study, out, cohort_size=cohort_size), executor)


def all_bytes(out: Path) -> dict[str, bytes]:
    files = {f"{t}.csv": (out / f"{t}.csv").read_bytes() for t in TABLES if t != "timings"}
    files |= {f"tune/{t}.csv": (out / TUNE_DIR / f"{t}.csv").read_bytes() for t in TABLES if t != "timings"}
    return files | {CHOICE_FILE: (out / CHOICE_FILE).read_bytes()}


def test_a_plain_study_is_one_stage(tmp_path: Path) -> None:
    study = parse_study({"name": "plain", "seeds": 2, "fixed": {"total_steps": 300},
                         "factors": {"gamma": [0.99, 0.25]}}, where="plain.toml")
    plan = plan_study(study, tmp_path, cohort_size=3)
    assert not plan.tuned and [s.label for s in plan.stages] == [""]
    stage = plan.stages[0]
    assert stage.n_runs == 4 and stage.env_steps == 1200
    assert [len(c.configs) for c in stage.todo] == [2, 2]  # 4 runs, at most 3 a cohort: balanced
    result = run_plan(plan, SerialExecutor(trainer=PLAIN_FAKE))
    assert len(result.stages) == 1 and result.choice is None
    assert result.summary().counts == {"done": 2, "diverged": 2, "failed": 0, "pending": 0}
    [status] = stage_status(tmp_path)
    assert status.label == "" and status.manifest["name"] == "plain" and status.summary.counts["diverged"] == 2
    assert plan_study(study, tmp_path).stages[0].todo == []  # all done: nothing left


def test_tuned_plan_before_and_after_stage1(tmp_path: Path) -> None:
    study = tuned_study()
    plan = plan_study(study, tmp_path, cohort_size=4)
    assert plan.tuned and [s.label for s in plan.stages] == [TUNING, EVALUATION]
    first, second = plan.stages
    assert first.out == tmp_path / TUNE_DIR and first.n_runs == 12
    assert len(first.todo) == 3  # one cohort key: 12 runs in cohorts of 4
    assert second.configs is None and second.n_runs == 6 and second.env_steps == 6 * 400  # a bound
    statuses = list(stage_status(tmp_path))
    assert [s.manifest for s in statuses] == [None]  # nothing started
    run_tuned(study, tmp_path, SerialExecutor(trainer=FAKE))
    second = plan_study(study, tmp_path).stages[1]
    assert second.todo == [] and len(second.configs) == 6
    one, two = stage_status(tmp_path)
    assert (one.label, two.label) == (TUNING, EVALUATION) and one.choice == (tmp_path / CHOICE_FILE, 2)
    assert one.summary.counts["done"] == 12 and two.summary.counts["done"] == 6


def test_planted_case_selects_each_configs_best_and_is_rederivable(tmp_path: Path) -> None:
    study = tuned_study()
    result = run_tuned(study, tmp_path, SerialExecutor(trainer=FAKE))
    assert [s.counts["done"] for s in result.stages] == [12, 6]
    assert choice_from_file(study, tmp_path / CHOICE_FILE) == [{"policy_lr": 1e-2}, {"policy_lr": 1e-3}]
    runs = read_text_table(tmp_path / "runs.csv")  # stage 2 trained each config at its own choice, on seeds 0..2
    assert sorted(zip(runs["baseline"], runs["policy_lr"], runs["seed"])) == sorted(
        (b, lr, str(s)) for b, lr in (("none", "0.01"), ("mean", "0.001")) for s in range(3))
    # the choice is a pure function of stage 1's rows: derived again, in any row order, it is the same bytes
    table, _ = choose(study, *read_stage1(tmp_path))
    again, _ = choose(study, *(df.iloc[::-1] for df in read_stage1(tmp_path)))
    text = (tmp_path / CHOICE_FILE).read_text()
    assert table.to_csv(index=False, lineterminator="\n") == text == again.to_csv(index=False, lineterminator="\n")


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
    plan = plan_study(study, tmp_path / "killed", cohort_size=3)
    assert (plan.stages[1].configs is None) == (stop_after < 4)
    run_tuned(study, tmp_path / "killed", SerialExecutor(trainer=FAKE), cohort_size=3)
    assert all_bytes(tmp_path / "killed") == all_bytes(tmp_path / "clean")


