"""`ablations eval RESULTS_DIR --run RUN_ID [--episodes K] [--video PATH] [--seed S] [--obs X ...] [--trace]`: a
saved policy, evaluated; optionally its action distribution at given observations and along one episode.

A plain Typer command function (registered on the app in `ablations.cli.app`): parse, call `ablations.evaluate`, print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import ConfigError


def _resolve_run(results_dir: Path, run: str) -> Path:
    """The policy file of `run`: an exact run id, or a unique prefix of one."""
    from ..evaluate.policy_io import policy_path

    exact = policy_path(results_dir, run)
    if exact.is_file():
        return exact
    folder = exact.parent
    matches = sorted(folder.glob(f"{run}*.pt")) if folder.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if not folder.is_dir():
        raise typer.BadParameter(f"{results_dir} has no saved policies (no {folder}); training saves them for "
                                 "studies of at most 100 runs", param_hint="RESULTS_DIR")
    if not matches:
        known = ", ".join(p.stem for p in sorted(folder.glob("*.pt"))[:10])
        raise typer.BadParameter(f"no saved policy for run {run!r} in {folder} (saved: {known or 'none'}...)",
                                 param_hint="--run")
    raise typer.BadParameter(f"run {run!r} is ambiguous: {[p.stem for p in matches]}", param_hint="--run")


#: Most steps `--trace` prints (the rest of a longer episode is summarized in one line).
MAX_TRACE_ROWS = 200


def _parse_obs(texts: list[str]) -> list[list[float]]:
    """'0.1,-0.2,0,0' (commas or spaces) → [0.1, -0.2, 0.0, 0.0] per --obs."""
    out = []
    for text in texts:
        try:
            out.append([float(x) for x in text.replace(",", " ").split()])
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not an observation; allowed: numbers separated by commas, e.g. "
                                     "'0.1,-0.2,0,0'", param_hint="--obs") from None
    return out


def _table(df) -> str:
    return df.to_string(index=False, float_format=lambda x: f"{x:.4g}")


def eval(  # noqa: A001 - the command is called `eval`
    results_dir: Annotated[Path, typer.Argument(metavar="RESULTS_DIR",
                                                help="A study's results directory (results/<study>).")],
    run: Annotated[str, typer.Option("--run", help="The run id (or a unique prefix) whose policy to evaluate.")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per mode (stochastic and greedy).")] = 10,
    video: Annotated[Path | None, typer.Option(help="Also record one episode: .gif (Pillow) or .mp4 (ffmpeg).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the evaluation episodes and the video.")] = 0,
    obs: Annotated[list[str] | None, typer.Option(
        "--obs", metavar="X1,X2,...", help="Print the policy's action distribution at this observation (after the "
                                            "run's preprocessor); repeatable.")] = None,
    trace: Annotated[bool, typer.Option(
        "--trace", help=f"Print the action distribution, action and reward at every step of one stochastic episode "
                        f"(seeded by --seed; at most {MAX_TRACE_ROWS} steps shown).")] = False,
) -> None:
    """Evaluate a saved policy: mean ± std return over K episodes, stochastic and greedy; optionally a video, and the
    policy's action probabilities (Categorical, Bernoulli) or mean and std (Gaussian) at given observations or along
    an episode."""
    # torch: only when used
    from ..evaluate.distribution import along_episode, at_observations
    from ..evaluate.episodes import VideoError, check_video_writer, evaluate_policy, record_episode
    from ..evaluate.policy_io import PolicyFileError, load_policy

    if video is not None:
        try:
            check_video_writer(video)  # a bad --video is bad input: before any work, exit 2
        except VideoError as exc:
            raise typer.BadParameter(str(exc), param_hint="--video") from None
    observations = _parse_obs(obs or [])
    path = _resolve_run(results_dir, run)
    try:
        config, params = load_policy(path)
        if observations:  # a wrong size is bad input: before the episodes
            try:
                at_obs = at_observations(config, params, observations)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--obs") from None
        result = evaluate_policy(config, params, episodes, seed)
        typer.echo(result.summary())
        if observations:
            typer.echo("action distribution at the given observations:")
            typer.echo(_table(at_obs))
        if trace:
            steps = along_episode(config, params, seed=seed)
            typer.echo(f"one stochastic episode (seed {seed}): {len(steps)} steps, return "
                       f"{steps['reward'].sum():.2f}")
            typer.echo(_table(steps.head(MAX_TRACE_ROWS)))
            if len(steps) > MAX_TRACE_ROWS:
                typer.echo(f"... {len(steps) - MAX_TRACE_ROWS} more steps")
        if video is not None:
            info = record_episode(config, params, video, seed=seed)
            typer.echo(f"video: {info.path} ({info.frames} frames = 1 after reset + {info.length} steps, "
                       f"greedy policy, return {info.episode_return:.2f})")
    except (PolicyFileError, ConfigError) as exc:  # an unreadable policy file or an env this machine cannot make
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except (VideoError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
