"""The `report` command: a results directory → tables, figures and a markdown report (registered by `cli.app`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .common import fail

if TYPE_CHECKING:
    import pandas as pd

    from ..report.load import Results


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
    from ..report import ReportError, build_report, load_results
    from ..report.across import random_scores_request
    from ..report.build import report_dir

    try:
        results = load_results(results_dir)
        out_dir = report_dir(results, out)
        request = random_scores_request(results)  # a multi-env study without random_scores.csv: measure it here
        measured = _measure_random_scores(*request) if request else None
        readme = build_report(results, out_dir, seed=seed, n_resamples=resamples, all_pairs=all_pairs,
                              threshold=threshold, untuned=untuned, random_scores=measured,
                              video=_best_run_video(results, out_dir))
    except (ReportError, ValueError) as exc:
        raise fail(exc) from None
    typer.echo(str(readme))


def _measure_random_scores(envs: list[str], episodes: int, seed: int) -> "pd.DataFrame":
    """The uniform-random policy's scores on `envs` (`study.random_scores`: it plays the episodes)."""
    from ..study.random_scores import random_scores_table

    return random_scores_table(envs, episodes, seed)


def _best_run_video(results: "Results", out_dir: Path) -> str | None:
    """Record the best config's best seed (greedy policy, evaluation seed 0) at `report.build.VIDEO` under
    `out_dir` when the report embeds one (`records_video`) → that relative path, or None (no saved policy, no
    writer, or an env that cannot be made here)."""
    from ..evaluate.episodes import VideoError, record_best_video
    from ..report.build import VIDEO, records_video

    if not records_video(results):
        return None
    try:
        path = record_best_video(results.path, out_dir / VIDEO, seed=0)
    except VideoError:
        return None
    return None if path is None else VIDEO
