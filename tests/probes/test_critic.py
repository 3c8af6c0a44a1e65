"""critic: each half of the pool is predicted by a critic fitted on the other half only."""

import numpy as np
import torch

from ablations.probes.critic import CRITIC_WIDTH, crossfit_values


def test_a_constant_target_is_predicted_exactly_and_the_random_layer_comes_from_the_stream():
    obs = torch.from_numpy(np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32))
    first = torch.arange(20) < 10
    gen = np.random.default_rng(5)
    out = crossfit_values(obs, torch.full((20, 2), 2.5, dtype=torch.float64), first, gen)
    assert torch.allclose(out, torch.full((20, 2), 2.5, dtype=torch.float64), atol=1e-12)
    ref = np.random.default_rng(5)  # the stream moved by exactly the random layer's draws
    ref.standard_normal((3, CRITIC_WIDTH))
    ref.uniform(-1.0, 1.0, CRITIC_WIDTH)
    assert gen.bit_generator.state == ref.bit_generator.state


def test_a_half_never_sees_its_own_targets():
    obs = torch.from_numpy(np.random.default_rng(1).standard_normal((40, 2)).astype(np.float32))
    first = torch.arange(40) < 20
    targets = torch.from_numpy(np.random.default_rng(2).standard_normal((40, 1)))
    changed = targets.clone()
    changed[:20] += 100.0  # the first half's targets change: only the second half's predictions may
    a = crossfit_values(obs, targets, first, np.random.default_rng(3))
    b = crossfit_values(obs, changed, first, np.random.default_rng(3))
    assert torch.equal(a[:20], b[:20]) and not torch.allclose(a[20:], b[20:])


def test_a_pool_without_two_halves_gets_zeros():
    obs = torch.zeros(6, 2)
    out = crossfit_values(obs, torch.ones(6, 1, dtype=torch.float64), torch.ones(6, dtype=torch.bool),
                          np.random.default_rng(0))
    assert torch.equal(out, torch.zeros(6, 1, dtype=torch.float64))
