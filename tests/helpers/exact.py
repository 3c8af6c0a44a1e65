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

Values, for GAE and bootstrapping (`values_time_limited`, `values_infinite`): the MDP's episodes go on forever under
action 0 (states cycle 0 → 1 → 2 → 0), and the env's time limit `HORIZON` cuts them. V_H(s, t) and Q_H(s, a, t) are the
values of the time-limited process, where truncation is termination (by backward induction over t; they depend on
t, and state 0 is visited at t = 0 and t = 3); V^∞(s), Q^∞(s, a) those of the MDP without the limit (a 3×3 linear
solve). `gae_by_sum` is A^λ_t = Σ_l (γλ)^l δ_{t+l} as a double sum (not the recursion), and `expect(w)` =
E[Σ_t ψ_t w_t] = Σ_τ P_θ(τ) Σ_t ψ_t(τ) w_t(τ) for any per-step weights.
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
    states: np.ndarray  # [M, H] int, −1 after the end
    final_state: np.ndarray  # [M] the state a truncated episode stops in (s_T), −1 for a terminated one
    pi: np.ndarray  # [S, A] float64 π(a|s)

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

    @property
    def truncated(self) -> np.ndarray:
        return self.final_state >= 0

    def expect(self, w: np.ndarray) -> np.ndarray:
        """E[Σ_t ψ_t w_t] for per-step weights w [M, H] (zero after the end)."""
        return np.einsum("m,mhp,mh->p", self.prob, self.psi, w)

    def on_steps(self, table: np.ndarray, by: str) -> np.ndarray:
        """A table looked up along every trajectory → [M, H] (zero after the end): by "s" (table [S]: f(s_t)), "sa"
        ([S, A]: f(s_t, a_t)), "ts" ([H, S]: f(s_t, t)) or "tsa" ([H, S, A]: f(s_t, a_t, t))."""
        m, h = self.states.shape
        t = np.broadcast_to(np.arange(h), (m, h))
        s, a = np.maximum(self.states, 0), self.actions
        got = {"s": lambda: table[s], "sa": lambda: table[s, a], "ts": lambda: table[t, s],
               "tsa": lambda: table[t, s, a]}[by]()
        return np.where(self.states >= 0, got, 0.0)

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """`count` iid trajectory indices from P_θ."""
        return rng.choice(len(self.prob), size=count, p=self.prob / self.prob.sum())


def mean_rewards() -> np.ndarray:
    """r̄(s, a) = E[r | s, a] → [S, A]."""
    hi, lo, p = (np.array(x) for x in (enum_mdp.R_HIGH, enum_mdp.R_LOW, enum_mdp.P_HIGH))
    return p * hi + (1 - p) * lo


def values_time_limited(pi: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """(V_H [H + 1, S], Q_H [H, S, A]) of the time-limited process (truncation at HORIZON is termination), by
    backward induction: Q_H(s, a, t) = r̄(s, a) + γ [next ≥ 0] V_H(next, t + 1), V_H(·, H) = 0."""
    h, r = enum_mdp.HORIZON, mean_rewards()
    v, q = np.zeros((h + 1, enum_mdp.N_STATES)), np.zeros((h, enum_mdp.N_STATES, enum_mdp.N_ACTIONS))
    for t in range(h - 1, -1, -1):
        for s in range(enum_mdp.N_STATES):
            for a in range(enum_mdp.N_ACTIONS):
                nxt = enum_mdp.NEXT[s][a]
                q[t, s, a] = r[s, a] + (gamma * v[t + 1, nxt] if nxt >= 0 else 0.0)
        v[t] = (pi * q[t]).sum(axis=1)
    return v, q


def values_infinite(pi: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """(V^∞ [S], Q^∞ [S, A]) of the MDP without its time limit: V = (I − γ P_π)⁻¹ r̄_π, Q = r̄ + γ [next ≥ 0] V(next)."""
    n, r = enum_mdp.N_STATES, mean_rewards()
    trans = np.zeros((n, n))
    for s in range(n):
        for a in range(enum_mdp.N_ACTIONS):
            if enum_mdp.NEXT[s][a] >= 0:
                trans[s, enum_mdp.NEXT[s][a]] += pi[s, a]
    v = np.linalg.solve(np.eye(n) - gamma * trans, (pi * r).sum(axis=1))
    nxt = np.array(enum_mdp.NEXT)
    q = r + np.where(nxt >= 0, gamma * v[np.maximum(nxt, 0)], 0.0)
    return v, q


def gae_by_sum(ex: Exact, values: np.ndarray, v_end: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """A^λ_t = Σ_{l=0}^{L−1−t} (γλ)^l δ_{t+l}, δ_t = r_t + γ V_{t+1} − V_t with V_L = v_end (per trajectory: V(s_T)
    of a bootstrapped truncated one, else 0), values [M, H] → [M, H], as an explicit double sum."""
    out = np.zeros(values.shape)
    for i, length in enumerate(ex.lengths):
        v = np.append(values[i, :length], v_end[i])
        delta = ex.rewards[i, :length].astype(np.float64) + gamma * v[1:] - v[:-1]
        for t in range(length):
            out[i, t] = sum((gamma * lam) ** j * delta[t + j] for j in range(length - t))
    return out


def returns_by_sum(ex: Exact, v_end: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = Σ_{k=t}^{L−1} γ^{k−t} r_k + γ^{L−t} v_end → [M, H] (v_end = 0: the plain reward-to-go)."""
    out = np.zeros(ex.rewards.shape)
    for i, length in enumerate(ex.lengths):
        r = ex.rewards[i, :length].astype(np.float64)
        for t in range(length):
            out[i, t] = sum(gamma ** (k - t) * r[k] for k in range(t, length)) + gamma ** (length - t) * v_end[i]
    return out


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
    states, final = np.full((m, h), -1), np.full(m, -1)
    with torch.no_grad():
        pi = torch.softmax(forward_single(p64, torch.eye(enum_mdp.N_STATES, dtype=torch.float64), "tanh"), -1).numpy()
    for i, tr in enumerate(trajs):
        length = len(tr.actions)
        lengths[i] = length
        states[i, :length] = tr.states
        if tr.truncated:
            final[i] = enum_mdp.NEXT[tr.states[-1]][tr.actions[-1]]
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
    return Exact(prob, lengths, psi, x, obs, actions, rewards, states, final, pi)
