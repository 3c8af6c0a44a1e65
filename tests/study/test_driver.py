"""The study driver (`study.driver`): resume and --retry-failed, summaries (from parts or a packed runs.csv), the
in-memory path of `ablations train` (cohorts dealt round-robin, rows in config order), and a driver that never loads
torch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ablations.study.design import expand
from ablations.study.driver import (counts, deal, plan, run_study, summarize,
                                    train_configs)
from ablations.study.executors import SerialExecutor
from ablations.study.progress import Progress
from ablations.study.store import ResultsDir
from ablations.study.results_format import frame

from tests.helpers.studies import FAKE, fake_study


def test_retry_failed_redoes_only_failed_runs(tmp_path: Path) -> None:
    study = fake_study()
    run_study(study, tmp_path, SerialExecutor(trainer=FAKE))
    before = {p.name for p in (tmp_path / "cohorts").iterdir()}
    again = run_study(study, tmp_path, SerialExecutor(trainer=FAKE))
    assert again.trained == 0 and {p.name for p in (tmp_path / "cohorts").iterdir()} == before
    retried = run_study(study, tmp_path, SerialExecutor(trainer=FAKE), retry_failed=True)
    assert retried.trained == 6 and retried.counts["failed"] == 6  # the fake fails deterministically


def test_plan_lists_what_the_directory_lacks(tmp_path: Path) -> None:
    study = fake_study()
    configs, todo = plan(study, tmp_path / "none", cohort_size=4)
    assert configs == expand(study) and sum(len(c.configs) for c in todo) == 18
    run_study(study, tmp_path, SerialExecutor(trainer=FAKE), cohort_size=4)
    assert plan(study, tmp_path)[1] == []
    again = plan(study, tmp_path, retry_failed=True, cohort_size=4)[1]
    assert sorted(c.gamma for cohort in again for c in cohort.configs) == [0.5] * 6  # the failed runs only


def test_summaries_from_parts_and_from_a_packed_runs_csv(tmp_path: Path) -> None:
    study = fake_study()
    summary = run_study(study, tmp_path, SerialExecutor(trainer=FAKE), cohort_size=6)
    ids = [c.run_id for c in expand(study)]
    assert summary.total == 18 and summary.trained == 18 and summary.wall_s > 0
    assert summary.env_steps == summary.budget_steps == 12 * 300  # the fake takes its budget exactly
    again = summarize(ResultsDir(tmp_path), ids + ["not-a-run"])
    assert again.counts == {"done": 6, "diverged": 6, "failed": 6, "pending": 1} and again.failed == summary.failed
    assert counts(ResultsDir(tmp_path), ids).counts == summary.counts
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "runs.csv").write_bytes((tmp_path / "runs.csv").read_bytes())
    (packed / "SHA256SUMS").write_text("")
    from_csv = counts(ResultsDir(packed), ids)
    assert from_csv.counts == summary.counts and from_csv.failed == summary.failed


def test_deal_is_round_robin() -> None:
    configs = expand(fake_study())[:5]
    dealt = deal(configs, 2)
    assert [list(c.configs) for c in dealt] == [configs[0::2], configs[1::2]]
    assert [list(c.configs) for c in deal(configs, 1)] == [configs]
    assert dealt[0].id != dealt[1].id and dealt[0].id == deal(configs[0::2], 1)[0].id  # the id: of its run_ids


def test_train_configs_gives_rows_in_config_order_whatever_the_cohorts() -> None:
    configs = [c for c in expand(fake_study()) if c.gamma != 0.5]  # the fake fails gamma=0.5
    one = train_configs(configs, SerialExecutor(trainer=FAKE), deal(configs, 1))
    progress = Progress()
    three = train_configs(configs, SerialExecutor(trainer=FAKE), deal(configs, 3), progress)
    assert [r["run_id"] for r in one.runs] == [c.run_id for c in configs]
    for rows in ("runs", "curves", "probes"):  # as text: a diverged run's NaN is not equal to itself
        assert frame(getattr(one, rows)).equals(frame(getattr(three, rows))), rows
    assert progress.done + progress.diverged == len(configs) and progress.completed_steps == len(configs) * 300


def test_the_study_driver_does_not_load_torch(tmp_path: Path) -> None:
    """The driver plans, writes the manifest (with torch's version), receives rows and writes CSVs: ~200 MiB of torch
    stay in the workers. (A study of at most SAVE_POLICIES_MAX_RUNS runs saves .pt policies, which needs torch; so does
    the in-process executor of `--workers 1`.)"""
    import subprocess

    study = tmp_path / "many.toml"
    study.write_text('name = "many"\nseeds = 51\n[fixed]\nenv_id = "CartPole-v1"\ntotal_steps = 100\n'
                     'episodes_per_update = 2\nhidden = [4]\neval_episodes = 0\n[factors]\nreturns = ["rtg", "full"]\n')
    code = ("import sys; from ablations.cli.app import app\n"
            f"sys.argv = ['ablations', 'run', {str(study)!r}, '--out', {str(tmp_path / 'out')!r}, '--workers', '2']\n"
            "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip().splitlines()[-1] == "False"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["versions"]["torch"] and manifest["counts"]["done"] == 102
