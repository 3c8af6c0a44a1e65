"""The `report` command: a results directory → tables, figures and a markdown report (registered by `cli.app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import fail


def report(
    results_dir: Annotated[Path, typer.Argument(help="A results directory (results/<study>).")],
    out: Annotated[Optional[Path], typer.Option(help="Output directory [default: report/<study name>].")] = None,
    seed: Annotated[Optional[int], typer.Option(
        min=0, help="Seed of every bootstrap [default: the manifest's study.report.seed, else 0].")] = None,
    resamples: Annotated[int, typer.Option(min=100, help="Bootstrap resamples per interval.")] = 10_000,
    all_pairs: Annotated[bool, typer.Option(
        "--all-pairs", help="Compare every pair of configs, not only each config vs the reference.")] = False,
    threshold: Annotated[Optional[float], typer.Option(
        help="Return threshold for 'env steps to threshold' [default: the manifest's study.report.threshold, "
             "else 475 for CartPole, else the 75th percentile of final returns].")] = None,
    untuned: Annotated[bool, typer.Option(
        "--untuned", help="A tuned study: also give the factor verdicts at each tuning candidate (the untuned "
                          "view, from the tuning runs).")] = False,
) -> None:
    """Turn a results directory into tables, figures and a markdown report (report/<study>/README.md)."""
    from ..report import ReportError, build_report

    try:
        readme = build_report(results_dir, out, seed=seed, n_resamples=resamples, all_pairs=all_pairs,
                              threshold=threshold, untuned=untuned)
    except (ReportError, ValueError) as exc:
        raise fail(exc) from None
    typer.echo(str(readme))
