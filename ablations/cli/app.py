"""The `ablations` command line: parse, build configs, call the library. No logic lives here.

The Typer app and its commands, each defined in its own module (`train`, `report`, `run`, `status`, `pack`,
`reproduce`, `eval`)."""

from __future__ import annotations

import typer

from .eval import eval as eval_command
from .export import export
from .publish import pack, reproduce
from .report import report
from .run import run, status
from .train import train

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Which policy-gradient design choices matter, and why: seeded REINFORCE ablations.")


@app.callback()
def _root() -> None:
    """Seeded REINFORCE ablation grids, gradient-variance probes and statistical reports."""


app.command()(train)
app.command()(report)
app.command()(run)
app.command()(status)
app.command()(pack)
app.command()(reproduce)
app.command(name="eval")(eval_command)
app.command()(export)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m ablations.cli.app`
    main()
