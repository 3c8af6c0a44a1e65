"""LineWalk-v0: a custom gymnasium environment, the example of `studies/linewalk.toml`.

A 1-D walk: x starts at 0; action 0 moves x by −0.1, action 1 by +0.1. The episode ends (terminated) when |x| > 1,
with reward +1 on the right and −1 on the left; every other step costs 0.01 (reward −0.01). Gymnasium's TimeLimit
truncates it after 50 steps. Importing this module registers the id, which is all a study needs:
``imports = ["linewalk_env"]`` (the study file's folder is importable), or ``env_id = "linewalk_env:LineWalk-v0"``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class LineWalk(gym.Env):
    """x = k / 10 for an integer k (no rounding drift); observation [x] as float32."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode: str | None = None):
        self.observation_space = gym.spaces.Box(-1.1, 1.1, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.k = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.k / 10], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.k = 0
        return self._obs(), {}

    def step(self, action):
        self.k += 1 if int(action) == 1 else -1
        if abs(self.k) > 10:
            return self._obs(), (1.0 if self.k > 0 else -1.0), True, False, {}
        return self._obs(), -0.01, False, False, {}

    def render(self) -> np.ndarray:
        frame = np.full((20, 110, 3), 255, dtype=np.uint8)
        frame[:, 5 + 5 * (self.k + 10) : 10 + 5 * (self.k + 10)] = (200, 30, 30)
        return frame


if "LineWalk-v0" not in gym.registry:
    gym.register(id="LineWalk-v0", entry_point=LineWalk, max_episode_steps=50)
