"""Exact numbers of Sutton & Barto's short corridor (Example 13.1), computed here from the book's text, independently
of `ablations.envs.short_corridor`: the values of a policy with p(right) = p, the optimum, and the mean-gradient flow
of the book's REINFORCE (the path the average of many runs follows for a small step size)."""

from __future__ import annotations

import math

import numpy as np

GOAL = 3
#: (state, action) → next state, from the book's text: left in the first state stays there; the actions are reversed
#: in the second state; right in the third state reaches the goal.
NEXT = {(0, "left"): 0, (0, "right"): 1, (1, "left"): 2, (1, "right"): 0, (2, "left"): 1, (2, "right"): GOAL}


def exact_values(p: float) -> np.ndarray:
    """v(s) for s = 0, 1, 2 under p(right) = p: the solution of v = −1 + P v on the three non-terminal states."""
    P = np.zeros((3, 3))
    for (s, a), s2 in NEXT.items():
        if s2 != GOAL:
            P[s, s2] += p if a == "right" else 1 - p
    return np.linalg.solve(np.eye(3) - P, -np.ones(3))


def start_value(p: float) -> float:
    return float(exact_values(p)[0])


def optimum() -> tuple[float, float]:
    """(p*, v*): the p(right) that maximizes the start state's value, and that value (scipy's bounded search)."""
    from scipy.optimize import minimize_scalar

    best = minimize_scalar(lambda p: -start_value(p), bounds=(1e-3, 1 - 1e-3), method="bounded",
                           options={"xatol": 1e-12})
    return float(best.x), start_value(best.x)


def mean_flow(alpha: float, episodes: int, p0: float = 0.05) -> np.ndarray:
    """p(right) before each of `episodes` episodes of the expected REINFORCE update: the logit difference d = θ_R − θ_L
    of a softmax over two preferences moves by E[Δd] = α (∂v/∂θ_R − ∂v/∂θ_L) = 2α v'(p) p(1 − p) per episode (the
    book's per-episode update is an unbiased estimate of α∇v; v' by central differences of `start_value`)."""
    d = math.log(p0 / (1 - p0))
    out = np.empty(episodes)
    for k in range(episodes):
        p = 1 / (1 + math.exp(-d))
        out[k] = p
        h = 1e-6
        d += 2 * alpha * (start_value(p + h) - start_value(p - h)) / (2 * h) * p * (1 - p)
    return out
