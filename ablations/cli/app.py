"""The `ablations` command line: parse, build configs, call the library. No logic lives here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import AXES, ConfigError, RunConfig

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Which policy-gradient design choices matter, and why: seeded REINFORCE ablations.")
err = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Seeded REINFORCE ablation grids, gradient-variance probes and statistical reports."""


def parse_seeds(text: str) -> list[int]:
    """'0-7' → 0..7; '0,3,5' → [0, 3, 5]; '4' → [4]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ConfigError(f"seeds={text!r} is invalid; allowed: a range '0-7', a list '0,3,5' or one seed '4'") from None
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"seeds={text!r} is invalid; allowed: distinct non-negative integers")
    return seeds


def parse_hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.replace("x", "-").replace(",", "-").split("-"))
    except ValueError:
        raise ConfigError(f"hidden={text!r} is invalid; allowed: layer sizes like '64-64'") from None
    return sizes


def fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=2)


def progress_bar(console: Console | None = None) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console or err)


@app.command()
def train(
    env: Annotated[str, typer.Option(help="A gymnasium environment id.")] = "CartPole-v1",
    seeds: Annotated[str, typer.Option(help="Seeds: '0-7', '0,3,5' or '4'.")] = "0-7",
    returns: Annotated[str, typer.Option(help=f"Return signal: {' | '.join(AXES['returns'])}.")] = "rtg",
    baseline: Annotated[str, typer.Option(help=f"Baseline: {' | '.join(AXES['baseline'])}.")] = "value",
    normalize: Annotated[str, typer.Option(help=f"Normalization: {' | '.join(AXES['normalize'])}.")] = "advantages",
    entropy_coef: Annotated[float, typer.Option(help="Entropy bonus β ≥ 0.")] = 0.0,
    steps: Annotated[int, typer.Option(help="Budget per run, in environment steps.")] = 100_000,
    episodes: Annotated[int, typer.Option(help="Episodes per update (N).")] = 8,
    gamma: Annotated[float, typer.Option(help="Discount γ.")] = 0.99,
    lr: Annotated[float, typer.Option(help="Policy learning rate (Adam).")] = 3e-3,
    value_lr: Annotated[float, typer.Option(help="Value learning rate (Adam).")] = 3e-3,
    hidden: Annotated[str, typer.Option(help="Hidden layer sizes, e.g. '64-64'.")] = "64-64",
    activation: Annotated[str, typer.Option(help="tanh | relu.")] = "tanh",
    max_grad_norm: Annotated[Optional[float], typer.Option(help="Clip each run's policy gradient norm.")] = None,
    backend: Annotated[str, typer.Option("--env-backend", help="auto | native | gymnasium.")] = "auto",
    probe_every: Annotated[int, typer.Option(help="Gradient-variance probes every k updates (0 = off).")] = 0,
    eval_episodes: Annotated[int, typer.Option(help="Evaluation episodes at the end (0 = none).")] = 10,
    out: Annotated[Path, typer.Option(help="Output directory for runs.csv and curves.csv.")] = Path("results/train"),
) -> None:
    """Train one configuration over several seeds, as one cohort; write runs.csv, curves.csv (and probes.csv)."""
    from ..study import store
    from ..train.engine import train_cohort
    from ..envs.registry import describe, resolve_backend
    from ..study.executors import configure_worker

    try:
        configs = [RunConfig(env_id=env, seed=s, returns=returns, baseline=baseline, normalize=normalize,  # type: ignore[arg-type]
                             entropy_coef=entropy_coef, total_steps=steps, episodes_per_update=episodes,
                             gamma=gamma, policy_lr=lr, value_lr=value_lr, hidden=parse_hidden(hidden),
                             activation=activation, max_grad_norm=max_grad_norm, env_backend=backend,  # type: ignore[arg-type]
                             probe_every=probe_every, eval_episodes=eval_episodes)
                   for s in parse_seeds(seeds)]
        describe(env, None)
        resolved = resolve_backend(configs[0])
    except ConfigError as exc:
        raise fail(exc)
    if out.exists() and not out.is_dir():
        raise fail(ConfigError(f"out={str(out)!r} exists and is not a directory"))
    configure_worker()
    total = sum(c.total_steps for c in configs)
    err.print(f"training {len(configs)} runs of {env} ({resolved} backend) as one cohort, {steps:,} steps each")
    start = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("env steps", total=total, rate="")

        def on_update(n: int) -> None:
            done = bar.tasks[0].completed + n
            bar.update(task, completed=min(done, total), rate=f"{done / (time.perf_counter() - start):,.0f} steps/s")

        res = train_cohort(configs, on_update=on_update)
    out.mkdir(parents=True, exist_ok=True)
    store.write_csv_atomic(out / "runs.csv", store.frame(res.runs))
    store.write_csv_atomic(out / "curves.csv", store.frame(res.curves))
    if res.probes:
        store.write_csv_atomic(out / "probes.csv", store.frame(res.probes))
    from ..evaluate.policy_io import policy_path, save_policy

    for cfg in configs:
        save_policy(policy_path(out, cfg.run_id), cfg, res.policies[cfg.run_id])
    wall = time.perf_counter() - start
    for r in res.runs:
        err.print(f"  {r['run_id']} seed={r['seed']:<3} {r['status']:<8} final_return={r['final_return']:8.1f} "
                  f"eval_return={r['eval_return']:8.1f}")
    err.print(f"wrote {out}/runs.csv, curves.csv, policies/ in {wall:.1f}s "
              f"({sum(r['env_steps'] for r in res.runs) / wall:,.0f} env steps/s)")
    if any(r["status"] != "done" for r in res.runs):
        raise typer.Exit(code=1)


@app.command()
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
) -> None:
    """Turn a results directory into tables, figures and a markdown report (report/<study>/README.md)."""
    from ..report import ReportError, build_report

    try:
        readme = build_report(results_dir, out, seed=seed, n_resamples=resamples, all_pairs=all_pairs,
                              threshold=threshold)
    except (ReportError, ValueError) as exc:
        raise fail(exc) from None
    typer.echo(str(readme))


from .eval import eval as eval_command  # noqa: E402 - the other commands live in their own modules
from .publish import pack, reproduce  # noqa: E402
from .run import run, status  # noqa: E402

app.command()(run)
app.command()(status)
app.command()(pack)
app.command()(reproduce)
app.command(name="eval")(eval_command)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m ablations.cli.app`
    main()
