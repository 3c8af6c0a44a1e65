"""What a saved policy would do: its action distribution at given observations (`at_observations`) or at every step of
one episode (`along_episode`), the numbers `ablations eval --obs / --trace` prints.

The distribution is the one the engine samples from (`nets.Head.distribution`): Categorical `p(a=i)` per action,
Bernoulli `p(x_i=1)` per binary choice, Gaussian `mean_i` and `std_i` per action dimension (before clipping to the
action bounds). Observations are what the policy sees: after the run's preprocessor, if it has one.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..config import RunConfig
from ..envs.registry import describe, make_cohort_env
from ..train.nets import forward_single, head_for
from ..train.rollout import collect
from ..train.seeding import draw_seed
from .episodes import _streams, check_params
from .policy_io import as_tensor

#: Observations up to this size get one column per component in `along_episode`'s table (larger ones are left out).
MAX_OBS_COLUMNS = 8


def _policy(config: RunConfig, params: Sequence[Tensor | np.ndarray]):
    spec = describe(config.env_id, config.preprocess)
    params = [as_tensor(p).detach().float() for p in params]
    check_params(config, spec, params)
    return spec, head_for(spec), params


def _columns(head, out: Tensor) -> dict[str, np.ndarray]:
    return {k: v.double().numpy() for k, v in head.distribution(out).items()}


def at_observations(config: RunConfig, params: Sequence[Tensor | np.ndarray],
                    observations: Sequence[Sequence[float]]) -> pd.DataFrame:
    """One row per observation: its components `obs_0..obs_{D−1}`, then the policy's distribution there. Raise
    `ValueError` naming the expected size when an observation does not have the env's `obs_dim` components."""
    spec, head, params = _policy(config, params)
    rows = [list(map(float, o)) for o in observations]
    bad = [o for o in rows if len(o) != spec.obs_dim]
    if bad or not rows:
        raise ValueError(f"observation {bad[0] if bad else []} has {len(bad[0]) if bad else 0} component(s); "
                         f"{config.env_id} observations have {spec.obs_dim}"
                         + (f" (after preprocess={config.preprocess!r})" if config.preprocess else ""))
    obs = torch.tensor(rows, dtype=torch.float32)
    with torch.no_grad():
        out = forward_single(params, obs, config.activation)
    table = {f"obs_{j}": obs[:, j].double().numpy() for j in range(spec.obs_dim)}
    return pd.DataFrame({**table, **_columns(head, out)})


def along_episode(config: RunConfig, params: Sequence[Tensor | np.ndarray], seed: int = 0,
                  greedy: bool = False) -> pd.DataFrame:
    """One episode of the policy (stochastic unless `greedy`; reset seed and action noise from
    `SeedSequence(seed)`, as `evaluate_policy`'s streams) with the engine's rollout: one row per step `t`, the
    observation's components (up to `MAX_OBS_COLUMNS` of them), the policy's distribution at it, the action taken and
    the reward."""
    spec, head, params = _policy(config, params)
    env_gen, noise_gen = _streams(seed)
    env = make_cohort_env([config], num_envs=1, spec=spec)
    try:
        b = collect(env, np.array([0]), [draw_seed(env_gen)], [p.unsqueeze(0) for p in params], config.activation,
                    head, [noise_gen], greedy=greedy)
    finally:
        env.close()
    t = int(b.lengths[0, 0])
    obs = b.obs[0, 0, :t]
    with torch.no_grad():
        out = forward_single(params, obs, config.activation)
    table: dict[str, np.ndarray] = {"t": np.arange(t)}
    if spec.obs_dim <= MAX_OBS_COLUMNS:
        table.update({f"obs_{j}": obs[:, j].double().numpy() for j in range(spec.obs_dim)})
    table.update(_columns(head, out))
    actions = b.actions[0, 0, :t].reshape(t, -1).numpy()
    for i in range(actions.shape[1]):
        table["action" if actions.shape[1] == 1 else f"action_{i}"] = actions[:, i]
    table["reward"] = b.rewards[0, 0, :t].double().numpy()
    return pd.DataFrame(table)
