"""A synthetic results directory (runs.csv, curves.csv, probes.csv, timings.csv, manifest.json) with planted effects.

Used by the report tests (through conftest's `results_dir` factory) and by benchmarks/report_time.py.
Final returns: base + Σ planted main effects + planted interactions + N(0, noise) per seed; each curve rises
exponentially to its run's final level over the budget, with per-update noise.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

FACTORS_SMALL = {"returns": ["full", "rtg"], "baseline": ["none", "value"]}
FACTORS_FULL = {"returns": ["full", "rtg"], "baseline": ["none", "mean", "loo", "value"],
                "normalize": ["none", "returns", "advantages"], "entropy_coef": [0.0, 0.01]}
FIXED = dict(env_id="CartPole-v1", gamma=0.99, policy_lr=0.003, value_lr=0.003, value_iters=5, episodes_per_update=8,
             max_grad_norm=None, hidden="64-64", activation="tanh", env_backend="auto", preprocess=None,
             eval_episodes=10, eval_greedy=True, probe_batches=16)


def write_results(path: Path, *, factors: dict[str, list[Any]] | None = None, seeds: int = 6, updates: int = 20,
                  total_steps: int = 20_000, base: float = 150.0, noise: float = 20.0,
                  main: dict[tuple[str, Any], float] | None = None,
                  interaction: dict[tuple[tuple[str, Any], tuple[str, Any]], float] | None = None,
                  probe_every: int = 0, failed: int = 0, diverged: int = 0, rng_seed: int = 0,
                  name: str = "synthetic", manifest: bool = True, cap: float | None = 500.0,
                  effect: Callable[[dict[str, Any]], float] | None = None) -> Path:
    """Write a results directory at `path`; `main[(factor, level)]` adds to that level's true final return,
    `effect(config)` (a dict factor → level) adds any planted pattern (e.g. a three-way crossover)."""
    factors = FACTORS_SMALL if factors is None else factors
    main = {("returns", "rtg"): 80.0} if main is None else main
    interaction = interaction or {}
    rng = np.random.default_rng(rng_seed)
    path.mkdir(parents=True, exist_ok=True)
    names = list(factors)
    runs = []
    for levels in itertools.product(*factors.values()):
        cfg = dict(zip(names, levels))
        mu = base + sum(main.get((f, v), 0.0) for f, v in cfg.items())
        mu += sum(d for ((fa, a), (fb, b)), d in interaction.items() if cfg.get(fa) == a and cfg.get(fb) == b)
        mu += effect(cfg) if effect is not None else 0.0
        for s in range(seeds):
            runs.append({**cfg, "seed": s, "mu": mu, "run_id": f"r{len(runs):05d}"})
    df = pd.DataFrame(runs)
    n = len(df)
    final = df["mu"].to_numpy() + rng.normal(0, noise, n)
    if cap is not None:
        final = np.clip(final, 1.0, cap)
    status = np.array(["done"] * n, dtype=object)
    bad = rng.permutation(n)[: failed + diverged]
    status[bad[:failed]], status[bad[failed:]] = "failed", "diverged"
    steps_per = total_steps / updates
    u = np.arange(1, updates + 1)
    env_steps = np.rint(u[None, :] * steps_per + rng.integers(0, int(steps_per // 4) + 1, (n, updates))).astype(int)
    env_steps = np.maximum.accumulate(env_steps, axis=1)
    shape = 1 - np.exp(-4 * env_steps / total_steps)
    ret = final[:, None] * shape + rng.normal(0, noise / 2, (n, updates))
    if cap is not None:
        ret = np.clip(ret, 1.0, cap)
    keep = np.ones((n, updates), bool)
    keep[status == "failed", updates // 2:] = False  # failed runs stop half way
    curves = pd.DataFrame({
        "run_id": np.repeat(df["run_id"].to_numpy(), updates), "update": np.tile(u, n),
        "env_steps": env_steps.ravel(), "episodes": np.tile(u * 8, n), "return_mean": ret.ravel(),
        "return_std": np.abs(rng.normal(10, 2, n * updates)), "length_mean": ret.ravel(),
        "policy_loss": rng.normal(0, 1, n * updates),
        "value_loss": np.where(np.repeat(df.get("baseline", pd.Series(["none"] * n)).to_numpy() == "value", updates),
                               np.abs(rng.normal(5, 1, n * updates)), np.nan),
        "entropy": np.abs(rng.normal(0.6, 0.05, n * updates)), "grad_norm": np.abs(rng.normal(1, 0.2, n * updates)),
    })[keep.ravel()]
    runs_csv = df.drop(columns="mu").assign(
        study=name, status=status, error=np.where(status == "failed", "RuntimeError: synthetic failure", ""),
        env_steps=np.where(status == "failed", env_steps[:, updates // 2 - 1], env_steps[:, -1]),
        updates=np.where(status == "failed", updates // 2, updates), final_return=ret[:, -1],
        eval_return=np.where(status == "done", final + rng.normal(0, noise / 2, n), np.nan),
        total_steps=total_steps, probe_every=probe_every, **FIXED)
    runs_csv.loc[status == "diverged", ["final_return", "eval_return"]] = np.nan
    runs_csv.to_csv(path / "runs.csv", index=False)
    curves.to_csv(path / "curves.csv", index=False)
    pd.DataFrame({"run_id": df["run_id"], "wall_s": rng.uniform(5, 10, n).round(3)}).to_csv(path / "timings.csv",
                                                                                            index=False)
    if probe_every:
        _write_probes(path, df, env_steps, updates, probe_every, rng)
    if manifest:
        spec = {"study": {"name": name, "fixed": FIXED, "factors": factors, "seeds": seeds, "exclude": [],
                          "report": {"seed": 0}},
                "versions": {"ablations": "0.1.0", "torch": "2.5.0"}, "git_commit": "0" * 40, "host": "synthetic",
                "started": "2025-01-01T00:00:00", "finished": "2025-01-01T01:00:00", "wall_s": 3600.0}
        (path / "manifest.json").write_text(json.dumps(spec, indent=2))
    return path


def _write_probes(path: Path, df: pd.DataFrame, env_steps: np.ndarray, updates: int, every: int,
                  rng: np.random.Generator) -> None:
    """48 estimators (the full grid) probed at updates 0, every, 2·every, … for every run."""
    grid = list(itertools.product(*FACTORS_FULL.values()))
    base_var = np.array([100.0 * (0.4 if r == "rtg" else 1) * {"none": 1, "mean": 0.3, "loo": 0.3, "value": 0.2}[b]
                         * (0.5 if nz != "none" else 1) for r, b, nz, _ in grid])
    checkpoints = np.arange(0, updates + 1, every)
    n, e, c = len(df), len(grid), len(checkpoints)
    steps = np.concatenate([np.zeros((n, 1), int), env_steps], axis=1)[:, checkpoints]  # [n, c]
    run_level = rng.lognormal(0, 0.3, (n, 1, 1))
    decay = np.exp(-checkpoints / max(updates, 1))[None, :, None]
    total_var = base_var[None, None, :] * run_level * decay * rng.lognormal(0, 0.2, (n, c, e))
    shape = (n, c, e)
    est = np.array(["/".join(f"{v:g}" if isinstance(v, float) else v for v in g) for g in grid])
    trained = np.zeros(shape, bool)
    probes = pd.DataFrame({
        "run_id": np.repeat(df["run_id"].to_numpy(), c * e), "update": np.tile(np.repeat(checkpoints, e), n),
        "env_steps": np.repeat(steps.ravel(), e), "estimator": np.tile(est, n * c),
        "returns": np.tile([g[0] for g in grid], n * c), "baseline": np.tile([g[1] for g in grid], n * c),
        "normalize": np.tile([g[2] for g in grid], n * c), "entropy_coef": np.tile([g[3] for g in grid], n * c),
        "n_episodes": 8, "k_batches": 16, "total_var": total_var.ravel(),
        "mean_sq_norm": (total_var * 0.1).ravel(), "snr": (10.0 / total_var).ravel(),
        "cos_to_reference": rng.uniform(0.5, 1, shape).ravel(), "pairwise_cos": rng.uniform(0, 0.5, shape).ravel(),
        "bias_sq_norm": rng.uniform(0, 0.1, shape).ravel(), "is_trained_estimator": trained.ravel(),
    })
    probes.to_csv(path / "probes.csv", index=False)


def long_scores(seed: int = 0) -> pd.DataFrame:
    """Long-format scores of three configs a, b, c (10 runs each, N(100, 20)) on one metric."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"metric": "final_return", "config": np.repeat(["a", "b", "c"], 10),
                         "value": rng.normal(100, 20, 30)})
