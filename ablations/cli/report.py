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
    out: Annotated[Optional[Path], typer.Option(
        help="Output directory [default: report/<study name>, or report/<results directory name> when that differs "
             "from the study name (so another results directory never overwrites the study's default "
             "report)].")] = None,
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
        video, why = _best_run_video(results, out_dir)
        readme = build_report(results, out_dir, seed=seed, n_resamples=resamples, all_pairs=all_pairs,
                              threshold=threshold, untuned=untuned, random_scores=measured, video=video,
                              video_note=why)
    except (ReportError, ValueError) as exc:
        raise fail(exc) from None
    if out is None and out_dir.name != results.study:
        typer.echo(f"{results_dir} is not the study's default results directory: the report goes to {out_dir}, "
                   f"not report/{results.study}/")
    typer.echo(str(readme))


def _measure_random_scores(envs: list[str], episodes: int, seed: int) -> "pd.DataFrame":
    """The uniform-random policy's scores on `envs` (`study.random_scores`: it plays the episodes)."""
    from ..study.random_scores import random_scores_table

    return random_scores_table(envs, episodes, seed)


def _best_run_video(results: "Results", out_dir: Path) -> tuple[str | None, str | None]:
    """Record the best config's best seed (greedy policy, evaluation seed 0) at `report.build.VIDEO` under
    `out_dir` when the report embeds one (`records_video`) → (that relative path, None), or (None, why there is no
    video). A video is a nice-to-have: whatever recording raises (no writer, an env that cannot be made here or
    takes no `render_mode`, a broken policy file), the report is written and says why."""
    from ..evaluate.episodes import record_best_video
    from ..report.build import VIDEO, records_video

    if not records_video(results):
        return None, None
    try:
        path = record_best_video(results.path, out_dir / VIDEO, seed=0)
    except Exception as exc:  # noqa: BLE001 — any failure of the recorder costs the video, never the report
        return None, f"recording it failed ({type(exc).__name__}: {exc})"
    if path is None:
        return None, "no seed of the best config saved a policy"
    return VIDEO, None
