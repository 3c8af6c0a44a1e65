"""The `train` command: one configuration over several seeds, trained as one cohort (registered by `cli.app`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import AXES, ConfigError, RunConfig
from .common import err, fail, parse_hidden, parse_seeds, progress_bar


def _check_writable(out: Path) -> None:
    from ..study.store import ResultsDir, StoreError

    try:
        ResultsDir(out).check_writable()
    except StoreError as exc:
        raise fail(exc) from None


def train(
    env: Annotated[str, typer.Option(help="A gymnasium environment id, or 'module:Env-v0' (imports the module "
                                          "first).")] = "CartPole-v1",
    import_: Annotated[Optional[list[str]], typer.Option(
        "--import", metavar="MODULE", help="Import MODULE first (it registers a custom env id; the current "
                                           "directory is importable); repeatable.")] = None,
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
    out: Annotated[Path, typer.Option(help="Output directory for runs.csv and curves.csv; must not hold results "
                                           "already.")] = Path("results/train"),
) -> None:
    """Train one configuration over several seeds, as one cohort; write runs.csv, curves.csv (and probes.csv)."""
    from ..study import store
    from ..train.engine import train_cohort
    from ..envs.registry import describe, resolve_backend
    from ..study.executors import configure_worker

    imports, import_paths = list(import_ or []), [str(Path.cwd())] if import_ or ":" in env else []
    try:
        from ..envs.registry import import_modules

        import_modules(imports, import_paths)
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
        raise fail(ConfigError(f"--out {out} exists and is not a directory; give --out a directory"))
    taken = [n for n in ("runs.csv", "curves.csv", "probes.csv", "policies") if (out / n).exists()]
    if taken:
        raise fail(ConfigError(f"--out {out} already holds results ({', '.join(taken)}); a second `train` would "
                               "replace them: choose another --out, or move the old results away"))
    _check_writable(out)
    configure_worker()
    total = sum(c.total_steps for c in configs)
    err.print(f"training {len(configs)} runs of {env} ({resolved} backend) as one cohort, {steps:,} steps each")
    start = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("env steps", total=total, rate="")

        taken_steps = 0

        def on_update(n: int) -> None:  # the bar counts real steps (a run's last update may pass its budget)
            nonlocal taken_steps
            taken_steps += n
            bar.update(task, completed=min(taken_steps, total),
                       rate=f"{taken_steps:,} steps, {taken_steps / (time.perf_counter() - start):,.0f} steps/s")

        res = train_cohort(configs, on_update=on_update)
    out.mkdir(parents=True, exist_ok=True)
    store.write_csv_atomic(out / "runs.csv", store.frame(res.runs))
    store.write_csv_atomic(out / "curves.csv", store.frame(res.curves))
    if res.probes:
        store.write_csv_atomic(out / "probes.csv", store.frame(res.probes))
    from ..evaluate.policy_io import policy_path, save_policy

    for cfg in configs:
        save_policy(policy_path(out, cfg.run_id), cfg, res.policies[cfg.run_id], imports=imports,
                    import_paths=import_paths)
    wall = time.perf_counter() - start
    for r in res.runs:
        err.print(f"  {r['run_id']} seed={r['seed']:<3} {r['status']:<8} final_return={r['final_return']:8.1f} "
                  f"eval_return={r['eval_return']:8.1f}")
    steps = sum(r["env_steps"] or 0 for r in res.runs)
    err.print(f"wrote {out}/runs.csv, curves.csv, policies/ in {wall:.1f}s ({steps / wall:,.0f} env steps/s; "
              f"{steps:,} env steps for a budget of {total:,}: a run stops after the first update that reaches its "
              "budget)")
    if any(r["status"] != "done" for r in res.runs):
        raise typer.Exit(code=1)
