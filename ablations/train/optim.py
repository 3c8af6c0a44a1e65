"""Per-run optimizers on stacked `[R, ...]` parameters (`PerRunOptimizer`: Adam, RMSprop or SGD per run, each with its
own learning rate, knobs and state; `PerRunAdam` for the critic): a run's step never reads another run's rows."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..config import RunConfig
from .nets import Params

BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


class PerRunOptimizer:
    """Per-run optimizers on stacked parameters: each run r has its own kind (`adam` | `rmsprop` | `sgd`), learning
    rate and knobs, and torch.optim's update rule for that kind (Adam; RMSprop not centered; SGD without dampening or
    Nesterov; no weight decay). Adam's and RMSprop's `eps` is added to the root of the second moment, as torch does.

    State: `m` is Adam's first moment or the momentum buffer of RMSprop/SGD (zeros: torch's first SGD step sets the
    buffer to g, which is 0·m + g), `v` Adam's second moment or RMSprop's running mean of g², `t` the step count."""

    def __init__(self, params: Params, lrs: Sequence[float], kinds: Sequence[str] | None = None,
                 eps: Sequence[float] | None = None, momentum: Sequence[float] | None = None,
                 alpha: Sequence[float] | None = None):
        n = len(lrs)
        self.kinds = np.asarray(kinds if kinds is not None else ["adam"] * n)
        unknown = set(self.kinds.tolist()) - {"adam", "rmsprop", "sgd"}
        if unknown:
            raise ValueError(f"optimizer {sorted(unknown)}; allowed: adam | rmsprop | sgd")
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params] if (self.kinds != "sgd").any() else []
        self.t = np.zeros(n, dtype=np.int64)
        self.lr = np.asarray(lrs, dtype=np.float64)
        self.eps = np.asarray(eps if eps is not None else [ADAM_EPS] * n, dtype=np.float64)
        self.momentum = np.asarray(momentum if momentum is not None else [0.0] * n, dtype=np.float64)
        self.alpha = np.asarray(alpha if alpha is not None else [0.99] * n, dtype=np.float64)

    def step(self, params: Params, grads: Sequence[Tensor], active: np.ndarray) -> None:
        """Update the runs where `active` (bool [R]) is True; the others are left bit-for-bit untouched.

        Only the active runs' rows are read and written, one kind at a time: every rule is elementwise, so the bits
        do not depend on which other runs are stepped with them."""
        for kind, rule in (("adam", self._adam), ("rmsprop", self._rmsprop), ("sgd", self._sgd)):
            rows = np.flatnonzero(active & (self.kinds == kind))
            if len(rows):
                self.t[rows] += 1
                rule(params, grads, rows)

    @staticmethod
    def _col(x: np.ndarray) -> Tensor:
        return torch.from_numpy(x.astype(np.float32))

    def _adam(self, params: Params, grads: Sequence[Tensor], rows: np.ndarray) -> None:
        t = self.t[rows]
        b1, b2 = BETAS
        with np.errstate(over="ignore"):  # an absurd learning rate overflows to inf: the run then diverges, visibly
            step_size = self._col(self.lr[rows] / (1 - b1 ** t))
        bc2_sqrt = self._col(np.sqrt(1 - b2 ** t))
        eps = self._col(self.eps[rows])
        idx = torch.from_numpy(rows)
        with torch.no_grad():
            for p, g, m, v in zip(params, grads, self.m, self.v):
                shape = (-1,) + (1,) * (p.dim() - 1)
                g_a = g.index_select(0, idx)
                m_new = m.index_select(0, idx) * b1 + g_a * (1 - b1)  # plain ops: no fused kernels
                v_new = v.index_select(0, idx) * b2 + (g_a * g_a) * (1 - b2)
                denom = v_new.sqrt() / bc2_sqrt.view(shape) + eps.view(shape)
                p_new = p.index_select(0, idx) - step_size.view(shape) * (m_new / denom)
                m.index_copy_(0, idx, m_new)
                v.index_copy_(0, idx, v_new)
                p.index_copy_(0, idx, p_new)

    def _rmsprop(self, params: Params, grads: Sequence[Tensor], rows: np.ndarray) -> None:
        self._heavy_ball(params, grads, rows, rms=True)

    def _sgd(self, params: Params, grads: Sequence[Tensor], rows: np.ndarray) -> None:
        self._heavy_ball(params, grads, rows, rms=False)

    def _heavy_ball(self, params: Params, grads: Sequence[Tensor], rows: np.ndarray, rms: bool) -> None:
        """p ← p − lr·m, m ← μ·m + d (= d when μ = 0); d = g (SGD) or g / (√v + eps), v ← α·v + (1 − α)·g² (RMSprop)."""
        with np.errstate(over="ignore"):
            lr = self._col(self.lr[rows])
        alpha, eps, mom = self._col(self.alpha[rows]), self._col(self.eps[rows]), self._col(self.momentum[rows])
        one_minus_alpha = self._col(1 - self.alpha[rows])
        idx = torch.from_numpy(rows)
        with torch.no_grad():
            for i, (p, g, m) in enumerate(zip(params, grads, self.m)):
                shape = (-1,) + (1,) * (p.dim() - 1)
                d = g.index_select(0, idx)
                if rms:
                    v = self.v[i]
                    v_new = v.index_select(0, idx) * alpha.view(shape) + (d * d) * one_minus_alpha.view(shape)
                    d = d / (v_new.sqrt() + eps.view(shape))
                    v.index_copy_(0, idx, v_new)
                m_new = m.index_select(0, idx) * mom.view(shape) + d
                p_new = p.index_select(0, idx) - lr.view(shape) * m_new
                m.index_copy_(0, idx, m_new)
                p.index_copy_(0, idx, p_new)

    @classmethod
    def for_policy(cls, params: Params, configs: Sequence[RunConfig]) -> "PerRunOptimizer":
        """Each run's `optimizer`, `policy_lr` and knobs (`optimizer_eps`, `momentum`, `rmsprop_decay`)."""
        return cls(params, [c.policy_lr for c in configs], [c.optimizer for c in configs],
                   [c.optimizer_eps for c in configs], [c.momentum for c in configs],
                   [c.rmsprop_decay for c in configs])


class PerRunAdam(PerRunOptimizer):
    """Adam (torch.optim.Adam's update rule, eps 1e-8) for every run, with a learning rate per run (the critic's)."""

    def __init__(self, params: Params, lrs: Sequence[float]):
        super().__init__(params, lrs)

