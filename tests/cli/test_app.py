"""`ablations.cli.app`: the Typer app lists every command in `--help`, each command's own `--help` shows its
docstring, there is no `--version` option, and both entry points (`ablations.cli.entry:main`, `python -m ablations.cli`)
are this app."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ablations
from ablations.cli import entry
from ablations.cli.app import app
from ablations.cli.eval import eval as eval_command
from ablations.cli.export import export
from ablations.cli.publish import pack, reproduce
from ablations.cli.report import report
from ablations.cli.run import run, status
from ablations.cli.train import train

runner = CliRunner()

#: command name → the function it runs, in the order `--help` lists them
COMMANDS = {"train": train, "report": report, "run": run, "status": status, "pack": pack, "reproduce": reproduce,
            "eval": eval_command, "export": export}


def _listed(output: str) -> list[str]:
    """The command names of the "Commands:" section of a --help text."""
    lines = output.splitlines()
    start = lines.index("Commands:") + 1
    return [line.split()[0] for line in lines[start:] if line.startswith("  ") and line.strip()]


def test_help_lists_every_command_in_order():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0, res.output
    assert _listed(res.output) == list(COMMANDS)
    assert "Which policy-gradient design choices matter, and why" in res.output


def test_the_registered_commands_are_the_command_functions():
    registered = {(c.name or c.callback.__name__): c.callback for c in app.registered_commands}
    assert registered == COMMANDS


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_its_own_help(name):
    res = runner.invoke(app, [name, "--help"])
    assert res.exit_code == 0, res.output
    first = COMMANDS[name].__doc__.strip().splitlines()[0]
    assert res.output.splitlines()[0].startswith("Usage: ") and f" {name} [OPTIONS]" in res.output.splitlines()[0]
    assert " ".join(first.split()[:6]) in " ".join(res.output.split())


def test_no_arguments_shows_the_help():
    res = runner.invoke(app, [])
    assert "Commands:" in res.output and _listed(res.output) == list(COMMANDS)


def test_there_is_no_version_option():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 2 and "No such option: --version" in res.output
    assert ablations.__version__ == "0.1.0"  # the version lives in the package (and pyproject.toml) only


def test_an_unknown_command_exits_2_without_a_traceback():
    res = runner.invoke(app, ["fly"])
    assert res.exit_code == 2 and "No such command 'fly'" in res.output
    assert "Traceback" not in res.output


def test_entry_points_are_this_app(monkeypatch, capsys):
    """The console script (pyproject's [project.scripts]) runs `entry.main`, which runs this app; so does
    `python -m ablations.cli`."""
    root = Path(__file__).resolve().parents[2]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"ablations": "ablations.cli.entry:main"}
    monkeypatch.setattr(sys, "argv", ["ablations", "--help"])
    with pytest.raises(SystemExit) as done:
        entry.main()
    assert done.value.code == 0 and _listed(capsys.readouterr().out) == list(COMMANDS)
    env = {**os.environ, "PYTHONPATH": str(root)}
    res = subprocess.run([sys.executable, "-m", "ablations.cli", "--help"], capture_output=True, text=True, env=env,
                         cwd=root, timeout=120)
    assert res.returncode == 0, res.stderr
    assert _listed(res.stdout) == list(COMMANDS)


def test_the_cli_starts_without_scipy():
    """Every command pays for the CLI's imports before it starts (scipy ~1 s on the 2-core machine); scipy is
    imported by the commands that compute with it, not by `import ablations.cli`."""
    code = "import sys, ablations.cli\nprint(any(m.split('.')[0] == 'scipy' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("script_import, cli_loaded", [("from ablations.cli.entry import main", False),
                                                       ("from ablations.cli.app import app", True)])
def test_a_spawned_worker_re_imports_the_entry_module_only(tmp_path, script_import, cli_loaded):
    """A process started by multiprocessing's spawn method (the study's local workers) re-imports its parent's main
    module. With the console script's import (`entry`), the worker loads neither typer nor pandas before it is given
    work; importing the app at the script's top (the second case, the old entry point) would load both in every
    worker."""
    script = tmp_path / "console_script.py"
    script.write_text(f"""import multiprocessing as mp
import sys
{script_import}


def loaded(q):
    q.put(sorted({{m.split(".")[0] for m in sys.modules}} & {{"typer", "rich", "pandas", "scipy", "torch"}}))


if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=loaded, args=(q,))
    p.start()
    print(q.get())
    p.join()
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=120)
    got = out.stdout.strip().splitlines()[-1]
    assert (got != "[]") == cli_loaded, got
