"""A fast fake `train_cohort` for sequential studies (no torch), importable by spawned workers.

A run's final return is a planted config mean + a seed effect shared by every config of that seed (common random
numbers) + the run's own normal noise (SD 10), both drawn from streams keyed by the seed / the run id, so a run's
rows depend on its config alone. Planted: `baseline = "value"` adds +100 (decided at once), `entropy_coef = 0.01`
−4 (small: it takes many seeds, if any), `normalize` nothing. `INTERRUPT_AFTER = k` makes the (k+1)-th call raise
KeyboardInterrupt, as a Ctrl-C in the middle of a study would.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np

from ablations.config import RunConfig

from tests.helpers.failing_env import FakeResult

INTERRUPT_AFTER: int | None = None
CALLS = 0
NOISE_SD = 10.0


def planted_mean(cfg: RunConfig) -> float:
    """The config's expected final return."""
    return 100.0 + 100.0 * (cfg.baseline == "value") - 400.0 * cfg.entropy_coef


def _stream(key: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(key.encode()).hexdigest()[:16], 16))


def final_return(cfg: RunConfig) -> float:
    seed_effect = 30.0 * _stream(f"seed/{cfg.seed}").standard_normal()
    return float(planted_mean(cfg) + seed_effect + NOISE_SD * _stream(cfg.run_id).standard_normal())


def train_cohort(configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None) -> FakeResult:
    global CALLS
    CALLS += 1
    if INTERRUPT_AFTER is not None and CALLS > INTERRUPT_AFTER:
        raise KeyboardInterrupt
    res = FakeResult([], [])
    for cfg in configs:
        value = final_return(cfg)
        for u in range(4):
            res.curves.append({"run_id": cfg.run_id, "update": u, "env_steps": (u + 1) * cfg.total_steps // 4,
                               "return_mean": value, "return_std": 1.0, "episodes": 8, "length_mean": 20.0,
                               "policy_loss": 0.0, "value_loss": None, "entropy": 0.5, "grad_norm": 1.0})
            if on_update is not None:
                on_update(cfg.total_steps // 4)
        res.runs.append({"run_id": cfg.run_id, "status": "done", "error": "", "env_steps": cfg.total_steps,
                         "updates": 4, "final_return": value, "eval_return": None, **cfg.to_dict()})
        res.wall_s[cfg.run_id] = 0.001
    return res
