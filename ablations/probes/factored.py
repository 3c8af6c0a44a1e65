"""Per-step scores ψ_{i,t} = ∇θ log π(a_{i,t}|s_{i,t}) of a pool in factored form (`LayerScores`, `layer_scores`).

Policy parameters only, flattened W₀, b₀, W₁, …. For an MLP layer z = a W + b, ψ restricted to W is the outer product
a_s ⊗ δ_s with δ_s = ∂log π_s/∂z_s, and one backward pass of Σ_s log π_s yields every δ_s (rows do not interact).
Σ_s w_{e,s} ψ_s is one contraction per layer, (w ⊙ A)ᵀ Δ; ψ itself ([S, P]) is never materialized; weight rows that
lie in the span of a few vectors are contracted through an orthonormal basis of that span
(`LayerScores.contract_in_span`). `torch.func.vmap(grad(·))` gives the same ψ (the tests check both against a loop of
`backward()`), but its first call imports torch._dynamo (~4 s per process) and it materializes [S, P].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..train.nets import ACTIVATIONS, Head

#: Bound on the temporaries of a contraction or an episode group, in floats.
CHUNK_FLOATS = 1 << 22
#: Per-episode sums pad episodes of similar length together; padding may add this fraction of rows.
PAD_SLACK = 0.25


@dataclass
class LayerScores:
    """ψ_s of rows s = 1..S in factored form: for layer l (z_l = a_l W_l + b_l), ∂log π(a_s|o_s)/∂W_l =
    a_{l,s} ⊗ δ_{l,s} and ∂/∂b_l = δ_{l,s}, with a_l [S, in_l] the layer's input and δ_l = ∂log π_s/∂z_{l,s}."""

    inputs: list[Tensor]
    deltas: list[Tensor]

    @property
    def num_params(self) -> int:
        return sum(a.shape[1] * d.shape[1] + d.shape[1] for a, d in zip(self.inputs, self.deltas))

    def contract(self, w: Tensor) -> Tensor:
        """Σ_s w[e, s] ψ_s for weights w [E, S] → [E, P] (parameters flattened in order W₀, b₀, W₁, b₁, …).

        Per layer (w ⊙ A)ᵀ Δ: [E, in, S] × [S, out], in chunks of rows of about `CHUNK_FLOATS` floats."""
        widest = max(a.shape[1] for a in self.inputs)
        step = max(16, CHUNK_FLOATS // max(1, w.shape[0] * widest))
        parts = []
        for a, d in zip(self.inputs, self.deltas):
            gw = sum((w[:, i:i + step].unsqueeze(1) * a[i:i + step].T.unsqueeze(0)) @ d[i:i + step]
                     for i in range(0, a.shape[0], step))  # [E, in, out]
            parts += [gw.reshape(w.shape[0], -1), w @ d]
        return torch.cat(parts, dim=1)

    def contract_in_span(self, w: Tensor, basis: Tensor, tol: float = 1e-6) -> Tensor:
        """`contract(w)` (float64 result) when most rows of w [E, S] lie in the span of a few rows `basis` [B, S]:
        with Q an orthonormal basis of that span (QR, float64), w = C Qᵀ + R, and Σ_s w ψ_s = C (Qᵀ Ψ) + R Ψ, where
        only the rows of R larger than `tol` relative to their row of w are contracted. Exact up to rounding; B + (a
        few) rows are contracted instead of E."""
        w, basis = w.double(), basis.double()
        q = torch.linalg.qr(basis.T).Q  # [S, B'] orthonormal columns spanning the basis rows
        coef = w @ q  # [E, B']
        resid = w - coef @ q.T
        far = resid.norm(dim=1) > tol * w.norm(dim=1)
        g = self.contract(torch.cat([q.T, resid[far]]).float()).double()
        out = coef @ g[: q.shape[1]]
        out[far] += g[q.shape[1]:]
        return out

    def row_norms(self) -> Tensor:
        """‖ψ_s‖ per row [S]: Σ_l (‖a_{l,s}‖² + 1)‖δ_{l,s}‖² (the weight block a ⊗ δ and the bias block δ)."""
        return sum(((a.double() ** 2).sum(1) + 1) * (d.double() ** 2).sum(1)
                   for a, d in zip(self.inputs, self.deltas)).sqrt()

    def rows(self, lo: int, hi: int) -> "LayerScores":
        return LayerScores([a[lo:hi] for a in self.inputs], [d[lo:hi] for d in self.deltas])

    def episode_sums(self, mask: Tensor, ws: Sequence[Tensor | None]) -> list[Tensor]:
        """For each weighting w in ws ([S], or None = 1): Σ_t w_{i,t} ψ_{i,t} per episode → [M, P]; rows are in
        (episode, step) order of mask [M, T]. Per layer a batched Aᵢᵀ Δᵢ over episodes, which are sorted by length
        and grouped so that padding adds at most `PAD_SLACK` of the rows and a group stays within `CHUNK_FLOATS`."""
        lengths = mask.sum(dim=1)
        order = torch.argsort(lengths, stable=True)
        starts = (torch.cumsum(lengths, 0) - lengths).tolist()
        rows = torch.cat([torch.arange(starts[i], starts[i] + int(lengths[i])) for i in order.tolist()])
        srt = LayerScores([a[rows] for a in self.inputs], [d[rows] for d in self.deltas])
        ws = [None if w is None else w[rows] for w in ws]
        lens = lengths[order].numpy()
        offsets = np.concatenate([[0], np.cumsum(lens)])
        widest = max(a.shape[1] for a in self.inputs)
        chunks, e0 = [], 0
        while e0 < len(lens):  # the longest run of episodes from e0 whose padding and size stay within bounds
            count = np.arange(1, len(lens) - e0 + 1)
            padded = count * lens[e0:]  # sorted: the last episode of a group is its longest
            ok = (padded <= (1 + PAD_SLACK) * (offsets[e0 + 1:] - offsets[e0])) & (padded * widest <= CHUNK_FLOATS)
            e1 = e0 + max(1, int(np.argmin(ok)) if not ok.all() else len(ok))
            lo, hi = int(offsets[e0]), int(offsets[e1])
            m = torch.arange(int(lens[e1 - 1])).unsqueeze(0) < torch.from_numpy(lens[e0:e1]).unsqueeze(1)
            chunks.append(srt.rows(lo, hi)._padded_sums(m, [None if w is None else w[lo:hi] for w in ws]))
            e0 = e1
        inverse = torch.argsort(order)
        return [torch.cat([c[j] for c in chunks])[inverse] for j in range(len(ws))]

    def _padded_sums(self, mask: Tensor, ws: Sequence[Tensor | None]) -> list[Tensor]:
        out: list[list[Tensor]] = [[] for _ in ws]
        full = bool(mask.all())
        for a, d in zip(self.inputs, self.deltas):
            if full:
                a_t = a.reshape(*mask.shape, -1).transpose(1, 2)
            else:
                a_pad = a.new_zeros(*mask.shape, a.shape[1])
                a_pad[mask] = a
                a_t = a_pad.transpose(1, 2)
            d_pad = d.new_zeros(*mask.shape, d.shape[1])
            for j, w in enumerate(ws):
                d_pad[mask] = d if w is None else d * w.unsqueeze(1)
                out[j] += [torch.bmm(a_t, d_pad).reshape(mask.shape[0], -1), d_pad.sum(dim=1)]
        return [torch.cat(parts, dim=1) for parts in out]

    def vectors(self) -> Tensor:
        """ψ itself, [S, P] (for tests and small problems: the probes never materialize it)."""
        parts = []
        for a, d in zip(self.inputs, self.deltas):
            parts.append((a.unsqueeze(2) * d.unsqueeze(1)).reshape(a.shape[0], -1))
            parts.append(d)
        return torch.cat(parts, dim=1)


def layer_scores(head: Head, activation: str, params: Sequence[Tensor], obs: Tensor, actions: Tensor,
                 entropy: bool = False) -> tuple[LayerScores, LayerScores | None]:
    """Per-step scores of rows obs [S, D], actions [S(, A)] at one run's `params` (no run dimension), by one backward
    pass: each row's log π depends on its own row only, so ∂(Σ_s log π_s)/∂z_{l,s} = ∂log π_s/∂z_{l,s}. The forward is
    `nets.forward_single`'s, layer by layer. With `entropy`, also the per-step entropy gradients ∇θ H(π(·|s)), in the
    same factored form."""
    act = ACTIVATIONS[activation]
    ps = [p.detach() for p in params]
    n_layers = len(ps) // 2
    x, inputs, pre = obs, [], []
    for li in range(n_layers):
        inputs.append(x.detach())
        z = (x @ ps[2 * li] + ps[2 * li + 1]).requires_grad_(True) if li == 0 else x @ ps[2 * li] + ps[2 * li + 1]
        pre.append(z)
        x = act(z) if li < n_layers - 1 else z
    deltas = torch.autograd.grad(head.log_prob(x, actions).sum(), pre, retain_graph=entropy)
    h_scores = None
    if entropy:
        h_scores = LayerScores(inputs, list(torch.autograd.grad(head.entropy(x).sum(), pre)))
    return LayerScores(inputs, list(deltas)), h_scores
