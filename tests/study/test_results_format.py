"""`ablations.study.results_format`: cells, the column schemas, the text reader, file records and their checks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ablations.config import CONFIG_COLUMNS, RunConfig
from ablations.study.results_format import (CURVES_COLUMNS, RUNS_LEADING, CorruptError, StoreError, check_files,
                                            empty_columns, failed_run_row, file_record, format_cell, frame,
                                            read_json, read_text_table, runs_columns, verify_combined,
                                            write_csv_atomic, write_json_atomic)


def test_format_cell() -> None:
    assert [format_cell(v) for v in (None, True, 3, 0.1, 1 / 3, float("nan"), float("-inf"), (64, 64), "a,b")] == [
        "", "True", "3", "0.1", "0.3333333333333333", "nan", "-inf", "64-64", "a,b"]
    # a cell's text never depends on its column-mates (no int→float upcast by a neighbouring None)
    df = frame([{"a": 1, "b": 2.5}, {"a": None, "b": 3}])
    assert df.to_dict("list") == {"a": ["1", ""], "b": ["2.5", "3"]}


def test_runs_columns_order() -> None:
    cols = runs_columns(["zeta", "run_id", "alpha", "seed"])
    assert cols == RUNS_LEADING + CONFIG_COLUMNS + ["alpha", "zeta"]
    assert empty_columns("runs") == RUNS_LEADING + CONFIG_COLUMNS and empty_columns("curves") == CURVES_COLUMNS


def test_failed_run_row() -> None:
    cfg = RunConfig(seed=4)
    row = failed_run_row(cfg, "RuntimeError: boom")
    assert row["run_id"] == cfg.run_id and row["status"] == "failed" and row["seed"] == 4
    assert row["final_return"] is None and row["error"] == "RuntimeError: boom"


def test_csv_round_trip_is_text_for_text(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_csv_atomic(path, frame([{"a": 0.1, "b": None, "c": "007"}]))
    assert path.read_bytes() == b"a,b,c\n0.1,,007\n"
    assert read_text_table(path).to_dict("list") == {"a": ["0.1"], "b": [""], "c": ["007"]}
    (tmp_path / "empty.csv").write_text("")
    assert read_text_table(tmp_path / "empty.csv").equals(pd.DataFrame())


def test_file_record_and_check_files(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(b"a\n1\n2\n")
    rec = file_record(tmp_path / "t.csv")
    assert rec == {"sha256": "d4fa155a0784a2543c083ff5c36ec7a7d4810f08946220e5acf4c1f11006216e", "rows": 2}
    assert check_files(tmp_path, {"t.csv": rec}) == []
    (tmp_path / "t.csv").write_bytes(b"a\n1\n3\n")
    assert check_files(tmp_path, {"t.csv": rec}) == ["t.csv has changed since it was written (SHA-256 differs)"]
    (tmp_path / "t.csv").write_bytes(b"a\n1\n")
    assert check_files(tmp_path, {"t.csv": rec}) == ["t.csv has 1 rows, 2 were written"]
    assert check_files(tmp_path, {"u.csv": rec}) == ["u.csv is missing"]


def test_verify_combined(tmp_path: Path) -> None:
    (tmp_path / "runs.csv").write_bytes(b"run_id\nx\n")
    manifest = {"files": {"runs.csv": file_record(tmp_path / "runs.csv")}}
    verify_combined(tmp_path, manifest)
    verify_combined(tmp_path, None)  # no record: nothing to check
    (tmp_path / "runs.csv").write_bytes(b"run_id\ny\n")
    with pytest.raises(CorruptError, match="truncated or edited after `ablations run`"):
        verify_combined(tmp_path, manifest)
    (tmp_path / "SHA256SUMS").write_text("")  # packed too: an edited runs.csv is refused (issue 28, item 4)
    with pytest.raises(CorruptError):
        verify_combined(tmp_path, manifest)


def _complete_dir(root: Path, status: str = "complete") -> dict:
    root.mkdir(parents=True, exist_ok=True)
    for table in ("runs", "curves", "probes", "timings"):
        (root / f"{table}.csv").write_bytes(b"run_id\nx\n")
    manifest = {"run_ids": ["x"], "status": status, "study": {"path": "studies/s.toml"},
                "files": {f"{t}.csv": file_record(root / f"{t}.csv") for t in ("runs", "curves", "probes", "timings")}}
    write_json_atomic(root / "manifest.json", manifest)
    return manifest


def test_require_complete_refuses_an_unfinished_combine(tmp_path: Path) -> None:
    from ablations.study.results_format import IncompleteError, require_complete

    _complete_dir(tmp_path)
    assert require_complete(tmp_path)["status"] == "complete"
    (tmp_path / "probes.csv").unlink()  # killed during the combine: no probes.csv, the manifest still "running"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    write_json_atomic(tmp_path / "manifest.json", {**manifest, "status": "running"})
    with pytest.raises(IncompleteError, match=r"probes.csv is missing.*`ablations run studies/s.toml --out "):
        require_complete(tmp_path)
    _complete_dir(tmp_path, status="running")  # every file there, but the commit record was never written
    with pytest.raises(IncompleteError, match="did not finish"):
        require_complete(tmp_path)
    with pytest.raises(StoreError, match="no manifest.json"):
        require_complete(tmp_path / "nothing")


def test_require_complete_checks_sha256sums_of_a_packed_directory(tmp_path: Path) -> None:
    from ablations.files import sha256_file
    from ablations.study.results_format import require_complete, verify_sums

    _complete_dir(tmp_path)
    (tmp_path / "curves.csv.xz").write_bytes(b"xz")
    sums = {n: sha256_file(tmp_path / n) for n in ("runs.csv", "curves.csv")}
    (tmp_path / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sums.items()))
    (tmp_path / "curves.csv").unlink()  # --delete-sources: its packed form stands for it
    require_complete(tmp_path)
    (tmp_path / "curves.csv.xz").unlink()
    with pytest.raises(CorruptError, match="curves.csv is missing"):
        verify_sums(tmp_path)
    (tmp_path / "curves.csv.xz").write_bytes(b"xz")
    (tmp_path / "SHA256SUMS").write_text(f"{sums['runs.csv']}  runs.csv\n")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    write_json_atomic(tmp_path / "manifest.json", {**manifest, "files": {}})  # only SHA256SUMS records runs.csv
    (tmp_path / "runs.csv").write_bytes(b"run_id\ny\n")
    with pytest.raises(CorruptError, match="runs.csv differs from its SHA256SUMS hash"):
        require_complete(tmp_path)


def test_read_json(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "m.json", {"b": 1, "a": (1, 2)})
    assert (tmp_path / "m.json").read_text() == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ]\n}\n'
    assert read_json(tmp_path / "m.json", "the manifest") == {"b": 1, "a": [1, 2]}
    (tmp_path / "bad.json").write_text('{"a": ')
    with pytest.raises(CorruptError, match="the manifest is not valid JSON") as err:
        read_json(tmp_path / "bad.json", "the manifest")
    assert isinstance(err.value, StoreError)
