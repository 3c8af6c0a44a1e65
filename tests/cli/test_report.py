"""The `ablations report` command, once the lead registers it in ablations/cli/app.py (skipped until then)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ablations.cli import app


def _has_report() -> bool:
    return "report" in getattr(get_command(app), "commands", {})


pytestmark = pytest.mark.skipif(not _has_report(), reason="`report` is not registered in ablations.cli yet")


def test_report_command(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = make_results()
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", str(results), "--out", str(out), "--seed", "1", "--resamples", "1000",
                                   "--threshold", "150"])
    assert res.exit_code == 0, res.output
    assert (out / "README.md").exists() and "README.md" in res.output


def test_report_command_error_names_file(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = make_results()
    (results / "runs.csv").unlink()
    res = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "runs.csv" in res.output
