"""The state of a cohort in training: its envs, stacked networks and per-run book-keeping (`Cohort`, `RunState`).

The engine builds and updates it; a probe checkpoint reads it. Kept apart from `engine` so that `ablations.probes`,
which the engine calls, can name it without importing the engine back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import RunConfig
from ..envs.spec import CohortEnv, EnvSpec
from .nets import Head, Params
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
    eval_return: float = math.nan


@dataclass
class Cohort:
    """Everything a probe checkpoint may read: the cohort's envs, networks and per-run state."""

    configs: list[RunConfig]
    spec: EnvSpec
    head: Head
    env: CohortEnv
    policy: Params
    value: Params
    runs: list[RunState]
    probe_env: CohortEnv | None = None  # K·N episodes per run, made by the first probe (ablations.probes)

    @property
    def activation(self) -> str:
        return self.configs[0].activation
