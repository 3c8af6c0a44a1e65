"""The `ablations` command line (a Typer app), one thin module per command group: parse, build configs, call the
library; `app` is the console entry point."""

from ablations.cli.app import app

__all__ = ["app"]
