"""`ablations export`: TensorBoard event files read back equal curves.csv (float32), one run a directory named by its
config and seed, the config as hparams; W&B offline runs through a stand-in `wandb` module; a missing extra, a taken
directory or no target is exit 2 with one message and no traceback."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ablations.cli.app import app

runner = CliRunner()
TB = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


@pytest.fixture
def results(make_results) -> Path:
    return make_results(seeds=2, updates=5, total_steps=1000)


def _clean_exit_2(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    return " ".join(res.output.split())


def test_tensorboard_events_equal_the_curves(results, tmp_path):
    out = tmp_path / "tb"
    res = runner.invoke(app, ["export", str(results), "--tensorboard", str(out)])
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(results / "runs.csv")
    curves = pd.read_csv(results / "curves.csv")
    expected = {f"returns={r.returns},baseline={r.baseline},seed={r.seed}": r for r in runs.itertuples()}
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # 2 x 2 configs x 2 seeds
    for name, run in expected.items():
        acc = TB.EventAccumulator(str(out / name), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        c = curves[curves["run_id"] == run.run_id].sort_values("update")
        tags = set(acc.Tags()["scalars"])
        for col in ["return_mean", "return_std", "length_mean", "policy_loss", "entropy", "grad_norm", "episodes"]:
            events = acc.Scalars(f"train/{col}")
            assert [e.step for e in events] == c["env_steps"].tolist()
            assert np.array_equal(np.array([e.value for e in events], np.float32), c[col].to_numpy(np.float32))
        # value_loss is NaN without a critic: left out, not written as NaN
        assert ("train/value_loss" in tags) == (run.baseline == "value")
        assert acc.Scalars("hparams/final_return")[0].value == np.float32(run.final_return)
        from tensorboard.plugins.hparams import plugin_data_pb2

        start = plugin_data_pb2.HParamsPluginData.FromString(
            acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
        assert start.hparams["baseline"].string_value == run.baseline
        assert start.hparams["seed"].number_value == run.seed


def test_a_second_export_into_the_same_directory_is_refused(results, tmp_path):
    out = tmp_path / "tb"
    assert runner.invoke(app, ["export", str(results), "--tensorboard", str(out)]).exit_code == 0
    before = sorted(p.name for p in out.rglob("*"))
    text = _clean_exit_2(runner.invoke(app, ["export", str(results), "--tensorboard", str(out)]))
    assert "already holds exported runs" in text and sorted(p.name for p in out.rglob("*")) == before


def test_missing_tensorboard_names_the_extra(results, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # the import raises ImportError
    text = _clean_exit_2(runner.invoke(app, ["export", str(results), "--tensorboard", str(tmp_path / "tb")]))
    assert 'pip install "ablations[tensorboard]"' in text
    assert not (tmp_path / "tb").exists()


def test_missing_wandb_names_the_extra(results, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    text = _clean_exit_2(runner.invoke(app, ["export", str(results), "--wandb", str(tmp_path / "wb")]))
    assert 'pip install "ablations[wandb]"' in text


def test_nothing_to_export_to(results):
    assert "--tensorboard DIR" in _clean_exit_2(runner.invoke(app, ["export", str(results)]))


def test_a_missing_results_directory(tmp_path):
    assert "not found" in _clean_exit_2(runner.invoke(app, ["export", str(tmp_path / "nope"), "--tensorboard",
                                                             str(tmp_path / "tb")]))


class _FakeRun:
    def __init__(self, log: list, **kw) -> None:
        self.kw, self.logged, self.summary, self.finished, self.metrics = kw, [], {}, False, {}
        log.append(self)

    def define_metric(self, name: str, step_metric: str | None = None) -> None:
        self.metrics[name] = step_metric

    def log(self, row: dict) -> None:
        self.logged.append(dict(row))

    def finish(self) -> None:
        self.finished = True


def test_wandb_offline_runs_log_the_curves(results, tmp_path, monkeypatch):
    started: list[_FakeRun] = []
    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: _FakeRun(started, **kw)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    res = runner.invoke(app, ["export", str(results), "--wandb", str(tmp_path / "wb"), "--project", "p"])
    assert res.exit_code == 0, res.output
    curves = pd.read_csv(results / "curves.csv")
    runs = pd.read_csv(results / "runs.csv").set_index("run_id")
    assert len(started) == len(runs)
    for run in started:
        assert run.kw["mode"] == "offline" and run.kw["project"] == "p" and run.finished
        assert run.metrics["train/*"] == "env_steps"
        rid = runs.index[(runs["seed"] == run.kw["config"]["seed"]) & (runs["returns"] == run.kw["config"]["returns"])
                         & (runs["baseline"] == run.kw["config"]["baseline"])][0]
        c = curves[curves["run_id"] == rid].sort_values("update")
        assert [row["env_steps"] for row in run.logged] == c["env_steps"].tolist()
        assert [row["train/return_mean"] for row in run.logged] == c["return_mean"].tolist()
        assert run.summary["final_return"] == runs.loc[rid, "final_return"]


def test_failed_and_diverged_runs_are_exported_too(make_results, tmp_path):
    results = make_results(seeds=2, updates=4, failed=1, diverged=1)
    res = runner.invoke(app, ["export", str(results), "--tensorboard", str(tmp_path / "tb")])
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(results / "runs.csv")
    curves = pd.read_csv(results / "curves.csv")
    assert len(list((tmp_path / "tb").iterdir())) == len(runs)
    failed = runs[runs["status"] == "failed"].iloc[0]
    acc = TB.EventAccumulator(str(tmp_path / "tb" / f"returns={failed.returns},baseline={failed.baseline},"
                                                    f"seed={failed.seed}"), size_guidance={"scalars": 0})
    acc.Reload()
    assert len(acc.Scalars("train/return_mean")) == (curves["run_id"] == failed.run_id).sum() == 2  # stopped half way
