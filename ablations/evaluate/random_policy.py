"""The score of a uniform-random policy on an environment, measured: the lower anchor of normalized scores.

`random_policy_returns(env_id, episodes, seed)` plays `episodes` complete episodes (termination or the env's time
limit) with actions drawn uniformly from the action space, and returns each episode's undiscounted return. It has its
own random stream, derived from `seed` and the tag ``"random-policy"`` (`numpy.random.SeedSequence`), never shared with
training: episode k resets with the k-th reset seed of that stream and samples its actions from the k-th action seed.
The same (env_id, episodes, seed) gives the same returns in any process. `reference_score(env_id)` is the env's
registered `reward_threshold` (gymnasium's "solved" score), or None.
"""

from __future__ import annotations

import zlib

import gymnasium as gym
import numpy as np

from ..envs.registry import _registered, split_env_id

#: Episodes the study driver measures per environment, unless the study file says otherwise.
DEFAULT_EPISODES = 100
_TAG = zlib.crc32(b"random-policy")


def random_policy_returns(env_id: str, episodes: int = DEFAULT_EPISODES, seed: int = 0,
                          preprocess: str | None = None) -> np.ndarray:
    """[episodes] undiscounted returns of the uniform-random policy, episode k seeded from stream (seed, k)."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes} is invalid; allowed: an integer >= 1")
    _registered(env_id)  # imports a `module:Env-v0` module, registers ALE / Box2D ids
    name = split_env_id(env_id)[1]
    env = gym.make(name)
    if preprocess is not None:
        from ..envs.registry import preprocessor

        env = preprocessor(preprocess).wrap(env)
    children = np.random.SeedSequence([int(seed), _TAG]).spawn(episodes)
    out = np.empty(episodes)
    try:
        for k, child in enumerate(children):
            reset_seed, action_seed = (int(x) for x in child.generate_state(2, dtype=np.uint32))
            env.reset(seed=reset_seed)
            env.action_space.seed(action_seed)
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total += float(reward)
                done = bool(terminated or truncated)
            out[k] = total
    finally:
        env.close()
    return out


def reference_score(env_id: str) -> float | None:
    """The env's registered `reward_threshold` (the score gymnasium calls solved), or None if it has none."""
    threshold = _registered(env_id).reward_threshold
    return None if threshold is None else float(threshold)
