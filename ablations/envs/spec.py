"""What the rest of the package knows about an environment: its `EnvSpec` (after preprocessing), the `CohortEnv`
protocol every backend implements (R runs × N episodes), and the `Preprocessor` record.

Kept apart from `registry` (which makes the environments) so that the native backends and the preprocessors, which
`registry` loads, can name these types without importing it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym
    import torch

PolicyKind = Literal["categorical", "gaussian", "bernoulli"]
#: Observation dtypes kept as they are in the rollout's buffers (float32 represents every value exactly); any other
#: dtype is stored as float32.
EXACT_OBS_DTYPES = ("int8", "uint8")


@dataclass(frozen=True)
class EnvSpec:
    """What the engine needs to know about an environment (after preprocessing)."""

    env_id: str
    obs_dim: int
    kind: PolicyKind
    act_dim: int  # Categorical: number of actions; Gaussian: action dimension; Bernoulli: number of binary choices
    max_episode_steps: int | None
    action_low: tuple[float, ...] | None = None  # Box bounds (Gaussian only)
    action_high: tuple[float, ...] | None = None
    action_map: tuple[int, ...] | None = None  # Bernoulli over a Discrete space: env action for 0 and for 1
    # "float32", or "int8"/"uint8" for an env whose observations are such integers (float32 holds them exactly):
    # the rollout keeps them in that dtype (4× less memory to copy per step) and the policy sees them as float32
    obs_dtype: str = "float32"


class CohortEnv(Protocol):
    """R runs × N episodes. Indices in `runs` are positions 0..R-1 in the cohort."""

    spec: EnvSpec
    num_runs: int
    num_envs: int

    def reset(self, runs: np.ndarray, seeds: np.ndarray) -> torch.Tensor:
        """Reset all N episodes of `runs` (int array [k]) with one seed each (int array [k]) → obs [k, N, D] of
        dtype `spec.obs_dtype`."""
        ...

    def step(self, runs: np.ndarray, actions: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step `runs` → (obs [k,N,D] of dtype `spec.obs_dtype`, reward float64 [k,N], terminated bool [k,N],
        truncated bool [k,N]).

        `actions` is int64 [k, N] (Categorical), float32 [k, N, A] already clipped to the bounds (Gaussian) or int64
        [k, N] env actions (Bernoulli, mapped by the engine). Outputs of episodes that already ended are ignored.
        """
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Preprocessor:
    name: str
    wrap: Callable[[gym.Env], gym.Env]
    binary_actions: tuple[int, int] | None = None  # restrict a Discrete space to two env actions (Bernoulli)
