"""The Ray driver's record of cohorts in flight (`in_flight.json`) and how `ablations status` shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ablations.cli.run import standalone_app
from ablations.study.design import expand, parse_study
from ablations.study.cohorts import cohorts
from ablations.study.driver import run_study
from ablations.study.executors import SerialExecutor
from ablations.study.progress import IN_FLIGHT_FILE, InFlight, read_in_flight
from ablations.study.store import ResultsDir

FAKE = "tests.helpers.failing_env:fake_train_cohort"


def small_study():
    return parse_study({"name": "fake", "seeds": 2, "fixed": {"total_steps": 300}, "factors": {"gamma": [0.9, 0.8]}},
                       where="fake.toml")


def test_in_flight_record_lifecycle(tmp_path: Path) -> None:
    todo = cohorts(expand(small_study()), max_size=2)
    rec = InFlight(tmp_path, "ray", "auto", every=3600)
    for c in todo:
        rec.queued(c)
    rec.flush()  # the first write is not held back
    data = read_in_flight(tmp_path)
    assert data["driver_pid"] == os.getpid() and data["executor"] == "ray" and data["address"] == "auto"
    assert {cid: c["state"] for cid, c in data["cohorts"].items()} == {c.id: "queued" for c in todo}
    rec.running(todo[0].id, {"node_id": "n1", "task_id": "t1", "worker_pid": 7})
    rec.finished(todo[1].id)
    rec.flush()  # within `every` of the last write: not rewritten
    assert len(read_in_flight(tmp_path)["cohorts"]) == 2
    rec.flush(force=True)
    data = read_in_flight(tmp_path)
    assert data["cohorts"] == {todo[0].id: {"state": "running", "runs": 2, "node_id": "n1", "task_id": "t1",
                                            "worker_pid": 7}}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "written atomically, no temp left"
    rec.remove()
    assert read_in_flight(tmp_path) is None


def test_unreadable_record_is_ignored(tmp_path: Path) -> None:
    (tmp_path / IN_FLIGHT_FILE).write_text("{trunc")
    assert read_in_flight(tmp_path) is None


def test_status_shows_cohorts_in_flight_and_whether_the_driver_lives(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out).mkdir()
    (out / IN_FLIGHT_FILE).write_text("stale")
    run_study(small_study(), out, SerialExecutor(trainer=FAKE))
    assert not (out / IN_FLIGHT_FILE).exists(), "a stale record is removed by the next run"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    rec = InFlight(out, "ray", "auto")
    rec.head["driver_pid"] = int(dead.stdout)
    todo = cohorts(expand(small_study()), max_size=4)
    rec.queued(todo[0])
    rec.running(todo[0].id, {"node_id": "abcdef0123456789ff", "task_id": "task42", "worker_pid": 4242})
    rec.flush(force=True)
    result = CliRunner().invoke(standalone_app(), ["status", str(out)])
    assert result.exit_code == 0, result.output
    assert f"driver pid {dead.stdout.strip()}, not running: its tasks died with it" in result.output
    assert "1 cohort(s), 1 running, 0 queued" in result.output
    assert todo[0].id in result.output and "abcdef0123456789" in result.output and "4242" in result.output
    # a live driver holds the results directory's lock
    data = json.loads((out / IN_FLIGHT_FILE).read_text())
    data["driver_pid"] = os.getpid()
    (out / IN_FLIGHT_FILE).write_text(json.dumps(data))
    with ResultsDir(out).lock():
        result = CliRunner().invoke(standalone_app(), ["status", str(out)])
    assert f"driver pid {os.getpid()}, running;" in result.output, result.output
    assert f"running now (pid {os.getpid()})" in result.output
