"""A tuned study end to end through the CLI (`run --dry-run`, `run`, `status`, `report --untuned`): a shrunken copy
of studies/cartpole_tuned.toml on the real engine; the report shows the chosen values and the sensitivity curves,
analyses the evaluation (stage-2) runs only, and states the protocol in Methods."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.study.tuning import CHOICE_FILE, TUNE_DIR

ROOT = Path(__file__).resolve().parents[2]
SHRINK = ["--set", "total_steps=1500", "--set", "hidden=[8]", "--set", "eval_episodes=0"]
runner = CliRunner()


def test_tuned_study_end_to_end(tmp_path: Path) -> None:
    study = tmp_path / "cartpole_tuned.toml"
    study.write_text((ROOT / "studies" / "cartpole_tuned.toml").read_text().replace("seeds = 3", "seeds = 2"))
    out, rep = tmp_path / "results", tmp_path / "report"
    dry = runner.invoke(app, ["run", str(study), "--out", str(out), "--dry-run", *SHRINK])
    assert dry.exit_code == 0, dry.output
    assert "stage 1 (tuning): 32 runs, 32 to train, 48,000 env steps" in dry.output
    assert "stage 2 (evaluation): 20 runs, known after stage 1, ≤ 30,000 env steps" in dry.output
    assert not out.exists()
    res = runner.invoke(app, ["run", str(study), "--out", str(out), "--workers", "1", *SHRINK])
    assert res.exit_code == 0, res.output
    assert "stage 1 (tuning): done 32" in res.output and "stage 2 (evaluation): done 20" in res.output
    status = runner.invoke(app, ["status", str(out)])
    assert status.exit_code == 0, status.output
    assert "stage 1 (tuning)" in status.output and "stage 2 (evaluation): study cartpole_tuned" in status.output
    again = runner.invoke(app, ["run", str(study), "--out", str(out), "--dry-run", *SHRINK])
    assert "stage 2 (evaluation): 20 runs, 0 to train" in again.output  # stage 1 complete: stage 2 is known

    made = runner.invoke(app, ["report", str(out), "--out", str(rep), "--resamples", "200", "--untuned"])
    assert made.exit_code == 0, made.output
    text = (rep / "README.md").read_text()
    assert "## Tuning" in text and "figures/tune_sensitivity.png" in text and (rep / "figures" /
                                                                                "tune_sensitivity.png").exists()
    assert "Untuned view: verdicts at each candidate" in text and "**Tuning (two stages).**" in text
    assert "10000, 10001" in text and "(0–4)" in text
    choice = pd.read_csv(rep / "tables" / "tune_choice.csv")
    recorded = pd.read_csv(out / CHOICE_FILE)
    assert len(choice) == 4 and len(recorded) == 16
    assert list(choice["chosen"].astype(str)) == [f"{v:g}" for v in recorded.loc[recorded["chosen"], "policy_lr"]]
    sens = pd.read_csv(rep / "tables" / "tune_sensitivity.csv")
    assert len(sens) == 16 and (sens["n"] == 2).all() and (sens["ci_low"] <= sens["mean"]).all()
    # the analysis sees the evaluation runs only
    scores = pd.read_csv(rep / "tables" / "scores.csv")
    assert set(scores["seed"]) == {0, 1, 2, 3, 4} and len(scores) == 20
    untuned = pd.read_csv(rep / "tables" / "untuned_verdicts.csv")
    assert set(untuned["candidate"].astype(str)) == {"0.01", "0.03", "0.1", "0.3"}
    # the untuned view as a factorial report of stage 1: the candidate is a factor level
    stage1 = runner.invoke(app, ["report", str(out / TUNE_DIR), "--out", str(tmp_path / "untuned"),
                                 "--resamples", "200"])
    assert stage1.exit_code == 0, stage1.output
    assert "policy_lr" in pd.read_csv(tmp_path / "untuned" / "tables" / "verdicts.csv")["factor"].tolist()


def test_edge_fields_by_hand() -> None:
    from ablations.report.tuning import edge_fields

    cands = {"policy_lr": [1e-3, 3e-3, 1e-2], "hidden": [[8], [16]]}
    assert edge_fields({"policy_lr": "0.001", "hidden": "8"}, cands) == "policy_lr=min"
    assert edge_fields({"policy_lr": "0.01", "hidden": "8"}, cands) == "policy_lr=max"
    assert edge_fields({"policy_lr": "0.003", "hidden": "16"}, cands) == ""  # inside; a list field is not ordered
