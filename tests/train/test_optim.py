"""optim: each run's step follows torch.optim's rule for its own kind, learning rate and knobs; other runs untouched."""

import numpy as np
import pytest
import torch

from ablations.train.optim import PerRunAdam, PerRunOptimizer


def test_per_run_adam_matches_torch_adam_and_leaves_inactive_runs_alone():
    p = torch.randn(2, 3, 4)
    ref = p[0].clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.01)
    adam = PerRunAdam([p], [0.01, 0.5])
    before = p[1].clone()
    for step in range(5):
        g = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(step))
        ref.grad = g[0].clone()
        opt.step()
        adam.step([p], [g], np.array([True, False]))
    assert torch.allclose(p[0], ref.detach(), atol=1e-6)
    assert torch.equal(p[1], before)


#: (kind, lr, torch.optim factory, knobs of PerRunOptimizer) per run: every kind, with and without momentum.
OPTIMIZERS = [
    ("rmsprop", 1e-3, lambda p: torch.optim.RMSprop([p], lr=1e-3, alpha=0.99, eps=1e-5, foreach=False),
     1e-5, 0.0, 0.99),
    ("rmsprop", 5e-3, lambda p: torch.optim.RMSprop([p], lr=5e-3, alpha=0.9, eps=1e-8, momentum=0.9, foreach=False),
     1e-8, 0.9, 0.9),
    ("sgd", 0.1, lambda p: torch.optim.SGD([p], lr=0.1, foreach=False), 1e-8, 0.0, 0.99),
    ("sgd", 0.05, lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.8, foreach=False), 1e-8, 0.8, 0.99),
    ("adam", 0.01, lambda p: torch.optim.Adam([p], lr=0.01, eps=1e-6, foreach=False), 1e-6, 0.0, 0.99),
]


def test_per_run_rmsprop_sgd_and_adam_each_match_torch_optim_inside_one_mixed_optimizer():
    """Each run of one PerRunOptimizer with mixed kinds follows torch.optim's update of that run alone (to float32
    rounding: torch fuses some products), including steps it skips; an inactive run is left bit for bit alone."""
    n = len(OPTIMIZERS)
    p = torch.randn(n + 1, 3, 4, generator=torch.Generator().manual_seed(0))
    refs = [p[r].clone().requires_grad_(True) for r in range(n)]
    opts = [make(ref) for (_, _, make, *_), ref in zip(OPTIMIZERS, refs)]
    kinds, lrs, _, eps, mom, alpha = zip(*OPTIMIZERS)
    mine = PerRunOptimizer([p], [*lrs, 0.5], [*kinds, "sgd"], [*eps, 1e-8], [*mom, 0.0], [*alpha, 0.99])
    before = p[n].clone()
    for step in range(8):
        g = torch.randn(n + 1, 3, 4, generator=torch.Generator().manual_seed(step + 1))
        active = np.array([step % (r + 2) != 1 for r in range(n)] + [False])  # runs skip different steps
        for r in np.flatnonzero(active):
            refs[r].grad = g[r].clone()
            opts[r].step()
        mine.step([p], [g], active)
    for r in range(n):
        assert torch.allclose(p[r], refs[r].detach(), rtol=1e-6, atol=1e-7), OPTIMIZERS[r][:2]
    assert torch.equal(p[n], before)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="adamw"):
        PerRunOptimizer([torch.zeros(1, 2)], [0.1], ["adamw"])


def test_sgd_without_momentum_is_p_minus_lr_g_exactly():
    p = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    opt = PerRunOptimizer([p], [0.5, 0.25], ["sgd", "sgd"])
    opt.step([p], [torch.tensor([[1.0, -2.0], [4.0, 8.0]])], np.array([True, True]))
    assert torch.equal(p, torch.tensor([[0.5, 3.0], [2.0, 2.0]]))
    assert opt.t.tolist() == [1, 1]
