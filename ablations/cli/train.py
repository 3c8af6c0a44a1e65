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
    """One line per run: its final return and both evaluation returns (`eval_return` is the stochastic or the greedy
    one, as `eval_greedy` says; both are printed)."""
    for r in runs:
        final, stoch, greedy = (f"{x:8.1f}" if isinstance(x, (int, float)) else f"{'n/a':>8}"
                                for x in (r.get("final_return"), r.get("eval_return_stochastic"),
                                          r.get("eval_return_greedy")))
        err.print(f"  {r['run_id']} seed={r['seed']:<3} {r['status']:<8} final_return={final} "
                  f"eval_return stochastic={stoch} greedy={greedy}"
                  + (f"  {r['error']}" if r.get("error") else ""))


def _floats(name: str, text: str | None) -> tuple[float, ...] | None:
    """'0,-2.94' → (0.0, -2.94); None stays None."""
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.replace(",", " ").split())
    except ValueError:
        raise ConfigError(f"{name}={text!r} is invalid; allowed: numbers separated by commas, e.g. '0,-2.94'") from None


def _layers(name: str, text: str | None) -> tuple[int, ...] | None:
    """'64-64' → (64, 64); '' / 'none' / 'linear' → () (no hidden layer); None stays None."""
    if text is None:
        return None
    if text.strip().lower() in ("", "none", "linear"):
        return ()
    try:
        return parse_hidden(text)
    except ConfigError:
        raise ConfigError(f"{name}={text!r} is invalid; allowed: layer sizes like '64-64', or 'linear' (none)"
                          ) from None


