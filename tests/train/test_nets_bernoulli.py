"""The Bernoulli policy head (`nets.Head(kind="bernoulli")`): log-probabilities, entropy, sampling, the BCE identity,
and a Bernoulli policy over two actions of a Discrete space trained end to end through the engine."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ablations.envs import preprocess
from ablations.config import RunConfig
from ablations.train.engine import train_cohort
from ablations.envs.registry import describe
from ablations.envs.spec import Preprocessor
from ablations.train.nets import Head
from ablations.train.rollout import to_env_actions

LOGITS = [0.3, -1.2, 2.0, 0.0]
ACTIONS = [1.0, 0.0, 0.0, 1.0]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_log_prob_matches_hand_computed_values():
    head = Head("bernoulli", 1)
    out = torch.tensor(LOGITS, dtype=torch.float64).unsqueeze(-1)  # [4, 1]
    a = torch.tensor(ACTIONS, dtype=torch.float64).unsqueeze(-1)
    expected = [math.log(_sigmoid(x)) if ai == 1 else math.log(1 - _sigmoid(x)) for x, ai in zip(LOGITS, ACTIONS)]
    # log σ(.3) = −0.554355, log(1 − σ(−1.2)) = −0.263282, log(1 − σ(2)) = −2.126928, log σ(0) = −log 2
    assert head.log_prob(out, a).tolist() == pytest.approx(expected, abs=1e-12)
    assert expected[0] == pytest.approx(-0.5543552444685271, abs=1e-12)
    assert expected[3] == pytest.approx(-math.log(2), abs=1e-15)


def test_entropy_matches_hand_computed_values():
    head = Head("bernoulli", 1)
    out = torch.tensor(LOGITS, dtype=torch.float64).unsqueeze(-1)
    expected = []
    for x in LOGITS:
        p = _sigmoid(x)
        expected.append(-p * math.log(p) - (1 - p) * math.log(1 - p))
    assert head.entropy(out).tolist() == pytest.approx(expected, abs=1e-12)
    assert expected[3] == pytest.approx(math.log(2), abs=1e-15)  # the fair coin


def test_several_binary_choices_sum_over_the_action_dimension():
    head = Head("bernoulli", 2)
    out = torch.tensor([[0.3, -1.2], [2.0, 0.0]], dtype=torch.float64)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    one = Head("bernoulli", 1)
    per_dim = one.log_prob(out.reshape(4, 1), a.reshape(4, 1)).reshape(2, 2)
    assert torch.allclose(head.log_prob(out, a), per_dim.sum(dim=-1))
    assert torch.allclose(head.entropy(out), one.entropy(out.reshape(4, 1)).reshape(2, 2).sum(dim=-1))


def test_bce_weighted_loss_equals_the_minus_log_pi_weighted_loss():
    """Karpathy's pg-pong gradient: BCEWithLogits(l, a) weighted by the advantage is −w·log π(a|s)."""
    head = Head("bernoulli", 1)
    gen = torch.Generator().manual_seed(0)
    logit = torch.randn(32, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    a = (torch.rand(32, 1, generator=gen, dtype=torch.float64) < 0.5).double()
    w = torch.randn(32, 1, generator=gen, dtype=torch.float64)
    bce = F.binary_cross_entropy_with_logits(logit, a, weight=w, reduction="none")[:, 0]
    pg = -(w[:, 0] * head.log_prob(logit, a))
    assert torch.allclose(bce, pg, atol=1e-12)
    g_bce, = torch.autograd.grad(bce.sum(), logit)
    g_pg, = torch.autograd.grad(pg.sum(), logit)
    assert torch.allclose(g_bce, g_pg, atol=1e-12)
    assert torch.allclose(g_pg[:, 0], -w[:, 0] * (a[:, 0] - torch.sigmoid(logit[:, 0])), atol=1e-12)  # w·(σ(l) − a)


def test_sample_and_greedy():
    head = Head("bernoulli", 1)
    out = torch.tensor([[0.0], [0.0], [2.0], [-2.0]])
    noise = torch.tensor([[0.49], [0.51], [0.85], [0.15]])  # σ(2) = 0.881, σ(−2) = 0.119
    assert head.sample(out, noise)[:, 0].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert head.greedy(out)[:, 0].tolist() == [0.0, 0.0, 1.0, 0.0]  # l = 0 → 0 (ties go to the first action)
    assert head.noise_dim == 1 and head.out_dim == 1 and head.action_shape() == (1,)


def test_binary_choices_map_to_the_two_env_actions():
    head = Head("bernoulli", 1)
    amap = torch.tensor([2, 3])
    choices = torch.tensor([[[0.0], [1.0]], [[1.0], [1.0]]])  # [k=2, N=2, 1]
    assert to_env_actions(head, choices, None, None, amap).tolist() == [[2, 3], [3, 3]]


@pytest.fixture
def binary_cartpole(monkeypatch):
    """A test-only preprocessor: CartPole's two actions as one Bernoulli choice (0 → push left, 1 → push right)."""
    monkeypatch.setitem(preprocess.PREPROCESSORS, "binary_test",
                        Preprocessor("binary_test", _identity,
                                     binary_actions=(0, 1)))
    return "binary_test"


def _identity(env: gym.Env) -> gym.Env:
    return env


def test_a_bernoulli_policy_trains_through_the_engine(binary_cartpole):
    spec = describe("CartPole-v1", binary_cartpole)
    assert (spec.kind, spec.act_dim, spec.action_map) == ("bernoulli", 1, (0, 1))
    torch.set_num_threads(1)
    cfgs = [RunConfig(env_id="CartPole-v1", preprocess=binary_cartpole, seed=s, hidden=(16,), episodes_per_update=4,
                      total_steps=1500, eval_episodes=2, baseline="mean", normalize="returns") for s in (0, 1)]
    res = train_cohort(cfgs)
    assert [r["status"] for r in res.runs] == ["done", "done"]
    for c in res.curves:
        assert 0 < c["entropy"] <= math.log(2) + 1e-6 and np.isfinite(c["policy_loss"])
    shapes = [tuple(p.shape) for p in res.policies[cfgs[0].run_id]]
    assert shapes == [(4, 16), (16,), (16, 1), (1,)]
    alone = train_cohort(cfgs[1:])  # invariant 1 holds for the Bernoulli path too
    assert alone.curves == [c for c in res.curves if c["run_id"] == cfgs[1].run_id]
