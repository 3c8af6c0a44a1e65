"""`ablations/EnumMDP-v0`: a small MDP whose every trajectory can be listed, for exact policy gradients.

Three states (observed one-hot), two actions, at most `HORIZON` steps (then truncated). Each (state, action) pays
`R_HIGH` with probability `P_HIGH`, else `R_LOW`, and moves to `NEXT` (−1: the episode terminates), so the episode
length depends on the actions and rewards are stochastic: the cases where the step aggregation's 1/L is correlated
with the episode and where dropping γ^t matters. `trajectories()` lists every (state, action, reward) path with its
environment probability (the policy's factor is the caller's), ≤ 4^HORIZON of them, so ∇J_γ = Σ_τ P_θ(τ) G_0(τ)
Σ_t ∇θ log π(a_t|s_t) is a finite sum (tests/exact.py computes it, and every estimator's expectation, in float64).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

ENV_ID = "ablations/EnumMDP-v0"
N_STATES, N_ACTIONS, HORIZON = 3, 2, 4
#: NEXT[s][a]: the next state, −1 = terminate.
NEXT = ((1, -1), (2, -1), (0, -1))
#: The reward of (s, a) is R_HIGH[s][a] with probability P_HIGH[s][a], else R_LOW[s][a].
R_HIGH = ((1.0, 0.5), (2.0, 1.0), (1.0, 3.0))
R_LOW = ((0.0, 0.5), (-1.0, 0.0), (-1.0, 0.0))
P_HIGH = ((0.5, 1.0), (0.5, 0.7), (0.6, 0.3))


def observation(state: int) -> np.ndarray:
    obs = np.zeros(N_STATES, dtype=np.float32)
    obs[state] = 1.0
    return obs


class EnumMDP(gym.Env):
    """The gymnasium environment (register with id `ENV_ID`; `max_episode_steps=HORIZON` truncates)."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0.0, 1.0, (N_STATES,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.state = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = 0
        return observation(self.state), {}

    def step(self, action):
        s, a = self.state, int(action)
        high = self.np_random.random() < P_HIGH[s][a]
        reward = R_HIGH[s][a] if high else R_LOW[s][a]
        nxt = NEXT[s][a]
        self.state = max(nxt, 0)
        return observation(self.state), float(reward), nxt < 0, False, {}


@dataclass(frozen=True)
class Trajectory:
    """One path: states s_0..s_{L−1}, actions, rewards, its probability under the environment (rewards and
    transitions; the policy's factor Π π(a_t|s_t) is left to the caller), and whether it was truncated."""

    states: tuple[int, ...]
    actions: tuple[int, ...]
    rewards: tuple[float, ...]
    env_prob: float
    truncated: bool


def trajectories() -> list[Trajectory]:
    """Every trajectory of positive environment probability, in a fixed order."""
    out: list[Trajectory] = []

    def grow(states, actions, rewards, prob):
        s = states[-1]
        for a in range(N_ACTIONS):
            for r, p in ((R_HIGH[s][a], P_HIGH[s][a]), (R_LOW[s][a], 1.0 - P_HIGH[s][a])):
                if p <= 0:
                    continue
                path = (states, actions + (a,), rewards + (r,), prob * p)
                nxt = NEXT[s][a]
                if nxt < 0 or len(path[1]) == HORIZON:
                    out.append(Trajectory(*path, truncated=nxt >= 0))
                else:
                    grow(states + (nxt,), *path[1:])

    grow((0,), (), (), 1.0)
    return out


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=EnumMDP, max_episode_steps=HORIZON)


register()  # importing this module is the explicit opt-in: `imports = ["ablations.envs.enum_mdp"]`
