"""The state of a cohort in training (`CohortState`, `RunState`) and what a probe hook may read of it (`CohortView`,
`Checkpoint`, the `ProbeHook` signature).

The engine builds and updates the state; a probe hook (`ablations.probes.checkpoint.probe_checkpoint`, wired in by
`ablations.study.worker`) is handed a read-only `CohortView` at each checkpoint, so the probes never see, keep or
change the trainer's state, and `train` never imports `probes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from torch import Tensor

from ..config import RunConfig
from ..envs.spec import CohortEnv, EnvSpec
from .nets import Head, Params
from .rollout import Batch
from .seeding import RunStreams


@dataclass
class RunState:
    """Book-keeping of one run of the cohort."""

    config: RunConfig
    streams: RunStreams
    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    status: str = "running"
    error: str = ""
    curves: list[dict[str, Any]] = field(default_factory=list)
    eval_return: float = math.nan  # the mode `eval_greedy` picks: one of the two below
    eval_return_greedy: float = math.nan
    eval_return_stochastic: float = math.nan


@dataclass
class CohortState:
    """The trainer's state of one cohort: its envs, stacked networks and per-run state (the engine's alone)."""

    configs: list[RunConfig]
    spec: EnvSpec
    head: Head
    env: CohortEnv
    policy: Params
    value: Params
    runs: list[RunState]

    @property
    def activation(self) -> str:
        return self.configs[0].activation


@dataclass(frozen=True)
class Checkpoint:
    """One probed run at a checkpoint: its pool of K×N complete episodes ([1, K·N, T] tensors), collected by the
    engine at the frozen checkpoint parameters `policy`/`value` (the run's, no run dimension; read them, don't write)
    from the run's own `probes` stream, which only the probes draw from (`stream`, positioned after the pool's draws;
    training never reads it, so what a probe draws cannot change training)."""

    env_steps: int
    pool: Batch
    policy: tuple[Tensor, ...]
    value: tuple[Tensor, ...]
    stream: np.random.Generator


@dataclass(frozen=True)
class CohortView:
    """What a probe hook may read of a cohort at a checkpoint: the runs' configs, the policy head and activation, and
    the checkpoint of each probed run (cohort position → `Checkpoint`, a read-only mapping)."""

    configs: tuple[RunConfig, ...]
    head: Head
    activation: str
    checkpoints: Mapping[int, Checkpoint]

    @classmethod
    def of(cls, state: CohortState, checkpoints: Mapping[int, Checkpoint]) -> "CohortView":
        """The view of `state` with the given checkpoints."""
        return cls(tuple(state.configs), state.head, state.activation, MappingProxyType(dict(checkpoints)))


#: A probe hook: (view, the probed runs' cohort positions, the checkpoint's update) → probes.csv rows, run by run in
#: the order given (`ablations.probes.checkpoint.probe_checkpoint`).
ProbeHook = Callable[[CohortView, Sequence[int], int], list[dict[str, Any]]]
