"""`ablations run` / `ablations status` end to end: bad files, dry run, failures and retry, resume after SIGKILL and
SIGINT (byte-identical CSVs), and the lock against a concurrent run. Uses the real engine with tiny budgets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ablations.cli.run import standalone_app
from ablations.study.driver import run_study
from ablations.study.executors import SerialExecutor
from ablations.study.results_format import DONE_MARKER, read_text_table
from ablations.study.design import load_study

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from ablations.cli.app import app; app()"]
TABLES = ("runs", "curves", "probes")
runner = CliRunner()
app = standalone_app()

SMALL = """
name = "small"
seeds = 3
[fixed]
env_id = "CartPole-v1"
total_steps = 8000  # long enough (~1 s a run) that a signal lands mid-study
hidden = [16]
eval_episodes = 2
[factors]
baseline = ["none", "value"]
returns = ["full", "rtg"]
"""

FAILING = """
name = "failing"
seeds = 6
imports = ["tests.helpers.failing_env"]
[fixed]
env_id = "AblationsFail-v0"
total_steps = 1500
hidden = [16]
eval_episodes = 2
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def csv_bytes(out: Path) -> dict[str, bytes]:
    return {t: (out / f"{t}.csv").read_bytes() for t in TABLES}


def done_parts(out: Path) -> list[Path]:
    parts = out / "cohorts"
    return [p for p in parts.iterdir() if (p / DONE_MARKER).exists()] if parts.is_dir() else []


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The small study file and its uninterrupted results (serial, in-process)."""
    root = tmp_path_factory.mktemp("small")
    study = root / "small.toml"
    study.write_text(SMALL)
    summary = run_study(load_study(study), root / "reference", SerialExecutor(), cohort_size=5)
    assert summary.counts["done"] == 12
    return study, root / "reference"


BAD = {
    "syntax": ("name = 'x\n", "TOML syntax error"),
    "unknown axis value": (SMALL.replace('"value"]', '"vlaue"]'), "baseline='vlaue' is invalid; allowed: none | mean"),
    "unknown field": (SMALL.replace("hidden", "hiden"), "[fixed] unknown field(s) ['hiden']; allowed:"),
    "unknown env": (SMALL.replace("CartPole-v1", "CartPool-v1"), "env_id='CartPool-v1' is not a registered"),
    "empty factor": (SMALL.replace('["full", "rtg"]', "[]"), "[factors] returns must be a non-empty list"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_study_file_exits_2_and_writes_nothing(tmp_path: Path, case: str) -> None:
    text, needle = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 2
    assert str(path) in result.output and needle in result.output, result.output
    assert not out.exists()


def test_dry_run_prints_the_grid_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "q"
    result = runner.invoke(app, ["run", str(ROOT / "studies" / "quick.toml"), "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "24 configs × 3 seeds = 72 runs" in result.output and "nothing written" in result.output
    assert not out.exists()
    defaults = " ".join(result.output.split()).split("defaults (neither fixed nor swept): ")[1]
    for field in ("value_iters=", "gamma=", "max_grad_norm=", "optimizer=", "activation="):  # every unset field
        assert field in defaults, defaults


def test_progress_and_worker_count_are_whole_when_not_a_terminal(tmp_path: Path) -> None:
    """Issue 28, item 12: the progress line is not cut at 80 columns in a log, and `--workers 500` says how many
    workers start (one per cohort at most)."""
    study = tmp_path / "a_study_with_a_rather_long_name.toml"
    study.write_text('name = "a_study_with_a_rather_long_name"\nseeds = 2\n[fixed]\nenv_id = "CartPole-v1"\n'
                     'total_steps = 300\nhidden = [8]\neval_episodes = 0\n')
    result = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "o"), "--workers", "500",
                                 "--cohort-size", "1"])
    assert result.exit_code == 0, result.output
    assert "(2 worker(s), of the 500 asked: at most one per cohort)" in result.output, result.output
    assert "runs 2/2 done, 0 failed" in result.output and "…" not in result.output, result.output


def test_failed_runs_are_isolated_and_retried_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("PYTHONPATH", env()["PYTHONPATH"])
    study, out = tmp_path / "failing.toml", tmp_path / "out"
    study.write_text(FAILING)
    first = runner.invoke(app, ["run", str(study), "--out", str(out), "--workers", "2"])
    assert first.exit_code == 1, first.output
    assert "--retry-failed" in first.output
    runs = read_text_table(out / "runs.csv")
    failed = runs[runs["status"] == "failed"]
    done = runs[runs["status"] == "done"]
    assert len(failed) and len(done) and len(runs) == 6  # both kinds, all in one cohort
    assert all(e.startswith("RuntimeError: FailEnv exploded") for e in failed["error"])
    assert set(read_text_table(out / "curves.csv")["run_id"]) == set(done["run_id"])

    status = runner.invoke(app, ["status", str(out)])
    assert status.exit_code == 0
    assert f"failed {len(failed)}" in status.output and all(r in status.output for r in failed["run_id"])

    monkeypatch.setenv("ABLATIONS_FAILENV_OFF", "1")
    again = runner.invoke(app, ["run", str(study), "--out", str(out), "--workers", "1"])  # without the flag: no-op
    assert again.exit_code == 1 and f"failed {len(failed)}" in again.output
    parts_before = set(done_parts(out))
    retry = runner.invoke(app, ["run", str(study), "--out", str(out), "--workers", "1", "--retry-failed"])
    assert retry.exit_code == 0, retry.output
    new = set(done_parts(out)) - parts_before
    retrained = {r["run_id"] for p in new for r in json.loads((p / DONE_MARKER).read_text())["runs"]}
    assert retrained == set(failed["run_id"])
    after = read_text_table(out / "runs.csv")
    assert list(after["status"]) == ["done"] * 6
    assert after[after["run_id"].isin(done["run_id"])].equals(done)


def _default_sigint() -> None:
    """In the child: SIGINT back to its default, so Python turns it into KeyboardInterrupt even when the test
    suite itself runs in a background job (which starts with SIGINT ignored, and Python keeps that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(study: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "run", str(study), "--out", str(out), *extra], env=env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_default_sigint)


