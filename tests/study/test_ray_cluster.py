"""Ray on a simulated multi-node cluster (`ray.cluster_utils.Cluster`: a head and worker nodes on this machine, one
CPU each): CSVs byte-identical to the serial executor's; a worker process that dies mid-task, a node removed
mid-study and a SIGKILLed driver all end with the same bytes, nothing lost or duplicated; parts are written as
cohorts arrive; `ablations status` shows the cohorts in flight and where."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")]

from ablations.study.design import Study, parse_study
from ablations.study.driver import run_study
from ablations.study.executors import RayExecutor, SerialExecutor
from ablations.study.progress import IN_FLIGHT_FILE, Progress, read_in_flight
from ablations.study.results_format import read_text_table
from ablations.study.store import ResultsDir
from tests.helpers.ray_trainers import MARKERS_ENV, SLEEP_ENV

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("runs", "curves", "probes")
TRAINERS = "tests.helpers.ray_trainers"
NODE = {"num_cpus": 1, "object_store_memory": 100 * 2**20}
STUDY = {"name": "cluster", "seeds": 2,
         "fixed": {"env_id": "CartPole-v1", "total_steps": 1500, "episodes_per_update": 4, "hidden": [8],
                   "eval_episodes": 2},
         "factors": {"baseline": ["none", "value"], "returns": ["rtg", "full"]}}
N_RUNS = 8


def study() -> Study:
    return parse_study(STUDY, where="cluster.toml")


def csv_bytes(out: Path) -> dict[str, bytes]:
    return {t: (out / f"{t}.csv").read_bytes() for t in TABLES}


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def assert_nothing_lost_or_duplicated(out: Path) -> None:
    parts = ResultsDir(out).parts()
    in_parts = [run_id for p in parts for run_id in p.runs]
    assert len(in_parts) == len(set(in_parts)) == N_RUNS, "every run in exactly one done part"
    runs = read_text_table(out / "runs.csv")
    assert len(runs) == N_RUNS and runs["run_id"].is_unique and set(runs["status"]) == {"done"}
    assert not (out / IN_FLIGHT_FILE).exists()
    assert not [p for p in (out / "cohorts").iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("serial")
    run_study(study(), out, SerialExecutor(), cohort_size=N_RUNS)
    return csv_bytes(out)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A head and one worker node (1 CPU each); the test process is connected as a driver. Workers inherit the
    environment, so the trainers of `tests.helpers.ray_trainers` find their marker folder."""
    import ray
    from ray.cluster_utils import Cluster

    markers = tmp_path_factory.mktemp("markers")
    saved = {k: os.environ.get(k) for k in (MARKERS_ENV, SLEEP_ENV)}
    os.environ[MARKERS_ENV], os.environ[SLEEP_ENV] = str(markers), "1.5"
    c = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    c.add_node(**NODE)
    c.wait_for_nodes(timeout=60)
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Watch(Progress):
    """Progress that checks, at each finished cohort, that its part is already on disk and what is in flight."""

    def __init__(self, out: Path):
        super().__init__()
        self.out, self.parts_at_done, self.nodes, self.most_in_flight = out, [], set(), 0

    def steps(self, cohort_id: str, delta: int) -> None:
        super().steps(cohort_id, delta)
        self._look()

    def cohort_done(self, cohort_id: str, statuses: Any, env_steps: int | None = None) -> None:
        super().cohort_done(cohort_id, statuses, env_steps)
        self.parts_at_done.append(len(ResultsDir(self.out).parts()))
        self._look()

    def _look(self) -> None:
        record = read_in_flight(self.out) or {"cohorts": {}}
        self.nodes |= {c["node_id"] for c in record["cohorts"].values() if c.get("node_id")}
        self.most_in_flight = max(self.most_in_flight, len(record["cohorts"]))


