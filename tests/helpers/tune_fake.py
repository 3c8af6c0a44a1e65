"""A fast fake `train_cohort` for tuned studies (no torch), importable by spawned workers.

Each run's curve is flat at a planted score plus a little per-run noise: with baseline "none" the best policy_lr is
1e-2, with baseline "mean" it is 1e-3 (the planted case: the best candidate differs between configs). Setting
`INTERRUPT_AFTER = k` makes the (k+1)-th call raise KeyboardInterrupt, as a Ctrl-C in the middle of a study would.
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable, Sequence

from ablations.config import RunConfig

from tests.helpers.failing_env import FakeResult

BEST_LR = {"none": 1e-2, "mean": 1e-3}
INTERRUPT_AFTER: int | None = None
CALLS = 0


def planted_score(cfg: RunConfig) -> float:
    """The expected return of a config: 100 at its baseline's best lr, 30 less per decade away from it."""
    return 100.0 - 30.0 * abs(math.log10(cfg.policy_lr) - math.log10(BEST_LR[cfg.baseline]))


def _noise(run_id: str) -> float:
    return int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16) / 2**32 - 0.5


def train_cohort(configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None) -> FakeResult:
    global CALLS
    CALLS += 1
    if INTERRUPT_AFTER is not None and CALLS > INTERRUPT_AFTER:
        raise KeyboardInterrupt
    res = FakeResult([], [])
    for cfg in configs:
        value = planted_score(cfg) + _noise(cfg.run_id)
        for u in range(4):
            res.curves.append({"run_id": cfg.run_id, "update": u, "env_steps": (u + 1) * cfg.total_steps // 4,
                               "return_mean": value, "return_std": 1.0, "episodes": 8, "length_mean": value,
                               "policy_loss": 0.0, "value_loss": None, "entropy": 0.5, "grad_norm": 1.0})
        res.runs.append({"run_id": cfg.run_id, "status": "done", "error": "", "env_steps": cfg.total_steps,
                         "updates": 4, "final_return": value, "eval_return": None, **cfg.to_dict()})
        res.wall_s[cfg.run_id] = 0.001
    return res