def _wait_for_parts(proc: subprocess.Popen, out: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(done_parts(out)) < n:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_resume_after_kill_is_byte_identical(tmp_path: Path, small: tuple[Path, Path], sig: signal.Signals) -> None:
    study, reference = small
    out = tmp_path / "out"
    proc = _start(study, out, "--workers", "1", "--cohort-size", "1")
    _wait_for_parts(proc, out, 2)
    proc.send_signal(sig)
    output = proc.communicate(timeout=60)[0]
    finished = len(done_parts(out))
    assert 2 <= finished < 12, output
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "run the same command again to resume" in output, output
        assert not [p for p in (out / "cohorts").iterdir() if not (p / DONE_MARKER).exists()]
        assert json.loads((out / "manifest.json").read_text())["invocations"][-1]["outcome"] == "interrupted"
    else:
        assert proc.returncode == -signal.SIGKILL
    rerun = subprocess.run([*CLI, "run", str(study), "--out", str(out), "--workers", "2"], env=env(), cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invocations"][-1]["trained_runs"] == 12 - finished  # only the missing work ran
    assert manifest["status"] == "complete"
    assert csv_bytes(out) == csv_bytes(reference)


def test_second_concurrent_run_is_refused_first_unharmed(tmp_path: Path, small: tuple[Path, Path]) -> None:
    study, reference = small
    out = tmp_path / "out"
    first = _start(study, out, "--workers", "1", "--cohort-size", "1")
    _wait_for_parts(first, out, 1)
    second = runner.invoke(app, ["run", str(study), "--out", str(out), "--workers", "1"])
    assert second.exit_code == 3
    assert f"pid {first.pid}" in second.output and "in use" in second.output, second.output
    output = first.communicate(timeout=300)[0]
    assert first.returncode == 0, output
    assert csv_bytes(out) == csv_bytes(reference)


def test_changed_study_is_refused(tmp_path: Path, small: tuple[Path, Path]) -> None:
    study, reference = small
    changed = tmp_path / "changed.toml"
    changed.write_text(study.read_text().replace("seeds = 3", "seeds = 4"))
    result = runner.invoke(app, ["run", str(changed), "--out", str(reference), "--workers", "1"])
    assert result.exit_code == 2
    assert "different run set" in result.output and "4 run(s) added" in result.output
    status = runner.invoke(app, ["status", str(reference)])
    assert status.exit_code == 0 and "done 12" in status.output
