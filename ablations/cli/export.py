"""The `export` command: a results directory's learning curves → TensorBoard event files and/or W&B offline runs
(registered by `cli.app`). Thin: `report.export` writes them; a missing optional package is an error naming the extra
to install (exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from .common import fail


def _fail(exc: Exception) -> typer.Exit:
    """`common.fail` with the message printed as written (it names extras in brackets: `ablations[tensorboard]`)."""
    return fail(RuntimeError(escape(str(exc))))


def export(
    results_dir: Annotated[Path, typer.Argument(help="A results directory (results/<study>).")],
    tensorboard: Annotated[Optional[Path], typer.Option(
        help="Write TensorBoard event files here: one run a subdirectory named by its config and seed, the "
             "per-update scalars against env steps, the run's config as hparams (needs the `tensorboard` extra).")
    ] = None,
    wandb: Annotated[Optional[Path], typer.Option(
        help="Write Weights & Biases offline runs here (`wandb sync` uploads them; needs the `wandb` extra).")
    ] = None,
    project: Annotated[Optional[str], typer.Option(help="The W&B project [default: the study's name].")] = None,
) -> None:
    """Export the learning curves of a results directory to TensorBoard (and/or W&B offline runs)."""
    from ..report import ReportError
    from ..report.export import ExportError, export_tensorboard, export_wandb
    from ..report.load import load_results

    if tensorboard is None and wandb is None:
        raise _fail(ExportError("nothing to export to: give --tensorboard DIR and/or --wandb DIR"))
    try:
        results = load_results(results_dir)
        if tensorboard is not None:
            dirs = export_tensorboard(results, tensorboard)
            typer.echo(f"{len(dirs)} runs → {tensorboard} (view: tensorboard --logdir {tensorboard})")
        if wandb is not None:
            names = export_wandb(results, wandb, project=project)
            typer.echo(f"{len(names)} offline W&B runs → {wandb} (upload: wandb sync {wandb}/wandb/offline-run-*)")
    except (ReportError, ExportError) as exc:
        raise _fail(exc) from None
