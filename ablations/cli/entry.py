"""The console entry point (`ablations = "ablations.cli.entry:main"`): imports the Typer app only when called.

multiprocessing's spawn start method makes each worker re-import the parent's main module. The console script
imports this module at its top, so a worker re-imports only this module and never runs `main`. If the script
imported the app instead, every worker would first import the whole CLI (typer, rich, pandas and every command's
module; about 1 s on the 2-core machine) before training."""

from __future__ import annotations


def main() -> None:
    """Run the `ablations` command line on `sys.argv`."""
    from .app import app

    app()
