"""factored: per-step scores in factored form equal a loop of backward() and torch.func; contractions are exact."""

import numpy as np
import pytest
import torch

from ablations.probes.factored import layer_scores
from ablations.train.nets import Head, init_mlp

from tests.helpers.synthetic_pools import actions_for, flat, padded_rows


@pytest.mark.parametrize("kind,obs_dim,act_dim", [("categorical", 4, 2), ("gaussian", 3, 2), ("bernoulli", 5, 3)])
def test_per_episode_scores_equal_a_loop_of_backward_and_torch_func(kind, obs_dim, act_dim):
    rng = np.random.default_rng(0)
    head = Head(kind, act_dim)
    sizes = [obs_dim, 16, 16, head.out_dim]
    params = [p[0] for p in init_mlp(sizes, [torch.Generator().manual_seed(1)], out_gain=1.0)]
    params = [p + 0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)) for p in params]
    lengths = [3, 1, 7, 4]
    mask, obs = padded_rows(len(lengths), lengths, obs_dim, rng)
    acts = actions_for(head, obs.shape[0], rng)
    scores, _ = layer_scores(head, "tanh", params, obs, acts)
    per_episode = scores.episode_sums(mask, [None])[0]
    episode = mask.nonzero()[:, 0]
    onehot = (episode.unsqueeze(0) == torch.arange(len(lengths)).unsqueeze(1)).float()
    by_contraction = scores.contract(onehot)
    psi = scores.vectors()
    from ablations.train.nets import forward_single
    loop = []
    for i in range(len(lengths)):
        ps = [p.detach().clone().requires_grad_(True) for p in params]
        rows = episode == i
        head.log_prob(forward_single(ps, obs[rows], "tanh"), acts[rows]).sum().backward()
        loop.append(flat([p.grad for p in ps]))
    loop = torch.stack(loop)
    assert torch.allclose(per_episode, loop, atol=1e-5, rtol=1e-4)
    assert torch.allclose(by_contraction, loop, atol=1e-5, rtol=1e-4)
    assert torch.allclose(onehot @ psi, loop, atol=1e-5, rtol=1e-4)
    # torch.func.vmap over grad gives the same per-step ψ
    from torch.func import grad, vmap

    def logp(ps, o, a):
        return head.log_prob(forward_single(ps, o.unsqueeze(0), "tanh"), a.unsqueeze(0))[0]

    per_step = vmap(grad(logp), in_dims=(None, 0, 0))(tuple(p.detach() for p in params), obs, acts)
    assert torch.allclose(flat_rows(per_step, obs.shape[0]), psi, atol=1e-5, rtol=1e-4)


def flat_rows(grads, s):
    return torch.cat([g.reshape(s, -1) for g in grads], dim=1)


def test_contraction_through_a_basis_is_exact_also_outside_its_span():
    rng = np.random.default_rng(3)
    head = Head("categorical", 3)
    params = [p[0] for p in init_mlp([4, 8, 3], [torch.Generator().manual_seed(0)], out_gain=1.0)]
    obs = torch.from_numpy(rng.standard_normal((50, 4)).astype(np.float32))
    scores, _ = layer_scores(head, "tanh", params, obs, actions_for(head, 50, rng))
    basis = torch.from_numpy(rng.standard_normal((3, 50)))
    w = torch.cat([torch.from_numpy(rng.standard_normal((4, 3))) @ basis,
                   torch.from_numpy(rng.standard_normal((2, 50)))])
    direct = scores.contract(w.float()).double()
    assert torch.allclose(scores.contract_in_span(w, basis), direct, atol=1e-4, rtol=1e-4)
