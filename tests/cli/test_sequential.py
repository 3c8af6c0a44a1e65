"""`ablations run` and `ablations status` of a sequential study (`[sequential]`): the dry run's minimum and
maximum cost and the wave to train, the waves run until the rule stops (a real, tiny CartPole study through the
CLI), the decisions printed, `status` showing the waves, and `--retry-failed` refused."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from ablations.cli.run import standalone_app
from ablations.cli.sequential import cost, print_plan
from ablations.study.design import parse_study
from ablations.study.stages import plan_study

runner = CliRunner()
app = standalone_app()

TINY = """
name = "tiny_seq"
seeds = 6
[fixed]
env_id = "CartPole-v1"
total_steps = 600
hidden = [8]
eval_episodes = 0
[factors]
baseline = ["none", "value"]
[sequential]
min = 3
step = 3
families = ["configs"]
[report]
reference = { baseline = "none" }
margin = 1000.0
"""


def _rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


def test_dry_run_shows_the_rule_the_cost_bounds_and_the_first_wave(tmp_path: Path):
    study = parse_study({"name": "seq", "seeds": 20, "fixed": {"total_steps": 400},
                         "factors": {"baseline": ["none", "mean", "value"], "entropy_coef": [0.0, 0.01]},
                         "sequential": {"min": 5, "step": 5}}, where="seq.toml")
    assert cost(study, 5) == (30, 12_000) and cost(study, 20) == (120, 48_000)
    buf = io.StringIO()
    print_plan(Console(file=buf, width=250, color_system=None), plan_study(study, tmp_path / "out", workers=1))
    text = buf.getvalue()
    assert ("seq: sequential, 6 configs; seeds added in waves of 5 from 5 to 20 a config (looks at 5, 10, 15, 20 "
            "seeds); decided on final_return: main (3 contrasts)") in text
    assert ("cost: at least 30 runs and 12,000 env steps (every contrast decided at the first look), at most 120 "
            "runs and 48,000 env steps (every config at every seed: the fixed design)") in text
    assert _rows(text) == [["1", "5", "6", "30", "12,000", "no"]]
    assert "to train now: 30 runs in 1 cohort(s), 12,000 env steps" in text and "nothing written" in text
    assert not (tmp_path / "out").exists()


def test_run_trains_waves_until_the_rule_stops_and_status_shows_them(tmp_path: Path):
    """A margin of 1000 makes value vs none equivalent at the first look: one wave, 6 of the 12 runs."""
    path = tmp_path / "tiny_seq.toml"
    path.write_text(TINY)
    out = tmp_path / "out"
    dry = runner.invoke(app, ["run", str(path), "--out", str(out), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "at least 6 runs and 3,600 env steps" in dry.output and "at most 12 runs and 7,200" in dry.output
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "tiny_seq wave 1: 6 runs, 6 to train" in result.output
    assert "stopped: every contrast is decided" in result.output
    assert "value vs none" in result.output and "equivalent" in result.output
    status = runner.invoke(app, ["status", str(out)])
    assert status.exit_code == 0, status.output
    assert "done 6, diverged 0, failed 0, pending 0 (of 6)" in status.output
    assert _rows(status.output) == [["1", "3", "2", "6", "3,600", "yes"]]
    assert "stopped: every contrast is decided" in status.output and "equivalent 1" in status.output
    again = runner.invoke(app, ["run", str(path), "--out", str(out), "--retry-failed"])
    assert again.exit_code == 2 and "--retry-failed is refused for a sequential study" in again.output
