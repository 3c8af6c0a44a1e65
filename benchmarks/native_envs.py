"""Micro-benchmark of the native classic-control envs: `python benchmarks/native_envs.py [--runs 128 --envs 8 64]`.

Prints µs per `step` (all runs, every episode live; every other run) and `reset` cost (one run alone; all R runs in one
call, per run), with one torch thread, as a worker runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ablations.envs.native import NATIVE_ENVS


def _per_call(fn, min_time: float = 0.1, repeats: int = 5) -> float:
    """µs per call: the best of `repeats` timings of at least `min_time` s each (the machine may be shared)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time:
            fn()
            n += 1
        best = min(best, elapsed / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=128)
    parser.add_argument("--envs", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--ids", nargs="+", default=["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    R = args.runs
    print(f"{'env':16} {'R×N':>9} {'step all µs':>12} {'step R/2 µs':>12} {'reset 1 run µs':>13} "
          f"{'reset R: µs/run':>13}")
    for env_id in args.ids:
        for N in args.envs:
            env = NATIVE_ENVS[env_id](R, N)
            spec, runs, half = env.spec, np.arange(R), np.arange(0, R, 2)
            rng = np.random.default_rng(0)
            if spec.kind == "categorical":
                acts = torch.from_numpy(rng.integers(0, spec.act_dim, size=(R, N)))
            else:
                acts = torch.from_numpy(rng.uniform(-1, 1, size=(R, N, spec.act_dim)).astype(np.float32))
            seeds = rng.integers(0, 2**32, size=R)

            env.reset(runs, seeds)
            start = env._s.copy()

            def step_all():  # every episode live, from a typical state (the worst case: nothing frozen)
                env._s[...] = start
                env._lv[...] = True
                env.step(runs, acts)

            def restore():
                env._s[...] = start
                env._lv[...] = True

            t_all = _per_call(step_all) - _per_call(restore)
            env.reset(runs, seeds)
            t_half = _per_call(lambda: env.step(half, acts[half]))
            t_reset1 = _per_call(lambda: env.reset(runs[:1], seeds[:1]))
            t_reset = _per_call(lambda: env.reset(runs, seeds)) / R
            print(f"{env_id:16} {f'{R}×{N}':>9} {t_all:12.1f} {t_half:12.1f} {t_reset1:13.1f} {t_reset:13.1f}")


if __name__ == "__main__":
    main()
