"""Pong's training throughput (env steps/s) and where the time goes: ALE, preprocessing, the network.

Trains a short cohort of `studies/pong.toml`'s tutorial config (rally returns, RMSprop) through the engine, in this
process or in several at once (`--procs 2`: the 2-core rate, one worker per core as `ablations run` uses them), and
times the phases by wrapping them:

- `ale`: ale_py's `AtariEnv.step`/`reset` (emulation of 4 frames per agent step, the RGB screen copy);
- `preprocess`: the 'pong' preprocessor (`PongFrameDifference.observation`: crop, downsample, binarize, difference);
- `env other`: the rest of the cohort env's step (gymnasium's wrappers and SyncVectorEnv, stacking, float32);
- `policy forward`: the rollout's batched forward pass (one [R, N, 6400] × [R, 6400, 200] per step);
- `update`: the whole update (forward and backward over the batch's steps, estimators, clipping, the optimizer);
- `buffers`: the rollout's buffers (`Collector._flush`, `_relayout`, `take`: every step's 6400 inputs kept for the
  update, int8: 6.4 KB per sub-env step, ~65 MB per run for 10 games of a random policy; `--obs-dtype float32`
  stores them as float32 as the engine did before, 4× that, for comparison: the trained bits are the same);
- `setup`: making the cohort (10 ALE instances per run, the network);
- `other`: the remaining wall time (action noise and sampling, bookkeeping).

    python benchmarks/pong_throughput.py                       # 1 worker, 1 run of 10 sub-envs
    python benchmarks/pong_throughput.py --procs 2             # 2 workers at once: the machine's 2-core rate
    python benchmarks/pong_throughput.py --runs 2 --steps 20000 --episodes 10
    python benchmarks/pong_throughput.py --procs 2 --obs-dtype float32   # the frames stored as float32

The machine's cores may be shared with other work: compare the shares (one process) rather than absolute rates
across invocations.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort_phases import timed

STUDY = Path(__file__).resolve().parents[1] / "studies" / "pong.toml"
PHASES = ["ale", "preprocess", "env other", "policy forward", "update", "buffers", "setup", "other"]


def profile(steps: int, runs: int, episodes: int, seed: int, obs_dtype: str = "int8") -> dict[str, float]:
    """Train `runs` runs of the tutorial config for `steps` env steps each → wall, env steps and phase seconds.

    obs_dtype: the frames' dtype in the rollout's buffers (the env's `int8`, or `float32` as before)."""
    import dataclasses

    import ale_py.env

    from ablations.envs.preprocess import PongFrameDifference
    from ablations.envs.registry import GymnasiumCohortEnv
    from ablations.study.design import expand, load_study
    from ablations.study.executors import configure_worker
    from ablations.train import engine, rollout

    configure_worker()  # one torch thread, the allocator settings of a study's workers
    torch.set_num_threads(1)
    configs = expand(load_study(STUDY))
    cfg = next(c for c in configs if c.returns == "rally" and c.optimizer == "rmsprop")
    if obs_dtype != "int8":  # the engine describes the env once per cohort: hand it a spec with the other dtype
        describe = engine.describe
        engine.describe = lambda *a: dataclasses.replace(describe(*a), obs_dtype=obs_dtype)
    cohort = [cfg.replace(seed=seed + r, total_steps=steps, episodes_per_update=episodes, eval_episodes=0)
              for r in range(runs)]
    t: dict[str, float] = collections.defaultdict(float)
    for name in ("step", "reset"):
        timed(ale_py.env.AtariEnv, name, "ale", t)
        timed(GymnasiumCohortEnv, name, "env", t)
    timed(PongFrameDifference, "observation", "preprocess", t)
    timed(rollout, "forward_stacked", "policy forward", t)  # the rollout's binding only; the update has its own
    timed(engine.Trainer, "_apply", "update", t)
    timed(engine.Trainer, "__init__", "setup", t)
    for name in ("_flush", "_relayout", "take"):
        timed(rollout.Collector, name, "buffers", t)
    start = time.perf_counter()
    res = engine.train_cohort(cohort)
    wall = time.perf_counter() - start
    env_steps = sum(r["env_steps"] for r in res.runs)
    t["env other"] = t["env"] - t["ale"] - t["preprocess"]
    t["other"] = wall - t["env"] - t["policy forward"] - t["update"] - t["buffers"] - t["setup"]
    return {"wall": wall, "env_steps": env_steps, "updates": sum(r["updates"] for r in res.runs), **t}


def _profile(args: tuple[int, int, int, int, str]) -> dict[str, float]:
    return profile(*args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6000, help="env steps per run (at least; a run ends on an update)")
    ap.add_argument("--runs", type=int, default=1, help="runs per cohort (per process)")
    ap.add_argument("--episodes", type=int, default=10, help="episodes per update (the tutorial's 10)")
    ap.add_argument("--procs", type=int, default=1, help="processes training at once (one per core)")
    ap.add_argument("--obs-dtype", choices=["int8", "float32"], default="int8",
                    help="the frames' dtype in the rollout's buffers (float32: as before int8 storage; same bits)")
    args = ap.parse_args()
    jobs = [(args.steps, args.runs, args.episodes, 100 * p, args.obs_dtype) for p in range(args.procs)]
    if args.procs == 1:
        results = [profile(*jobs[0])]
    else:
        with mp.get_context("spawn").Pool(args.procs) as pool:
            results = pool.map(_profile, jobs)
    print(f"Pong (ALE/Pong-v5, 'pong' preprocessor, 6400-200-1 policy, rally returns, RMSprop): {args.procs} "
          f"process(es) × {args.runs} run(s) × {args.episodes} sub-envs, ≥ {args.steps} env steps per run, "
          f"frames stored as {args.obs_dtype}")
    for p, r in enumerate(results):
        print(f"\nprocess {p}: {r['env_steps']} env steps, {r['updates']} updates in {r['wall']:.1f} s = "
              f"{r['env_steps'] / r['wall']:.0f} env steps/s")
        print(f"  {'phase':<15} {'s':>8} {'share':>7} {'µs/step':>9}")
        for ph in PHASES:
            print(f"  {ph:<15} {r[ph]:>8.2f} {r[ph] / r['wall']:>7.1%} {r[ph] / r['env_steps'] * 1e6:>9.0f}")
    total = sum(r["env_steps"] for r in results)
    wall = max(r["wall"] for r in results)
    print(f"\nall processes: {total} env steps in {wall:.1f} s = {total / wall:.0f} env steps/s")
    steady = [r["env_steps"] / (r["wall"] - r["setup"]) for r in results]  # without making the envs: a long run's
    rate = sum(steady)
    print(f"without setup (a long run's rate): {rate:.0f} env steps/s")
    per_run = rate / len(results) / args.runs
    print(f"one run trains at {per_run:.0f} env steps/s: 1M env steps in {1e6 / per_run / 3600:.2f} h, "
          f"pong.toml's 20M in {20e6 / per_run / 3600:.1f} h per run; in 2 hours the machine trains "
          f"{rate * 7200 / 1e6:.1f}M env steps in all")


if __name__ == "__main__":
    main()