def test_multinode_identical_parts_written_as_cohorts_arrive(cluster: Any, reference: dict[str, bytes],
                                                             tmp_path: Path) -> None:
    out = tmp_path / "ray"
    watch = Watch(out)
    summary = run_study(study(), out, RayExecutor(address=cluster.address, trainer=f"{TRAINERS}:slow"),
                        cohort_size=1, progress=watch)
    assert summary.counts["done"] == N_RUNS
    assert csv_bytes(out) == reference
    # one part per cohort, on disk when the driver heard of it: rows are not held until the end
    assert watch.parts_at_done == list(range(1, N_RUNS + 1))
    assert len(watch.nodes) == 2, "cohorts ran on both nodes"
    assert 0 < watch.most_in_flight <= 4, "submission is bounded: at most max(4, 2 × CPUs) tasks in flight"
    # the progress counts are the serial executor's: done/failed/total and the steps the runs recorded
    runs = read_text_table(out / "runs.csv")
    assert (watch.done, watch.failed, watch.total_runs) == (N_RUNS, 0, N_RUNS)
    assert watch.completed_steps == sum(int(s) for s in runs["env_steps"])
    assert_nothing_lost_or_duplicated(out)


def test_worker_killed_mid_task_is_retried_identically(cluster: Any, reference: dict[str, bytes],
                                                       tmp_path: Path) -> None:
    out = tmp_path / "ray"
    summary = run_study(study(), out, RayExecutor(address=cluster.address, trainer=f"{TRAINERS}:die_once"),
                        cohort_size=4)
    died = list(Path(os.environ[MARKERS_ENV]).glob("died-*"))
    assert len(died) == 2, "each cohort's first attempt killed its worker"
    assert summary.counts["done"] == N_RUNS
    assert csv_bytes(out) == reference
    assert_nothing_lost_or_duplicated(out)


def test_node_removed_mid_study_redone_elsewhere(cluster: Any, reference: dict[str, bytes], tmp_path: Path) -> None:
    out = tmp_path / "ray"
    doomed = cluster.add_node(**NODE)
    cluster.wait_for_nodes(timeout=60)
    box: dict[str, Any] = {}

    def drive() -> None:
        try:
            box["summary"] = run_study(study(), out, RayExecutor(address=cluster.address, trainer=f"{TRAINERS}:slow"),
                                       cohort_size=1)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            box["error"] = exc

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()

    def on_doomed() -> list[str]:
        record = read_in_flight(out) or {"cohorts": {}}
        return [cid for cid, c in record["cohorts"].items() if c.get("node_id") == doomed.node_id]

    victims = wait_for(on_doomed, 120, "a cohort running on the node to remove")
    cluster.remove_node(doomed)
    driver.join(timeout=300)
    assert not driver.is_alive(), "the study did not finish after the node was removed"
    if "error" in box:
        raise box["error"]
    assert box["summary"].counts["done"] == N_RUNS
    assert csv_bytes(out) == reference
    assert set(victims) <= {p.path.name.split("-", 1)[1] for p in ResultsDir(out).parts()}
    assert_nothing_lost_or_duplicated(out)


DRIVER = """
import sys
from ablations.study.design import parse_study
from ablations.study.driver import run_study
from ablations.study.executors import RayExecutor
from tests.study.test_ray_cluster import STUDY
run_study(parse_study(STUDY, where="cluster.toml"), sys.argv[1],
          RayExecutor(address=sys.argv[2], trainer="tests.helpers.ray_trainers:slow"), cohort_size=1)
"""


