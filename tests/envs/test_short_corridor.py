"""`ablations/ShortCorridor-v0` is Sutton & Barto's Example 13.1 as the book's text describes it: the transitions of
each (state, action), −1 per step, a constant observation; its values under a fixed p(right) equal the exact solution
of the book's 3-state linear system (`exact_values`), and the truncation tail the module states is the chain's own.
(The native backend equals this env step for step: tests/envs/test_native.py runs over every native id.)"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from ablations.envs import short_corridor as sc
from ablations.envs.native import NATIVE_ENVS
from ablations.envs.registry import describe
from tests.helpers.corridor import exact_values, optimum

G = sc.N_STATES


def survival(p: float, steps: int) -> float:
    """P(an episode from state 0 lasts more than `steps` steps) under p(right) = p: the chain's exact tail."""
    Q = np.array([[1 - p, p, 0.0], [p, 0.0, 1 - p], [0.0, 1 - p, 0.0]])  # transient → transient
    return float(np.linalg.matrix_power(Q, steps)[0].sum())


@pytest.mark.parametrize("state,action,want", [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 0), (2, 0, 1), (2, 1, G)])
def test_transitions_follow_the_books_text(state, action, want):
    """Left in the first state stays there; actions are reversed in the second state; right in the third ends."""
    env = gym.make(sc.ENV_ID).unwrapped
    obs, _ = env.reset(seed=0)
    env.state = np.array([float(state)])
    obs2, reward, terminated, truncated, _ = env.step(action)
    assert int(env.state[0]) == want
    assert reward == -1.0 and terminated == (want == G) and not truncated
    assert obs.tolist() == obs2.tolist() == [0.0]  # the states look the same


def test_registered_on_import_with_its_spec():
    spec = describe(sc.ENV_ID)
    assert (spec.obs_dim, spec.kind, spec.act_dim, spec.max_episode_steps) == (1, "categorical", 2, sc.MAX_STEPS)
    assert NATIVE_ENVS[sc.ENV_ID](1, 1).spec == spec


def test_the_exact_values_are_the_books():
    """The optimum of v(start) is at p = 2 − √2, value −2√2 / (3√2 − 4) ≈ −11.657 (the book: −11.6)."""
    p_star, v_star = optimum()
    assert p_star == pytest.approx(2 - np.sqrt(2), abs=1e-6)
    assert v_star == pytest.approx(-2 * np.sqrt(2) / (3 * np.sqrt(2) - 4), abs=1e-9) == pytest.approx(-11.657, abs=1e-3)
    assert exact_values(0.05)[0] == pytest.approx(-82.105, abs=1e-3)  # the book's initial policy: mean length 82


def test_returns_of_a_fixed_policy_average_to_the_exact_value():
    """Monte-Carlo returns of p(right) = 0.3 in the native env (uniform noise from a seeded generator) → v(0) within
    4 standard errors."""
    p, n = 0.3, 4000
    env = NATIVE_ENVS[sc.ENV_ID](1, n)
    env.reset(np.array([0]), np.array([0]))
    rng = np.random.default_rng(0)
    total, alive = np.zeros(n), np.ones(n, dtype=bool)
    while alive.any():
        actions = torch.from_numpy((rng.random((1, n)) < p).astype(np.int64))
        _, r, te, tr = env.step(np.array([0]), actions)
        total += np.where(alive, r[0].numpy(), 0.0)
        alive &= ~(te | tr)[0].numpy()
    se = total.std(ddof=1) / np.sqrt(n)
    assert abs(total.mean() - exact_values(p)[0]) < 4 * se


def test_the_truncation_tail_the_module_states():
    """The module's docstring: longer than MAX_STEPS = 2000 steps with probability 3.6e-13 at p = 0.05, 1.1e-5 at
    p = 0.02."""
    assert sc.MAX_STEPS == 2000
    assert survival(0.05, 2000) == pytest.approx(3.6e-13, rel=0.02)
    assert survival(0.02, 2000) == pytest.approx(1.1e-5, rel=0.05)


@pytest.mark.parametrize("action", [0, 1])
def test_a_deterministic_policy_never_reaches_the_goal(action):
    """Always left stays in the first state; always right bounces between the first two: truncated at MAX_STEPS."""
    env = NATIVE_ENVS[sc.ENV_ID](1, 1)
    env.reset(np.array([0]), np.array([0]))
    for _ in range(sc.MAX_STEPS):
        _, _, te, tr = env.step(np.array([0]), torch.full((1, 1), action))
        assert not te.any()
    assert tr.all()