class _StepsBar(Progress):
    """The `train` progress bar as a driver display: the env steps the runs really take (a run's last update may pass
    its budget; a finished cohort counts its runs' recorded steps) and the rate."""

    def __init__(self, bar: RichProgress, total: int | None, start: float) -> None:
        super().__init__()
        self.bar, self.budget, self.start_time = bar, total, start  # total None: an episode budget (no step total)
        self.task = bar.add_task("env steps", total=total, rate="")

    def refresh(self) -> None:
        taken = self.completed_steps
        if taken:
            self.bar.update(self.task, completed=taken if self.budget is None else min(taken, self.budget),
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
    steps: Annotated[Optional[int], typer.Option(help="Budget per run, in environment steps (total_steps). "
                                                 "[default: 100000 unless --total-episodes]")] = None,
    total_episodes: Annotated[Optional[int], typer.Option(
        help="Budget per run in episodes instead (total_episodes; a multiple of --episodes).")] = None,
    episodes: Annotated[int, typer.Option(help="Episodes per update (N).")] = 8,
    gamma: Annotated[float, typer.Option(help="Discount γ.")] = 0.99,
    lr: Annotated[float, typer.Option(help="Policy learning rate (of --optimizer).")] = 3e-3,
    value_lr: Annotated[float, typer.Option(help="Value learning rate (of --value-optimizer).")] = 3e-3,
    value_optimizer: Annotated[str, typer.Option(help="The critic's optimizer: adam | rmsprop | sgd.")] = "adam",
    hidden: Annotated[str, typer.Option(help="Hidden layer sizes, e.g. '64-64'; 'linear' for none (a linear "
                                             "policy).")] = "64-64",
    value_hidden: Annotated[Optional[str], typer.Option(
        help="The critic's hidden layers ('linear' for none). [default: --hidden]")] = None,
    init_logits: Annotated[Optional[str], typer.Option(
        help="Initial policy (Categorical / Bernoulli): the output layer's bias, its weights 0, e.g. '0,-2.94'.")
    ] = None,
    init_log_std: Annotated[Optional[str], typer.Option(
        help="Initial policy (Gaussian): the log-std per action dimension (mean 0), e.g. '-0.5'.")] = None,
    activation: Annotated[str, typer.Option(help="tanh | relu.")] = "tanh",
    max_grad_norm: Annotated[Optional[float], typer.Option(help="Clip each run's policy gradient norm.")] = None,
    backend: Annotated[str, typer.Option("--env-backend", help="auto | native | gymnasium | envpool.")] = "auto",
    probe_every: Annotated[int, typer.Option(help="Gradient-variance probes every k updates (0 = off).")] = 0,
    eval_episodes: Annotated[int, typer.Option(help="Evaluation episodes at the end (0 = none).")] = 10,
    eval_greedy: Annotated[bool, typer.Option(
        "--eval-greedy/--no-eval-greedy", help="Which evaluation return is eval_return: the greedy policy's "
        "(argmax / mean action) or the stochastic one's (the objective REINFORCE maximizes); both are measured.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Output directory for runs.csv and curves.csv; must not hold results "
                                           "already.")] = Path("results/train"),
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes: the seeds are dealt round-robin "
                                                   "into one cohort per worker (rows are the same bits whatever the "
                                                   "split). [default: all cores, at most one per seed]")] = None,
) -> None:
    """Train one configuration over several seeds, one cohort per worker; write runs.csv, curves.csv (and
    probes.csv)."""
    from ..envs.registry import check_policy_init, describe, resolve_backend
    from ..study.driver import deal, save_trained, train_configs
    from ..study.executors import make_executor

    imports, import_paths = list(import_ or []), [str(Path.cwd())] if import_ or ":" in env else []
    try:
        from ..envs.registry import import_modules

        import_modules(imports, import_paths)
        if steps is not None and total_episodes is not None:
            raise ConfigError(f"--steps {steps} (total_steps) and --total-episodes {total_episodes} (total_episodes) "
                              "are both set; allowed: one of them (the budget in env steps or in episodes)")
        configs = [RunConfig(env_id=env, seed=s, returns=returns, baseline=baseline, normalize=normalize,  # type: ignore[arg-type]
                             aggregate=aggregate, optimizer=optimizer,  # type: ignore[arg-type]
                             entropy_coef=entropy_coef, total_steps=steps, total_episodes=total_episodes,
                             episodes_per_update=episodes, gamma=gamma, policy_lr=lr, value_lr=value_lr,
                             value_optimizer=value_optimizer, hidden=_layers("hidden", hidden),  # type: ignore[arg-type]
                             value_hidden=_layers("value_hidden", value_hidden),
                             init_logits=_floats("init_logits", init_logits),
                             init_log_std=_floats("init_log_std", init_log_std),
                             activation=activation, max_grad_norm=max_grad_norm, env_backend=backend,  # type: ignore[arg-type]
                             probe_every=probe_every, eval_episodes=eval_episodes, eval_greedy=eval_greedy)
                   for s in parse_seeds(seeds)]
        check_policy_init(configs[0], describe(env, None))
        resolved = resolve_backend(configs[0])
    except ConfigError as exc:
        raise fail(exc) from None
    _check_out(out)
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(configs)))
    budget, unit = configs[0].budget
    by_steps = unit == "env_steps"
    total = sum(c.planned_steps for c in configs)
    err.print(f"training {len(configs)} runs of {env} ({resolved} backend) as {n_workers} cohort(s) on "
              f"{n_workers} worker(s), {budget:,} {'steps' if by_steps else 'episodes'} each")
    start = time.perf_counter()
    executor = make_executor("local", workers=n_workers, imports=imports, import_paths=import_paths)
    with _locked(out):
        with progress_bar() as bar:  # one cohort per worker (DESIGN invariant 1: a run's rows do not depend on it)
            display = _StepsBar(bar, total if by_steps else None, start)  # episodes: steps unknown in advance
            res = train_configs(configs, executor, deal(configs, n_workers), display)
        save_trained(out, configs, res, imports=imports, import_paths=import_paths)
    wall = time.perf_counter() - start
    _print_runs(res.runs)
    taken = sum(r["env_steps"] or 0 for r in res.runs)
    budget_text = (f"{taken:,} env steps for a budget of {total:,}: a run stops after the first update that reaches "
                   "its budget" if by_steps else
                   f"{taken:,} env steps in {budget:,} episodes per run: a run stops after the update that completes "
                   "its budget's episodes")
    err.print(f"wrote {out}/runs.csv, curves.csv, policies/ in {wall:.1f}s ({taken / wall:,.0f} env steps/s; "
              f"{budget_text})")
    if any(r["status"] != "done" for r in res.runs):
        raise typer.Exit(code=1)