def test_driver_sigkilled_with_tasks_in_flight_resumes_identically(cluster: Any, reference: dict[str, bytes],
                                                                   tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ablations.cli.run import standalone_app

    out = tmp_path / "ray"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "driver.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(out), cluster.address], cwd=ROOT, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        def parts_and_running() -> bool:
            record = read_in_flight(out) or {"cohorts": {}}
            running = [c for c in record["cohorts"].values() if c.get("state") == "running"]
            return bool(running) and 0 < len(ResultsDir(out).parts()) < N_RUNS

        wait_for(lambda: proc.poll() is not None or parts_and_running(), 180, "a part and cohorts in flight")
        assert proc.poll() is None, log.read_text()[-2000:]
        status = CliRunner().invoke(standalone_app(), ["status", str(out)])
        assert "running now (pid" in status.output and ", running;" in status.output, status.output
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    before = len(ResultsDir(out).parts())
    assert 0 < before < N_RUNS
    status = CliRunner().invoke(standalone_app(), ["status", str(out)])
    assert "not running: its tasks died with it" in status.output and "running on node" in status.output
    # the counts and the cohorts in flight are shown, and the directory is not a result until it is finished
    assert status.exit_code == 2 and "did not finish" in status.output and "ablations run" in status.output
    summary = run_study(study(), out, RayExecutor(address=cluster.address), cohort_size=1)
    assert summary.trained == N_RUNS - before
    assert csv_bytes(out) == reference
    assert_nothing_lost_or_duplicated(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [i["outcome"] for i in manifest["invocations"]] == ["killed", "finished"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_study_through_a_head_started_with_ray_start(tmp_path: Path) -> None:
    """README's path with the Ray the install resolves to: `ray start --head` (here on a free port, one CPU, in the
    foreground so that it is stopped by its own pid), then `ablations run … --executor ray --address host:port`:
    the CSVs are those of the serial executor."""
    import shutil
    import socket
    import tempfile

    port = _free_port()
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp_dir = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit in 107 bytes
    log = open(tmp_path / "head.log", "w")  # noqa: SIM115 - closed in the finally
    home = tmp_path / "home"  # hermetic: a token left in the machine's ~/.ray must not decide the auth mode
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", "--port", str(port), "--num-cpus", "1",
                             "--include-dashboard=false", "--node-ip-address", "127.0.0.1", "--temp-dir", temp_dir,
                             "--disable-usage-stats"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**clean, "HOME": str(home)})
    try:
        def listening() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return head.poll() is not None  # died: stop waiting (asserted below)

        wait_for(listening, 180, "the Ray head to listen")
        assert head.poll() is None, (tmp_path / "head.log").read_text()
        spec = tmp_path / "cluster.toml"
        spec.write_text('name = "cluster"\nseeds = 2\n[fixed]\nenv_id = "CartPole-v1"\ntotal_steps = 500\n'
                        'episodes_per_update = 4\nhidden = [8]\neval_episodes = 0\n')
        env = {**clean, "HOME": str(home), "PYTHONPATH": str(ROOT)}
        run = [sys.executable, "-m", "ablations.cli", "run", str(spec), "--out", str(tmp_path / "ray"), "--executor",
               "ray", "--address", f"127.0.0.1:{port}"]
        res = subprocess.run(run, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
        if "Token authentication is enabled" in (tmp_path / "head.log").read_text():  # Ray >= 2.5x's default
            assert res.returncode == 2 and "RAY_AUTH_MODE=token" in res.stderr, res.stdout + res.stderr
            assert not (tmp_path / "ray").exists()  # nothing written before the cluster answers
            res = subprocess.run(run, env={**env, "RAY_AUTH_MODE": "token"}, cwd=ROOT, capture_output=True,
                                 text=True, timeout=900)
        assert res.returncode == 0, res.stdout + res.stderr
        serial = subprocess.run([sys.executable, "-m", "ablations.cli", "run", str(spec), "--out",
                                 str(tmp_path / "serial"), "--workers", "1"], env=env, cwd=ROOT, capture_output=True,
                                text=True, timeout=900)
        assert serial.returncode == 0, serial.stderr
        assert csv_bytes(tmp_path / "ray") == csv_bytes(tmp_path / "serial")
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if head.poll() is None:
                os.killpg(head.pid, sig)
                try:
                    head.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    pass
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
