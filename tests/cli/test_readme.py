"""README examples are executable: every TOML example trains (tiny budget via --set), every `ablations` command in
the shell examples parses against the real CLI, and the defaults table matches `RunConfig`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.config import RunConfig

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
TOML = re.findall(r"```toml\n(.*?)```", README, re.S)
SHELL = [line for block in re.findall(r"```bash\n(.*?)```", README, re.S)
         for line in block.replace("\\\n", " ").splitlines()]
COMMANDS = [shlex.split(line.split("#")[0]) for line in SHELL if line.strip().startswith("ablations ")]


def test_the_readme_has_examples():
    assert TOML and len(COMMANDS) >= 8


@pytest.mark.parametrize("text", TOML)
def test_every_toml_example_trains(tmp_path, text):
    path = tmp_path / "example.toml"
    path.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--workers", "1",
                                   "--set", "total_steps=200", "--set", "eval_episodes=1", "--set", "hidden=[4]",
                                   "--set", "probe_batches=2"])
    assert res.exit_code == 0, res.output
    assert "pending 0" in res.output


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_every_shell_command_parses(argv):
    group = typer.main.get_command(app)
    sub = group.get_command(click.Context(group), argv[1])
    assert sub is not None, f"README names an unknown command: {argv[1]}"
    try:
        sub.make_context(argv[1], argv[2:])
    except click.exceptions.Exit:
        pass
    except click.UsageError as exc:
        pytest.fail(f"README command {' '.join(argv)!r} does not parse: {exc}")


def test_the_defaults_table_matches_runconfig():
    table = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)`", README.split("<!-- defaults:")[1], re.M)[:5])
    default = RunConfig()
    assert table == {k: str(getattr(default, k)) for k in table}
    assert set(table) == {"returns", "baseline", "normalize", "entropy_coef", "probe_every"}
