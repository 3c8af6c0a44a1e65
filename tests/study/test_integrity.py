"""Faults: corrupted parts are detected (named, trained again, combined CSVs restored); corrupt JSON is a clear
error; `report` refuses edited combined CSVs; no process outlives a driver SIGKILLed in its first second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablations.report import ReportError
from ablations.report.load import load_results
from ablations.study.driver import run_study
from ablations.study.executors import SerialExecutor
from ablations.study.store import ResultsDir
from tests.helpers.studies import FAKE, csv_bytes, fake_study

ROOT = Path(__file__).resolve().parents[2]


def _first_part(out: Path) -> Path:
    return sorted(p for p in (out / "cohorts").iterdir() if not p.name.startswith("."))[0]


@pytest.mark.parametrize("damage", ["half-line-curves", "empty-runs", "truncated-done"])
def test_a_corrupt_part_is_named_and_trained_again(tmp_path, damage):
    study = fake_study()
    out = tmp_path / "out"
    run_study(study, out, SerialExecutor(trainer=FAKE), cohort_size=4)
    good = csv_bytes(out)
    part = _first_part(out)
    if damage == "half-line-curves":
        text = (part / "curves.csv").read_bytes()
        (part / "curves.csv").write_bytes(text[: len(text) - 7])
    elif damage == "empty-runs":
        (part / "runs.csv").write_bytes(b"")
    else:
        text = (part / "DONE.json").read_bytes()
        (part / "DONE.json").write_bytes(text[: len(text) // 2])
        assert part not in [p.path for p in ResultsDir(out).parts()]  # not done: its runs are pending
    summary = run_study(study, out, SerialExecutor(trainer=FAKE), cohort_size=4)
    assert [Path(p).name for p, _ in summary.discarded] == [part.name]
    assert summary.trained > 0 and summary.counts["pending"] == 0
    assert csv_bytes(out) == good  # the combined CSVs are exactly what they were


def test_report_refuses_a_truncated_combined_csv(tmp_path):
    out = tmp_path / "out"
    run_study(fake_study(), out, SerialExecutor(trainer=FAKE), cohort_size=4)
    text = (out / "curves.csv").read_bytes()
    (out / "curves.csv").write_bytes(text[: len(text) - 30])
    with pytest.raises(ReportError, match=r"curves.csv has \d+ rows, \d+ were written.*run the study again"):
        load_results(out)


def test_no_process_outlives_a_driver_killed_in_its_first_second(tmp_path):
    study = tmp_path / "s.toml"
    study.write_text('name = "s"\nseeds = 4\n[fixed]\ntotal_steps = 50000\nhidden = [8]\n'
                     '[factors]\nbaseline = ["none", "value"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "ablations.cli", "run", str(study), "--out", str(tmp_path / "o"),
                             "--workers", "2", "--cohort-size", "2"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # anything left in the driver's session (workers, resource tracker)?
        except ProcessLookupError:
            return
        time.sleep(0.25)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("processes of the killed driver's session were still running 60 s later")
