"""The results store: atomic parts, latest-record precedence, deterministic combining, the lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ablations.config import RunConfig
from ablations.study.results_format import DONE_MARKER, StoreError, failed_run_row, read_text_table
from ablations.study.store import ResultsDir
from tests.helpers.failing_env import fake_train_cohort


def _parts(configs: list[RunConfig]) -> list[tuple[str, object]]:
    return [(f"c{i}", fake_train_cohort(configs[i:i + 2])) for i in range(0, len(configs), 2)]


def _write(results: ResultsDir, parts: list) -> None:
    for cid, res in parts:
        results.write_part(cid, "s", res.runs, res.curves, res.probes, res.wall_s)


def test_combine_is_byte_identical_whatever_the_completion_order(tmp_path: Path) -> None:
    configs = [RunConfig(seed=s, total_steps=90 + s, probe_every=s % 2) for s in range(6)]
    order = [c.run_id for c in configs]
    parts = _parts(configs)
    a, b = ResultsDir(tmp_path / "a"), ResultsDir(tmp_path / "b")
    _write(a, parts)
    _write(b, parts[::-1])
    a.combine(order)
    b.combine(order)
    for table in ("runs", "curves", "probes", "timings"):
        assert (a.root / f"{table}.csv").read_bytes() == (b.root / f"{table}.csv").read_bytes(), table
    runs = read_text_table(a.root / "runs.csv")
    assert list(runs["run_id"]) == order
    assert list(runs.columns[:4]) == ["run_id", "study", "status", "error"]
    assert "wall_s" not in runs.columns
    curves = read_text_table(a.root / "curves.csv")
    assert list(curves["run_id"]) == [r for r in order for _ in range(3)]
    assert list(curves["update"]) == ["0", "1", "2"] * 6


@pytest.mark.parametrize("quoted", [False, True])
def test_combining_line_by_line_gives_the_bytes_of_reading_and_writing_the_parts_with_pandas(tmp_path: Path,
                                                                                             monkeypatch,
                                                                                             quoted: bool) -> None:
    """curves.csv and probes.csv are combined from the parts' lines (no cell held as a Python string), falling back
    to pandas where a cell is quoted: both give the same bytes as the pandas path, whatever the completion order,
    with a run retried in a later part (its latest record wins) and runs left out."""
    import ablations.study.store as store
    configs = [RunConfig(seed=s, total_steps=90 + s, probe_every=1 + s % 2) for s in range(6)]
    parts = _parts(configs)
    retry = fake_train_cohort(configs[1:2])
    if quoted:  # a cell with a comma is quoted by pandas: no longer one record per plain line
        parts[1][1].probes[0]["estimator"] = "a,b"
    order = [c.run_id for c in configs][::-1][:5]
    seen = {}
    for name, stream in (("lines", True), ("pandas", False)):
        results = ResultsDir(tmp_path / name)
        _write(results, parts[::-1])
        results.write_part("retry", "s", retry.runs, retry.curves, retry.probes, retry.wall_s)
        with monkeypatch.context() as m:
            if not stream:
                m.setattr(store, "_combined_lines", lambda *a: None)
            counts = results.combine(order)
        seen[name] = ({t: (results.root / f"{t}.csv").read_bytes() for t in ("runs", "curves", "probes", "timings")},
                      counts)
    assert seen["lines"] == seen["pandas"]
    assert seen["lines"][1]["probes"] == len(order)  # one probe row per run (fake_train_cohort)
    assert (b'"a,b"' in seen["lines"][0]["probes"]) == quoted


def test_latest_record_wins_and_failed_rows_keep_config_columns(tmp_path: Path) -> None:
    configs = [RunConfig(seed=s, total_steps=100) for s in range(2)]
    results = ResultsDir(tmp_path)
    first = fake_train_cohort(configs)
    first.runs[1] = failed_run_row(configs[1], "RuntimeError: boom")
    first.curves = [r for r in first.curves if r["run_id"] == configs[0].run_id]
    results.write_part("c0", "s", first.runs, first.curves, first.probes, first.wall_s)
    assert {r: rec.status for r, rec in results.records().items()} == {configs[0].run_id: "done",
                                                                       configs[1].run_id: "failed"}
    results.combine([c.run_id for c in configs])
    runs = read_text_table(tmp_path / "runs.csv")
    assert list(runs["status"]) == ["done", "failed"]
    assert runs.loc[1, "error"] == "RuntimeError: boom" and runs.loc[1, "hidden"] == "64-64"
    assert runs.loc[1, "env_steps"] == ""
    retry = fake_train_cohort(configs[1:])
    results.write_part("c1", "s", retry.runs, retry.curves, retry.probes, retry.wall_s)
    assert results.records()[configs[1].run_id].status == "done"
    results.combine([c.run_id for c in configs])
    assert list(read_text_table(tmp_path / "runs.csv")["status"]) == ["done", "done"]
    assert len(read_text_table(tmp_path / "curves.csv")) == 6


def test_incomplete_parts_are_ignored_and_cleaned(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path)
    res = fake_train_cohort([RunConfig(total_steps=100)])
    part = results.write_part("c0", "s", res.runs, res.curves, res.probes, res.wall_s)
    (part.path / DONE_MARKER).unlink()  # as if killed before the marker
    (results.parts_dir / ".tmp-000009-x-1").mkdir()
    assert results.records() == {}
    assert len(results.clean_incomplete()) == 2
    assert list(results.parts_dir.iterdir()) == []


def test_lock_refuses_a_second_holder_naming_the_pid(tmp_path: Path) -> None:
    import os

    results = ResultsDir(tmp_path / "r")
    with results.lock():
        assert results.lock_holder() == os.getpid()
        with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
            with ResultsDir(tmp_path / "r").lock():
                pass
    assert results.lock_holder() is None
    with results.lock():  # released, so it can be taken again
        pass


def test_check_compatible(tmp_path: Path) -> None:
    results = ResultsDir(tmp_path)
    results.check_compatible(["a", "b"], "s.toml")  # empty directory: fine
    results.write_manifest({"run_ids": ["a", "b"]})
    results.check_compatible(["b", "a"], "s.toml")  # same set, other order: fine
    with pytest.raises(StoreError, match=r"1 run\(s\) added, 1 removed.*another --out"):
        results.check_compatible(["a", "c"], "s.toml")
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"run_ids": ["a", "b"]}
