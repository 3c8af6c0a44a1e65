"""The probes' checkpoint driver: `probe_checkpoint`, the engine's probe hook (`ablations.train.cohort.ProbeHook`),
and `run_probe`, one run's probes.csv rows from its checkpoint.

The engine collects each probed run's pool of K×N complete episodes from the run's own `probes` stream (env seed and
action noise; the `env`/`actions` streams are never touched, so probes on or off leave training bit-identical) at
frozen copies of its checkpoint parameters, in an environment of its own, and hands it over through a read-only
`CohortView`. Everything here reads that view only: a probe never changes the trainer's state.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..train import estimators as est
from ..train.cohort import Checkpoint, CohortView
from .directions import pool_directions
from .rows import probe_rows


def probe_checkpoint(view: CohortView, runs: Sequence[int], update: int) -> list[dict[str, Any]]:
    """probes.csv rows of `runs` (cohort positions, each with a checkpoint in `view.checkpoints`) at checkpoint
    `update`, run by run in `runs` order. The probe hook the study's worker gives the engine."""
    rows: list[dict[str, Any]] = []
    for r in runs:
        rows.extend(run_probe(view, r, view.checkpoints[r], update))
    return rows


def run_probe(view: CohortView, r: int, cp: Checkpoint, update: int) -> list[dict[str, Any]]:
    """probes.csv rows of run r (cohort position) from its checkpoint `cp` (pool [1, K·N, T], frozen policy and
    critic). Draws the cross-fitted critic's random layer from the run's probes stream, after the pool's seed and
    action noise."""
    cfg = view.configs[r]
    gamma = torch.tensor([cfg.gamma], dtype=cp.pool.rewards.dtype)
    rtg = est.reward_to_go(cp.pool.rewards, cp.pool.mask, gamma)  # elementwise recursion: exact for any padding
    dirs = pool_directions(cfg, view.head, view.activation, cp.policy, cp.value, cp.pool, cfg.probe_batches,
                           cp.stream, rtg)
    return probe_rows(cfg, update, cp.env_steps, dirs)
