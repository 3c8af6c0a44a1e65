"""Env steps/s per backend, as the engine steps them: `python benchmarks/env_backends.py [--envs 16 --seconds 2
--rounds 3 --ids LunarLander-v3 ...]`.

For every id and every backend that has it (`gymnasium`: the package's `GymnasiumCohortEnv`, i.e. gymnasium's
`make_vec` sync vector env or the id's own vector env; `native`; `envpool`: `EnvPoolCohortEnv`), one run of N
episodes with uniformly random actions is reset, stepped until its N episodes have all ended (the engine's update
pattern: frozen / autoreset episodes stepped along, resets counted in the time), and reset again; the rate is real
env steps (steps of episodes still running) per second of wall time. `envpool-raw` is a bare EnvPool pool of N envs
with one thread, stepped with autoreset and never reset by hand (EnvPool's own best case, every step counted).

Backends are measured interleaved (A B C A B C ...), `--rounds` slots of `--seconds` each, in one process with one
torch thread; the table gives each backend's median over its slots and its ratio to `gymnasium`. The machine may be
shared: compare ratios within one run, not rates across runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ablations.config import RunConfig
from ablations.envs.registry import describe, make_cohort_env

IDS = ["CartPole-v1", "Acrobot-v1", "LunarLander-v3", "Pendulum-v1", "HalfCheetah-v5", "Hopper-v5"]


def _random_actions(spec, rng: np.random.Generator, steps: int, n: int) -> list[torch.Tensor]:
    if spec.kind == "categorical":
        return [torch.from_numpy(rng.integers(0, spec.act_dim, size=(1, n))) for _ in range(steps)]
    low, high = np.array(spec.action_low, dtype=np.float32), np.array(spec.action_high, dtype=np.float32)
    return [torch.from_numpy(rng.uniform(low, high, size=(1, n, spec.act_dim)).astype(np.float32))
            for _ in range(steps)]


class CohortSlot:
    """One run of N episodes of a backend, stepped the engine's way; `run(seconds)` → env steps/s."""

    def __init__(self, env_id: str, backend: str, n: int, seed: int = 0):
        self.env = make_cohort_env([RunConfig(env_id=env_id, env_backend=backend)], num_envs=n)
        self.acts = _random_actions(self.env.spec, np.random.default_rng(seed), 1000, n)
        self.seed, self.n = seed, n

    def run(self, seconds: float) -> float:
        steps, start, runs = 0, time.perf_counter(), np.array([0])
        while time.perf_counter() - start < seconds:
            self.seed += 1
            self.env.reset(runs, np.array([self.seed]))
            alive, t = np.ones(self.n, dtype=bool), 0
            while alive.any():
                _, _, term, trunc = self.env.step(runs, self.acts[t % len(self.acts)])
                steps += int(alive.sum())
                alive &= ~(term | trunc).numpy()[0]
                t += 1
        return steps / (time.perf_counter() - start)


class RawEnvPoolSlot:
    """A bare EnvPool pool of N envs (one thread), autoreset, every step counted."""

    def __init__(self, env_id: str, n: int, seed: int = 0):
        from ablations.envs.envpool_backend import make_pool

        spec = describe(env_id)
        self.pool = make_pool(env_id, np.arange(seed, seed + n), spec.max_episode_steps)
        self.acts = [a[0].numpy() for a in _random_actions(spec, np.random.default_rng(seed), 1000, n)]
        self.pool.reset()
        self.n = n

    def run(self, seconds: float) -> float:
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for a in self.acts[:100]:
                self.pool.step(a)
            steps += 100 * self.n
        return steps / (time.perf_counter() - start)


def _backends(env_id: str) -> list[str]:
    from ablations.envs.envpool_backend import envpool_task, installed
    from ablations.envs.registry import native_available

    out = ["gymnasium"] + (["native"] if native_available(env_id) else [])
    if installed() and envpool_task(env_id) is not None:
        out += ["envpool", "envpool-raw"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--envs", type=int, default=16, help="episodes (sub-envs) per run")
    parser.add_argument("--seconds", type=float, default=2.0, help="wall time per slot")
    parser.add_argument("--rounds", type=int, default=3, help="slots per backend, interleaved")
    parser.add_argument("--ids", nargs="+", default=IDS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.envs} envs, single process, random actions, {args.rounds} interleaved slots of {args.seconds:g} s")
    print(f"| {'env':16} | {'backend':11} | {'env steps/s':>11} | {'× gymnasium':>11} | slots |")
    print(f"|{'-' * 18}|{'-' * 13}|{'-' * 13}:|{'-' * 13}:|{'-' * 7}|")
    for env_id in args.ids:
        try:
            describe(env_id)
        except Exception as exc:  # noqa: BLE001 - an id whose extra is missing is skipped, with the reason
            print(f"| {env_id:16} | skipped: {exc} |")
            continue
        backends = _backends(env_id)
        slots = {b: RawEnvPoolSlot(env_id, args.envs) if b == "envpool-raw" else CohortSlot(env_id, b, args.envs)
                 for b in backends}
        for slot in slots.values():
            slot.run(0.2)  # warm up
        rates: dict[str, list[float]] = {b: [] for b in backends}
        for _ in range(args.rounds):
            for b in backends:
                rates[b].append(slots[b].run(args.seconds))
        base = statistics.median(rates["gymnasium"])
        for b in backends:
            med = statistics.median(rates[b])
            print(f"| {env_id:16} | {b:11} | {med:11,.0f} | {med / base:10.2f}× | "
                  f"{' '.join(f'{r:,.0f}' for r in rates[b])} |")


if __name__ == "__main__":
    main()
