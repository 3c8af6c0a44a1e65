"""Executors: serial, local pool and Ray give byte-identical CSVs; failures are isolated run by run; a pool error
outside any run stops the study. (The driver around them: tests/study/test_driver.py.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from ablations.study.driver import run_study
from ablations.study.executors import (ExecutorError, ExecutorSetupError, LocalExecutor, RayExecutor, SerialExecutor,
                                       check_ray_address, make_executor)
from ablations.study.progress import Progress
from ablations.study.results_format import read_text_table
from tests.helpers.studies import FAKE, csv_bytes, fake_study, tiny_study

def test_fake_serial_and_pool_identical_and_failures_isolated(tmp_path: Path) -> None:
    study = fake_study()
    progress = Progress()
    serial = run_study(study, tmp_path / "serial", SerialExecutor(trainer=FAKE), cohort_size=4, progress=progress)
    pool = run_study(study, tmp_path / "pool", LocalExecutor(workers=2, trainer=FAKE), cohort_size=5)
    assert csv_bytes(tmp_path / "serial") == csv_bytes(tmp_path / "pool")
    assert serial.counts == pool.counts == {"done": 6, "diverged": 6, "failed": 6, "pending": 0}
    assert progress.done + progress.failed + progress.diverged == 18
    assert progress.total_steps == 18 * 300
    assert progress.completed_steps == 12 * 300  # real steps: the 6 failed runs record none
    runs = read_text_table(tmp_path / "serial" / "runs.csv")
    failed = runs[runs["status"] == "failed"]
    assert set(failed["gamma"]) == {"0.5"}
    assert all(e.startswith("ValueError: fake failure for gamma=0.5") for e in failed["error"])
    assert set(runs[runs["status"] == "diverged"]["gamma"]) == {"0.25"}
    assert [r for r, _ in serial.failed] == list(failed["run_id"])
    curves = read_text_table(tmp_path / "serial" / "curves.csv")
    assert not set(curves["run_id"]) & set(failed["run_id"])
    assert set(read_text_table(tmp_path / "serial" / "timings.csv")["run_id"]) == set(runs["run_id"])


def test_ray_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ExecutorError, match=r"pip install 'ablations\[ray\]'"):
        make_executor("ray")


def test_check_ray_address_accepts_a_listening_port_and_refuses_a_closed_one_at_once() -> None:
    import socket
    import time

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check_ray_address(f"127.0.0.1:{port}")
        check_ray_address(f"ray://127.0.0.1:{port}")
    start = time.monotonic()  # the port is closed now: refused, not retried
    with pytest.raises(ExecutorSetupError, match=f"nothing accepts connections at 127.0.0.1:{port}"):
        check_ray_address(f"127.0.0.1:{port}")
    assert time.monotonic() - start < 5
    for bad in ("headnode", "10.0.0.5:", ":6379", "10.0.0.5:port"):
        with pytest.raises(ExecutorSetupError, match="not a Ray address; allowed: host:port"):
            check_ray_address(bad)
    check_ray_address("auto")  # Ray's own to resolve
    check_ray_address("local")


def test_make_executor() -> None:
    assert isinstance(make_executor("local", workers=1), SerialExecutor)
    assert isinstance(make_executor("local", workers=2), LocalExecutor)
    with pytest.raises(ExecutorError, match="allowed"):
        make_executor("dask")


def test_engine_serial_pool_identical(tmp_path: Path) -> None:
    study = tiny_study()
    a = run_study(study, tmp_path / "serial", SerialExecutor(), cohort_size=64)
    b = run_study(study, tmp_path / "pool", LocalExecutor(workers=2), cohort_size=3)
    assert a.counts["done"] == b.counts["done"] == 8
    assert csv_bytes(tmp_path / "serial") == csv_bytes(tmp_path / "pool")


@pytest.mark.slow  # ~30 s: starting a local Ray cluster alone takes 10-20 s
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_engine_ray_identical_to_serial(tmp_path: Path) -> None:
    study = tiny_study()
    run_study(study, tmp_path / "serial", SerialExecutor(), cohort_size=3)
    summary = run_study(study, tmp_path / "ray", RayExecutor(workers=2), cohort_size=3)
    assert summary.counts["done"] == 8
    assert csv_bytes(tmp_path / "serial") == csv_bytes(tmp_path / "ray")


def test_pool_error_outside_a_run_is_an_executor_error(tmp_path: Path) -> None:
    study = fake_study()
    with pytest.raises(ExecutorError, match="could not run: ModuleNotFoundError"):
        run_study(study, tmp_path, LocalExecutor(workers=2, trainer="tests.no_such_module:train"))
    assert not (tmp_path / "cohorts").exists()


def _fake_ray(error: Exception) -> types.ModuleType:
    """A `ray` whose `init` fails as Ray 2.60's does against a cluster started with token auth."""
    ray = types.ModuleType("ray")
    ray.is_initialized = lambda: False

    def init(**kwargs: Any) -> None:
        raise error

    ray.init = init
    ray.shutdown = lambda: None
    return ray


def test_ray_init_errors_show_rays_cause_and_nothing_is_written(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """Issue 28, item 7: the error says what Ray said (an auth error: set RAY_AUTH_MODE=token here too), and no file,
    manifest.json included, is written before the cluster answers."""
    from typer.testing import CliRunner

    from ablations.cli.app import app

    auth = type("AuthenticationError", (Exception,), {})("Failed to authenticate: no token found (RAY_AUTH_MODE)")
    monkeypatch.setitem(sys.modules, "ray", _fake_ray(auth))
    out = tmp_path / "out"
    with pytest.raises(ExecutorSetupError, match=r"AuthenticationError: Failed to authenticate.*RAY_AUTH_MODE=token"):
        run_study(tiny_study(), out, make_executor("ray", address="auto"))
    assert not out.exists()
    study = tmp_path / "s.toml"
    study.write_text('name = "s"\nseeds = 1\n[fixed]\nenv_id = "CartPole-v1"\ntotal_steps = 300\n')
    res = CliRunner().invoke(app, ["run", str(study), "--out", str(out), "--executor", "ray", "--address", "auto"])
    assert res.exit_code == 2 and "AuthenticationError" in res.output and "Nothing was written" in res.output, \
        res.output
    assert not out.exists()
    monkeypatch.setitem(sys.modules, "ray", _fake_ray(ConnectionError("Could not find any running Ray instance. "
                                                                      "Please specify the one to connect to")))
    with pytest.raises(ExecutorSetupError, match="ConnectionError: Could not find any running Ray instance.*"
                                                 "`ray start --head`"):
        run_study(tiny_study(), out, make_executor("ray", address="auto"))
    assert not out.exists()


def test_a_local_worker_imports_neither_pandas_nor_scipy_to_train_a_cohort():
    """A spawned worker unpickles `train_isolated` (importing this module) and trains, probes and evaluates through
    `study.worker.train_cohort`: no step imports pandas or scipy, whose imports every worker would otherwise pay
    before its first cohort (about 0.5 s and 1 s on the 2-core machine; a fresh interpreter)."""
    code = ("import sys\nfrom ablations.config import RunConfig\nfrom ablations.study.executors import train_isolated\n"
            "cs = [RunConfig(seed=s, total_steps=400, hidden=(8,), episodes_per_update=2, eval_episodes=1, "
            "probe_every=2, probe_batches=2, baseline='value') for s in (0, 1)]\n"
            "res = train_isolated('c0', cs)\nassert [r['status'] for r in res.runs] == ['done', 'done'], res.runs\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'scipy', 'typer'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
