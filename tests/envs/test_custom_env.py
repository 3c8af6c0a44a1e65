"""The custom-env example, end to end: studies/linewalk.toml (its env module beside it) → run → report → eval, and
`train --import` / `module:Env-v0` ids."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ablations.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_linewalk_study_runs_reports_and_evaluates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository: the study's folder must be importable by itself
    out, rep = tmp_path / "res", tmp_path / "rep"
    res = runner.invoke(app, ["run", str(ROOT / "studies" / "linewalk.toml"), "--out", str(out), "--workers", "2",
                              "--set", "total_steps=1500"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", str(out), "--out", str(rep), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    readme = (rep / "README.md").read_text()
    assert "LineWalk-v0" in readme and (rep / "tables").is_dir()
    run_id = sorted((out / "policies").glob("*.pt"))[0].stem
    res = runner.invoke(app, ["eval", str(out), "--run", run_id[:8], "--episodes", "2"])
    assert res.exit_code == 0 and "greedy" in res.output, res.output


def test_train_with_import_and_module_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "studies")  # the current directory is importable for --import
    for i, args in enumerate((["--import", "linewalk_env", "--env", "LineWalk-v0"],
                              ["--env", "linewalk_env:LineWalk-v0"])):
        out = tmp_path / f"t{i}"
        res = runner.invoke(app, ["train", *args, "--seeds", "0-1", "--steps", "300", "--hidden", "8",
                                  "--eval-episodes", "2", "--out", str(out)])
        assert res.exit_code == 0, res.output
        run_id = sorted((out / "policies").glob("*.pt"))[0].stem
        monkeypatch.chdir(tmp_path)
        res = runner.invoke(app, ["eval", str(out), "--run", run_id, "--episodes", "2"])
        assert res.exit_code == 0, res.output
        monkeypatch.chdir(ROOT / "studies")
