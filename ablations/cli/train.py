"""The `train` command: one configuration over several seeds, as one cohort per worker (registered by `cli.app`).
Thin: the runs train through the study driver (`study.driver.train_configs`), as `run`'s do."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.progress import Progress as RichProgress

from ..config import AXES, ConfigError, RunConfig
from ..study.progress import Progress
from .common import err, fail, parse_hidden, parse_seeds, progress_bar


def _check_out(out: Path) -> None:
    """Refuse an --out that is a file, already holds `train` results, or cannot be written (checked again under the
    lock: `_check_taken`)."""
    from ..study.store import ResultsDir
    from ..study.results_format import StoreError

    if out.exists() and not out.is_dir():
        raise fail(ConfigError(f"--out {out} exists and is not a directory; give --out a directory"))
    _check_taken(out)
    try:
        ResultsDir(out).check_writable()
    except StoreError as exc:
        raise fail(exc) from None


def _check_taken(out: Path) -> None:
    taken = [n for n in ("runs.csv", "curves.csv", "probes.csv", "policies") if (out / n).exists()]
    if taken:
        raise fail(ConfigError(f"--out {out} already holds results ({', '.join(taken)}); a second `train` would "
                               "replace them: choose another --out, or move the old results away"))


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """The lock `ablations run` takes (`ResultsDir.lock`): one writer per directory; a second `train` (or a `run`)
    on the same --out is refused with exit 3, as `run` refuses."""
    from ..study.results_format import StoreError
    from ..study.store import ResultsDir

    try:
        with ResultsDir(out).lock():
            _check_taken(out)  # again, now that no other writer can start
            yield
    except StoreError as exc:
        if "in use" not in str(exc):
            raise
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(code=3) from None


def _print_runs(runs: list[dict]) -> None:
    for r in runs:
        final, ev = (f"{x:8.1f}" if isinstance(x, (int, float)) else f"{'n/a':>8}"
                     for x in (r.get("final_return"), r.get("eval_return")))
        err.print(f"  {r['run_id']} seed={r['seed']:<3} {r['status']:<8} final_return={final} eval_return={ev}"
                  + (f"  {r['error']}" if r.get("error") else ""))


class _StepsBar(Progress):
    """The `train` progress bar as a driver display: the env steps the runs really take (a run's last update may pass
    its budget; a finished cohort counts its runs' recorded steps) and the rate."""

    def __init__(self, bar: RichProgress, total: int, start: float) -> None:
        super().__init__()
        self.bar, self.budget, self.start_time = bar, total, start
        self.task = bar.add_task("env steps", total=total, rate="")

    def refresh(self) -> None:
        taken = self.completed_steps
        if taken:
            self.bar.update(self.task, completed=min(taken, self.budget),
                            rate=f"{taken:,} steps, {taken / (time.perf_counter() - self.start_time):,.0f} steps/s")


def train(
    env: Annotated[str, typer.Option(help="A gymnasium environment id, or 'module:Env-v0' (imports the module "
                                          "first).")] = "CartPole-v1",
    import_: Annotated[Optional[list[str]], typer.Option(
        "--import", metavar="MODULE", help="Import MODULE first (it registers a custom env id; the current "
                                           "directory is importable); repeatable.")] = None,
    seeds: Annotated[str, typer.Option(help="Seeds: '0-7', '0,3,5' or '4'.")] = "0-7",
    returns: Annotated[str, typer.Option(help=f"Return signal: {' | '.join(AXES['returns'])} | rally.")] = "rtg",
    baseline: Annotated[str, typer.Option(help=f"Baseline: {' | '.join(AXES['baseline'])}.")] = "value",
    normalize: Annotated[str, typer.Option(help=f"Normalization: {' | '.join(AXES['normalize'])}.")] = "advantages",
    entropy_coef: Annotated[float, typer.Option(help="Entropy bonus β ≥ 0.")] = 0.0,
    aggregate: Annotated[str, typer.Option(help=f"Loss divisor: {' | '.join(AXES['aggregate'])} (episode: the "
                                           "Monte-Carlo gradient of J; step: the per-step mean).")] = "episode",
    optimizer: Annotated[str, typer.Option(
        help="Policy optimizer: adam | rmsprop | sgd (torch.optim's defaults).")] = "adam",
    steps: Annotated[int, typer.Option(help="Budget per run, in environment steps.")] = 100_000,
    episodes: Annotated[int, typer.Option(help="Episodes per update (N).")] = 8,
    gamma: Annotated[float, typer.Option(help="Discount γ.")] = 0.99,
    lr: Annotated[float, typer.Option(help="Policy learning rate (of --optimizer).")] = 3e-3,
    value_lr: Annotated[float, typer.Option(help="Value learning rate (Adam).")] = 3e-3,
    hidden: Annotated[str, typer.Option(help="Hidden layer sizes, e.g. '64-64'.")] = "64-64",
    activation: Annotated[str, typer.Option(help="tanh | relu.")] = "tanh",
    max_grad_norm: Annotated[Optional[float], typer.Option(help="Clip each run's policy gradient norm.")] = None,
    backend: Annotated[str, typer.Option("--env-backend", help="auto | native | gymnasium | envpool.")] = "auto",
    probe_every: Annotated[int, typer.Option(help="Gradient-variance probes every k updates (0 = off).")] = 0,
    eval_episodes: Annotated[int, typer.Option(help="Evaluation episodes at the end (0 = none).")] = 10,
    out: Annotated[Path, typer.Option(help="Output directory for runs.csv and curves.csv; must not hold results "
                                           "already.")] = Path("results/train"),
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes: the seeds are dealt round-robin "
                                                   "into one cohort per worker (rows are the same bits whatever the "
                                                   "split). [default: all cores, at most one per seed]")] = None,
) -> None:
    """Train one configuration over several seeds, one cohort per worker; write runs.csv, curves.csv (and
    probes.csv)."""
    from ..envs.registry import describe, resolve_backend
    from ..study.driver import deal, save_trained, train_configs
    from ..study.executors import make_executor

    imports, import_paths = list(import_ or []), [str(Path.cwd())] if import_ or ":" in env else []
    try:
        from ..envs.registry import import_modules

        import_modules(imports, import_paths)
        configs = [RunConfig(env_id=env, seed=s, returns=returns, baseline=baseline, normalize=normalize,  # type: ignore[arg-type]
                             aggregate=aggregate, optimizer=optimizer,  # type: ignore[arg-type]
                             entropy_coef=entropy_coef, total_steps=steps, episodes_per_update=episodes,
                             gamma=gamma, policy_lr=lr, value_lr=value_lr, hidden=parse_hidden(hidden),
                             activation=activation, max_grad_norm=max_grad_norm, env_backend=backend,  # type: ignore[arg-type]
                             probe_every=probe_every, eval_episodes=eval_episodes)
                   for s in parse_seeds(seeds)]
        describe(env, None)
        resolved = resolve_backend(configs[0])
    except ConfigError as exc:
        raise fail(exc) from None
    _check_out(out)
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(configs)))
    total = sum(c.total_steps for c in configs)
    err.print(f"training {len(configs)} runs of {env} ({resolved} backend) as {n_workers} cohort(s) on "
              f"{n_workers} worker(s), {steps:,} steps each")
    start = time.perf_counter()
    executor = make_executor("local", workers=n_workers, imports=imports, import_paths=import_paths)
    with _locked(out):
        with progress_bar() as bar:  # one cohort per worker (DESIGN invariant 1: a run's rows do not depend on it)
            res = train_configs(configs, executor, deal(configs, n_workers), _StepsBar(bar, total, start))
        save_trained(out, configs, res, imports=imports, import_paths=import_paths)
    wall = time.perf_counter() - start
    _print_runs(res.runs)
    steps = sum(r["env_steps"] or 0 for r in res.runs)
    err.print(f"wrote {out}/runs.csv, curves.csv, policies/ in {wall:.1f}s ({steps / wall:,.0f} env steps/s; "
              f"{steps:,} env steps for a budget of {total:,}: a run stops after the first update that reaches its "
              "budget)")
    if any(r["status"] != "done" for r in res.runs):
        raise typer.Exit(code=1)
