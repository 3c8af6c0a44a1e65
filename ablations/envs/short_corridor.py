"""`ablations/ShortCorridor-v0`: the short corridor with switched actions, Sutton & Barto, *Reinforcement Learning: An
Introduction* (2nd ed., 2018), Example 13.1 (Figure 13.1), written from the book's text.

A corridor of three non-terminal states, then the terminal state G; every episode starts in the first state and every
step is rewarded −1. Two actions: left (0) and right (1). In the first and the third state they move as named (left
in the first state, at the corridor's end, stays there; right in the third state reaches G); in the second state they
are reversed (right moves left, left moves right). The states look the same to the agent: the observation is the
constant 0 (one float32), so no policy can tell them apart, and the best it can do is a stochastic choice, with
p(right) = 2 − √2 ≈ 0.586 (the book: "about 0.59", value ≈ −11.6 from the start state).

Why 0 and not 1: a linear policy on this observation (`hidden = []`) has logits = 0·W + b = b, its output bias: the
book's θ with features x(s, right) = [1, 0], x(s, left) = [0, 1] (one preference per action), so SGD at the book's α
is the book's update. A constant 1 would add a copy of the bias (the weight), doubling the step in logit space.

Episodes are truncated at `MAX_STEPS` = 2000 steps (recorded as truncation). The book has no limit; this one binds
only for a policy near p = 0 or p = 1: an episode lasts longer than 2000 steps with probability 3.6e-13 at
p(right) = 0.05 (the book's initial policy; mean length 82 steps), 1.1e-5 at p = 0.02 (the chain's exact tail,
tests/envs/test_short_corridor.py). A greedy policy never reaches G (left, left, … stays in the first state; right,
right, … bounces between the first two), so its return is −2000.

The gymnasium env here is registered on import (`register`, called by `ablations.envs.registry`); the native batched
one (`ablations.envs.native.ShortCorridor`, the `auto` backend) steps R runs × N episodes at once with the same
`transition`, and both are deterministic: an action fixes the next state.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ENV_ID = "ablations/ShortCorridor-v0"
N_STATES = 3  # non-terminal; state N_STATES is G
LEFT, RIGHT = 0, 1
MAX_STEPS = 2000
#: The constant observation (see the module docstring).
OBSERVATION = np.zeros(1, dtype=np.float32)


def transition(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Next states (G = `N_STATES`) of `state` (ints 0..2, any shape) under `action` (0 left, 1 right): ±1, reversed
    in state 1, never below 0."""
    step = np.where(action == RIGHT, 1, -1)
    step = np.where(state == 1, -step, step)
    return np.maximum(state + step, 0)


class ShortCorridor(gym.Env):
    """The gymnasium environment (`ENV_ID`; registered with `max_episode_steps=MAX_STEPS`). `state` holds the
    position as a float64 array of one element, as the native backend keeps it."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)  # holds 0 (low < high)
        self.action_space = gym.spaces.Discrete(2)
        self.state = np.zeros(1)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = np.zeros(1)
        return OBSERVATION.copy(), {}

    def step(self, action):
        nxt = transition(self.state.astype(np.int64), np.asarray(int(action)))
        self.state = nxt.astype(np.float64)
        return OBSERVATION.copy(), -1.0, bool(nxt[0] == N_STATES), False, {}


def register() -> None:
    """Register `ENV_ID` in gymnasium's registry (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(ENV_ID, entry_point=ShortCorridor, max_episode_steps=MAX_STEPS)


register()
