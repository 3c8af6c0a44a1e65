"""The uniform-random policy's score: its own seeded stream (same inputs, same returns), complete episodes."""

from __future__ import annotations

import numpy as np
import pytest

from ablations.evaluate.random_policy import random_policy_returns, reference_score


def test_same_seed_same_returns_and_another_seed_differs() -> None:
    a = random_policy_returns("CartPole-v1", 8, seed=3)
    assert np.array_equal(a, random_policy_returns("CartPole-v1", 8, seed=3))
    assert not np.array_equal(a, random_policy_returns("CartPole-v1", 8, seed=4))
    assert np.array_equal(a[:4], random_policy_returns("CartPole-v1", 4, seed=3))  # episode k's stream is its own


def test_complete_episodes_and_known_anchors() -> None:
    cart = random_policy_returns("CartPole-v1", 50, seed=0)
    assert np.all(cart >= 8) and 10 < cart.mean() < 40  # +1 per step; a random CartPole falls in ~22 steps
    assert np.all(random_policy_returns("Acrobot-v1", 3, seed=0) == -500.0)  # never swings up: the 500-step limit
    assert reference_score("CartPole-v1") == 475.0 and reference_score("Pendulum-v1") is None


def test_bad_episodes_refused() -> None:
    with pytest.raises(ValueError, match="episodes"):
        random_policy_returns("CartPole-v1", 0)
