import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Normal

from ablations.train.nets import LOG_STD_MAX, Head, forward_single, forward_stacked, init_mlp, select


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_a_runs_weights_do_not_depend_on_its_cohort():
    alone = init_mlp([4, 16, 2], gens(5))
    cohort = init_mlp([4, 16, 2], gens(1, 5, 9))
    for a, c in zip(alone, cohort):
        assert torch.equal(a[0], c[1])


def test_stacked_forward_equals_single_forward_per_run():
    params = init_mlp([3, 8, 8, 1], gens(0, 1, 2), out_gain=1.0)
    x = torch.randn(3, 5, 3)
    out = forward_stacked(params, x, "tanh")
    for r in range(3):
        single = forward_single([p[r] for p in params], x[r], "tanh")
        assert torch.allclose(out[r], single, atol=1e-6)
    # a run alone gives the same bits as inside the batch (width-1 heads included)
    sub = forward_stacked(select(params, torch.tensor([1])), x[1:2], "tanh")
    assert torch.equal(sub[0], out[1])


def test_categorical_head_matches_torch_distributions_and_samples_by_inverse_cdf():
    head = Head("categorical", 3)
    logits = torch.tensor([[0.2, -1.0, 0.5]])
    dist = Categorical(logits=logits)
    for a in range(3):
        assert torch.allclose(head.log_prob(logits, torch.tensor([a])), dist.log_prob(torch.tensor([a])))
    assert torch.allclose(head.entropy(logits), dist.entropy())
    p = dist.probs[0]
    u = torch.tensor([[0.0], [float(p[0]) - 1e-6], [float(p[0]) + 1e-6], [float(p[0] + p[1]) + 1e-6], [0.999999]])
    acts = head.sample(logits.expand(5, 3), u)
    assert acts.tolist() == [0, 0, 1, 2, 2]
    assert head.greedy(logits).tolist() == [2]


def test_gaussian_head_matches_normal_and_clamps_log_std():
    head = Head("gaussian", 2)
    out = torch.tensor([[0.5, -1.0, math.log(0.3), 10.0]])
    mean, std = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.3, math.exp(LOG_STD_MAX)]])
    a = torch.tensor([[0.1, 2.0]])
    assert torch.allclose(head.log_prob(out, a), Normal(mean, std).log_prob(a).sum(-1))
    assert torch.allclose(head.entropy(out), Normal(mean, std).entropy().sum(-1))
    assert torch.allclose(head.sample(out, torch.tensor([[1.0, -1.0]])), mean + std * torch.tensor([[1.0, -1.0]]))


def test_bernoulli_head_matches_torch_by_hand():
    head = Head("bernoulli", 1)
    logit = torch.tensor([[0.0], [math.log(3.0)]])  # p = 0.5, 0.75
    a = torch.tensor([[1.0], [0.0]])
    assert torch.allclose(head.log_prob(logit, a), torch.tensor([math.log(0.5), math.log(0.25)]))
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert torch.allclose(head.entropy(logit), torch.tensor([math.log(2.0), h]))
    assert torch.allclose(head.entropy(logit), Bernoulli(logits=logit).entropy().sum(-1))
    assert head.sample(logit, torch.tensor([[0.6], [0.6]])).tolist() == [[0.0], [1.0]]


def test_noise_blocks_are_drawn_from_the_given_stream_only():
    head = Head("categorical", 2)
    a = head.draw_noise(np.random.default_rng(0), 4, 3)
    b = head.draw_noise(np.random.default_rng(0), 4, 3)
    assert a.shape == (4, 3, 1) and np.array_equal(a, b)
    assert Head("gaussian", 2).draw_noise(np.random.default_rng(0), 4, 3).shape == (4, 3, 2)


@pytest.mark.parametrize("kind", ["categorical", "gaussian", "bernoulli"])
def test_log_prob_is_differentiable(kind):
    head = Head(kind, 2)
    out = torch.zeros(5, head.out_dim, requires_grad=True)
    acts = torch.zeros(5, dtype=torch.long) if kind == "categorical" else torch.zeros(5, 2)
    head.log_prob(out, acts).sum().backward()
    assert out.grad is not None and torch.isfinite(out.grad).all()
