"""Exact policy gradients on `ablations/EnumMDP-v0` by enumerating its trajectories, in float64 (test helper).

For a policy θ (the package's MLP and Categorical head): P_θ(τ) = env_prob(τ) · Π_t π(a_t|s_t); ψ_t = ∇θ log π(a_t|s_t)
by autograd per step; per return level x_t ∈ {G_0 (full), G_t (rtg), γ^t G_t (gpomdp)}, A(τ) = Σ_t x_t ψ_t and the
cross terms C(τ, τ') = Σ_t x_t(τ') ψ_t(τ) (x, ψ zero after an episode ends). A batch of N iid episodes with baseline
`none`/`mean`/`loo` (no normalization) has the direction sum D = (1 − c·[mean]) Σ_i A_i − c Σ_{i≠j} C_ij (c = 0, 1/N,
1/(N−1)); its expectation under either aggregation is a finite sum:
  episode: E[D]/N = (1 − c·[mean]) E[A] − c (N−1) E[C_12];
  step:    E[D/L] = (1 − c·[mean]) N E[A_1 / (L_1 + R_{N−1})] − c N(N−1) E[C_12 / (L_1 + L_2 + R_{N−2})],
with R_m the sum of m iid episode lengths (its distribution by convolving the length distribution). ∇J_γ = E[A_full].
This code shares nothing with the estimators or the probes but the network's forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ablations.envs import enum_mdp
from ablations.train.nets import Head, forward_single

KINDS = ("full", "rtg", "gpomdp")


@dataclass
class Exact:
    prob: np.ndarray  # [M] P_θ(τ)
    lengths: np.ndarray  # [M]
    psi: np.ndarray  # [M, H, P] scores, zero after the end
    x: dict[str, np.ndarray]  # kind → [M, H] return signal, zero after the end
    obs: np.ndarray  # [M, H, D] float32
    actions: np.ndarray  # [M, H]
    rewards: np.ndarray  # [M, H] float32

    @property
    def grad_j(self) -> np.ndarray:
        """∇J_γ = E[Σ_t ψ_t G_0]."""
        return self.mean_a("full")

    def mean_a(self, kind: str) -> np.ndarray:
        return np.einsum("m,mhp,mh->p", self.prob, self.psi, self.x[kind])

    def expectation(self, kind: str, baseline: str, n: int, aggregate: str) -> np.ndarray:
        """E of the batch direction (module docstring) for baseline none | mean | loo, no normalization."""
        c = {"none": 0.0, "mean": 1.0 / n, "loo": 1.0 / max(n - 1, 1)}[baseline]
        own = 1.0 - c if baseline == "mean" else 1.0
        a = np.einsum("mhp,mh->mp", self.psi, self.x[kind])  # A(τ)
        cross = np.einsum("mhp,kh->mkp", self.psi, self.x[kind])  # C(τ, τ')
        if aggregate == "episode":
            e_cross = np.einsum("m,k,mkp->p", self.prob, self.prob, cross)
            return own * (a.T @ self.prob) - c * (n - 1) * e_cross
        pmf = self.length_pmf()
        inv1 = np.array([sum(q / (l1 + r) for r, q in enumerate(self.sum_pmf(pmf, n - 1))) for l1 in self.lengths])
        out = own * n * np.einsum("m,m,mp->p", self.prob, inv1, a)
        if n >= 2 and c:
            rest = self.sum_pmf(pmf, n - 2)
            ll = self.lengths[:, None] + self.lengths[None, :]
            inv2 = sum(q / (ll + r) for r, q in enumerate(rest))
            out = out - c * n * (n - 1) * np.einsum("m,k,mk,mkp->p", self.prob, self.prob, inv2, cross)
        return out

    def length_pmf(self) -> np.ndarray:
        pmf = np.zeros(enum_mdp.HORIZON + 1)
        np.add.at(pmf, self.lengths, self.prob)
        return pmf

    @staticmethod
    def sum_pmf(pmf: np.ndarray, m: int) -> np.ndarray:
        """The distribution of the sum of m iid draws (index = value)."""
        out = np.array([1.0])
        for _ in range(m):
            out = np.convolve(out, pmf)
        return out

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` iid trajectory indices from P_θ."""
        return rng.choice(len(self.prob), size=count, p=self.prob / self.prob.sum())


def exact(params: list[torch.Tensor], gamma: float) -> Exact:
    """Enumerate `enum_mdp.trajectories()` under the policy `params` (the package's MLP, tanh, Categorical)."""
    head = Head("categorical", enum_mdp.N_ACTIONS)
    p64 = [p.detach().double().requires_grad_(True) for p in params]
    trajs = enum_mdp.trajectories()
    m, h = len(trajs), enum_mdp.HORIZON
    n_par = sum(p.numel() for p in params)
    prob, lengths = np.zeros(m), np.zeros(m, dtype=int)
    psi = np.zeros((m, h, n_par))
    x = {k: np.zeros((m, h)) for k in KINDS}
    obs = np.zeros((m, h, enum_mdp.N_STATES), dtype=np.float32)
    actions, rewards = np.zeros((m, h), dtype=np.int64), np.zeros((m, h), dtype=np.float32)
    for i, tr in enumerate(trajs):
        length = len(tr.actions)
        lengths[i] = length
        o = np.stack([enum_mdp.observation(s) for s in tr.states])
        obs[i, :length], actions[i, :length], rewards[i, :length] = o, tr.actions, tr.rewards
        logp = head.log_prob(forward_single(p64, torch.from_numpy(o).double(), "tanh"),
                             torch.tensor(tr.actions))
        prob[i] = tr.env_prob * float(torch.exp(logp.detach().sum()))
        for t in range(length):
            g = torch.autograd.grad(logp[t], p64, retain_graph=True)
            psi[i, t] = torch.cat([v.reshape(-1) for v in g]).numpy()
        r = np.asarray(tr.rewards, dtype=np.float64)
        g_t = np.array([sum(gamma ** (k - t) * r[k] for k in range(t, length)) for t in range(length)])
        x["rtg"][i, :length] = g_t
        x["full"][i, :length] = g_t[0]
        x["gpomdp"][i, :length] = g_t * gamma ** np.arange(length)
    return Exact(prob, lengths, psi, x, obs, actions, rewards)
