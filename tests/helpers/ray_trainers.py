"""Trainers for the Ray cluster tests (importable by Ray workers: `trainer="tests.helpers.ray_trainers:<name>"`).

Each wraps the real `ablations.study.worker:train_cohort`, so rows are the engine's own, bit for bit. Behaviour is
steered by files in the folder named by the environment variable `ABLATIONS_RAY_TEST_DIR` (set before the cluster
starts, so every worker inherits it):

* `die_once`: the first attempt at a cohort creates `died-<cohort>` and kills its own worker process (`os._exit`),
  as a crashed or OOM-killed worker would; the retry trains normally.
* `slow`: sleeps `ABLATIONS_RAY_TEST_SLEEP` seconds (default 2) before training, so tests can act while tasks are in
  flight.
* `fake_instant`: no torch, no env: rows computed from each config alone, at once (driver-scaling benchmark).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ablations.config import RunConfig

MARKERS_ENV = "ABLATIONS_RAY_TEST_DIR"
SLEEP_ENV = "ABLATIONS_RAY_TEST_SLEEP"


def _engine(configs: Sequence[RunConfig], on_update: Callable[[int], None] | None) -> Any:
    from ablations.study.worker import train_cohort

    return train_cohort(configs, on_update=on_update)


def _key(configs: Sequence[RunConfig]) -> str:
    return hashlib.sha256("/".join(c.run_id for c in configs).encode()).hexdigest()[:16]


def die_once(configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None) -> Any:
    marker = Path(os.environ[MARKERS_ENV]) / f"died-{_key(configs)}"
    if not marker.exists():
        marker.write_text(f"{os.getpid()}\n")
        os._exit(17)  # the worker process dies mid-task, without cleanup
    return _engine(configs, on_update)


def slow(configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None) -> Any:
    time.sleep(float(os.environ.get(SLEEP_ENV, "2")))
    return _engine(configs, on_update)


class _Rows:
    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.curves: list[dict[str, Any]] = []
        self.probes: list[dict[str, Any]] = []
        self.wall_s: dict[str, float] = {}


def fake_instant(configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None) -> Any:
    res = _Rows()
    for cfg in configs:
        h = int(hashlib.sha256(cfg.run_id.encode()).hexdigest()[:8], 16) / 2**32
        for u in range(3):
            res.curves.append({"run_id": cfg.run_id, "update": u, "env_steps": (u + 1) * cfg.total_steps // 3,
                               "episodes": 4, "return_mean": h * (u + 1), "return_std": h / 3,
                               "length_mean": 20.0 + u, "policy_loss": -h, "value_loss": None, "entropy": 0.69,
                               "grad_norm": 1.0 + h})
        res.runs.append({"run_id": cfg.run_id, "status": "done", "error": "", "env_steps": cfg.total_steps,
                         "updates": 3, "final_return": 3 * h, "eval_return": None, **cfg.to_dict()})
        res.wall_s[cfg.run_id] = 0.0
        if on_update is not None:
            on_update(cfg.total_steps)
    return res
