"""Test helpers importable by spawned workers: an environment that raises, and a fast fake `train_cohort`.

* ``AblationsFail-v0`` is CartPole whose ``step`` raises for some runs: a sub-env is doomed when the seed of its first
  reset falls in one block of 1024 out of 4 (each run's first reset seed comes from its own stream, so some runs of a
  cohort fail and others don't, deterministically). Set ``ABLATIONS_FAILENV_OFF=1`` to make it behave (for retries).
* ``fake_train_cohort`` returns rows computed from each config alone (no torch), raising when a config has
  ``gamma == 0.5`` and reporting "diverged" for ``gamma == 0.25``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from ablations.config import RunConfig

FAIL_ENV_ID = "AblationsFail-v0"


class FailEnv(CartPoleEnv):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._first_seed: int | None = None
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if self._first_seed is None and seed is not None:
            self._first_seed = int(seed)
        return super().reset(seed=seed, options=options)

    def step(self, action: Any):
        self._steps += 1
        doomed = self._first_seed is not None and (self._first_seed // 1024) % 4 == 0
        if doomed and self._steps > 5 and not os.environ.get("ABLATIONS_FAILENV_OFF"):
            raise RuntimeError(f"FailEnv exploded (first seed {self._first_seed})")
        return super().step(action)


if FAIL_ENV_ID not in gym.registry:
    gym.register(FAIL_ENV_ID, entry_point=FailEnv, max_episode_steps=200)


@dataclass
class FakeResult:
    runs: list[dict[str, Any]]
    curves: list[dict[str, Any]]
    probes: list[dict[str, Any]] = field(default_factory=list)
    wall_s: dict[str, float] = field(default_factory=dict)


def _noise(run_id: str, i: int) -> float:
    return int(hashlib.sha256(f"{run_id}/{i}".encode()).hexdigest()[:8], 16) / 2**32


def fake_train_cohort(configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None) -> FakeResult:
    if any(c.gamma == 0.5 for c in configs):
        bad = next(c for c in configs if c.gamma == 0.5)
        raise ValueError(f"fake failure for gamma=0.5 in run {bad.run_id}")
    res = FakeResult([], [])
    for cfg in configs:
        updates = 3
        for u in range(updates):
            res.curves.append({"run_id": cfg.run_id, "update": u, "env_steps": (u + 1) * cfg.total_steps // updates,
                               "return_mean": _noise(cfg.run_id, u) * 100 / 3, "return_std": 1 / 3,
                               "policy_loss": -_noise(cfg.run_id, -u), "value_loss": None})
            if on_update is not None:
                on_update(cfg.total_steps // updates)
        if cfg.probe_every:
            res.probes.append({"run_id": cfg.run_id, "update": 0, "estimator": "x", "snr": _noise(cfg.run_id, 99)})
        status = "diverged" if cfg.gamma == 0.25 else "done"
        res.runs.append({"run_id": cfg.run_id, "status": status, "error": "nan" if status == "diverged" else "",
                         "env_steps": cfg.total_steps, "updates": updates,
                         "final_return": float("nan") if status == "diverged" else _noise(cfg.run_id, 7),
                         "eval_return": 1e-17 * _noise(cfg.run_id, 8), **cfg.to_dict()})
        res.wall_s[cfg.run_id] = 0.001
    return res
