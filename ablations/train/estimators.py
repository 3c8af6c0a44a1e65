"""The policy-gradient estimators: pure functions of padded `[R, N, T]` tensors and a mask.

R runs, N episodes per run, T steps (padding after an episode ends; `mask` is True on real steps). Every function
returns per-element results of the same shape (zero on padding) and leaves the reduction to the caller; the
trainer and the probes call the same functions, so a probe measures exactly what the trainer applies.

Return signals and what they estimate (J_γ = E[Σ_t γ^t r_t], ψ_t = ∇θ log π(a_t|s_t), ∇J_γ = E[Σ_t ψ_t γ^t G_t]):
`full` x_t = G_0 and `gpomdp` x_t = γ^t G_t are unbiased for ∇J_γ; `rtg` x_t = G_t drops the γ^t and is the gradient
of no objective when γ < 1 (it equals `gpomdp` when γ = 1). `rally` (pg-pong's returns) restarts the discounted sum
at every non-zero reward, x_t = Σ_{k=t}^{τ_t} γ^{k−t} r_k with τ_t the first k ≥ t where r_k ≠ 0: each point (rally)
is treated as an episode of its own. It estimates no ∇J: it drops every reward after the point in which an action
was taken (biased unless actions cannot influence later points) and, like `rtg`, the γ^t; on a dense reward (CartPole's
1 per step) it degenerates to x_t = r_t. `reduce(·, "episode")` (1/N Σ_i Σ_t) is the
Monte-Carlo form these statements are about; `reduce(·, "step")` divides by the batch's random step count instead.

GAE (`gae_advantages`; returns `gae` and `gae_gpomdp`, baseline `value` only): the weight is the advantage itself,
A^λ_t = Σ_{l≥0} (γλ)^l δ_{t+l} with δ_t = r_t + γV(s_{t+1}) − V(s_t) and V(s_T) = 0 after an episode's last step
(`gae`), or γ^t A^λ_t (`gae_gpomdp`). With V the exact value of the process the episodes come from (V^π(s_t) of the
episode's remaining return, E[G_t | s_t]), E[A^λ_t | s_t, a_t] = Q^π(s_t, a_t) − V^π(s_t) for every λ, so `gae`'s
expectation is `rtg`'s (Σ_t ψ_t G_t: no objective's gradient when γ < 1) and `gae_gpomdp`'s is ∇J_γ; with any other V
the expectation moves by a bias that depends on λ and is zero at λ = 1, where A^1_t = G_t − V(s_t) exactly (a
baseline: E[ψ_t V(s_t)] = 0). The critic's regression target is G_t, as for `rtg`: the same for every λ.
(tests/train/test_exact_gradient.py checks each of these against exact expectations on an enumerable MDP.)

Bootstrapping (`bootstrap_rewards`, config `bootstrap_truncated`): an episode cut by a time limit at step T is continued
by γ V(s_T), V(s_T) the critic's value of its final observation, added to its last reward, so that G_t = Σ_{k=t}^{T−1}
γ^{k−t} r_k + γ^{T−t} V(s_T) and δ_{T−1} = r_{T−1} + γ V(s_T) − V(s_{T−1}); a terminated episode is not changed. With
V the exact infinite-horizon V^π (no time limit), every step t < T of a bootstrapped episode gets E[G_t | s_t, a_t] =
Q^π(s_t, a_t), the un-truncated MDP's: the truncation bias of the step's weight is removed (not the steps after T,
which the episode never reached).

Standardization uses the *sample* standard deviation (Bessel-corrected, torch's default `unbiased=True`), over a
run's valid steps. DESIGN.md's worked example: rewards [1, 0, 0, 2], γ = 0.9 → reward-to-go [2.458, 1.62, 1.8, 2.0]
→ standardized [1.354, −0.969, −0.470, 0.085].
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..config import GAE_RETURNS, Baseline, Normalize, Returns

EPS = 1e-8


def _check(x: Tensor, mask: Tensor) -> Tensor:
    if x.dim() != 3 or x.shape != mask.shape:
        raise ValueError(f"expected [R, N, T] tensors of equal shape, got {tuple(x.shape)} and {tuple(mask.shape)}")
    return mask.to(x.dtype)


def _gamma(gamma: float | Tensor, x: Tensor) -> Tensor:
    g = torch.as_tensor(gamma, dtype=x.dtype)
    return g.reshape(-1, 1) if g.dim() == 1 else g  # per-run γ [R] → [R, 1], broadcast over episodes


def reward_to_go(rewards: Tensor, mask: Tensor, gamma: float | Tensor, reset: bool | Tensor = False) -> Tensor:
    """G_t = Σ_{k≥t} γ^{k−t} r_k, per episode (zero on padding); where `reset` (bool, or per run [R]) the sum restarts
    at every non-zero reward: G_t = Σ_{k=t}^{τ_t} γ^{k−t} r_k, τ_t the first k ≥ t with r_k ≠ 0 (`rally` returns)."""
    m = _check(rewards, mask)
    # elementwise recursion, exact whatever the padding length; in numpy on time-major copies (a ufunc on these small
    # slices costs ~1 µs against torch's ~4 µs, and the loop is as long as the longest episode). Rewards are data:
    # no gradient flows through them.
    r = rewards.detach().permute(2, 0, 1).contiguous().numpy()
    mt = m.permute(2, 0, 1).contiguous().numpy()
    g = _gamma(gamma, rewards).numpy()
    rs = np.broadcast_to(torch.as_tensor(reset, dtype=torch.bool).reshape(-1, 1).numpy(), r.shape[1:])
    restart = bool(rs.any())
    out_t = np.zeros_like(r)
    acc = np.zeros_like(r[0])
    for t in range(r.shape[0] - 1, -1, -1):
        if restart:  # pg-pong: `if r[t] != 0: running_add = 0` (a non-zero reward ends a point)
            acc = np.where(rs & (r[t] != 0), 0.0, acc).astype(r.dtype, copy=False)
        acc = (r[t] + g * acc) * mt[t]
        out_t[t] = acc
    return torch.from_numpy(out_t).permute(1, 2, 0).contiguous()


def discounts(mask: Tensor, gamma: float | Tensor, dtype: torch.dtype) -> Tensor:
    """γ^t on valid steps (zero on padding), computed in float64 and rounded once to `dtype`."""
    m = _check(torch.zeros(mask.shape, dtype=dtype), mask)
    t = np.arange(mask.shape[2], dtype=np.float64)
    g = _gamma(gamma, torch.zeros(0, dtype=torch.float64)).numpy()
    return torch.from_numpy(np.power(g[..., None] if g.ndim else g, t).astype(np.float32)).to(dtype) * m


def signal_from_rtg(rtg: Tensor, mask: Tensor, gamma: float | Tensor, kind: Returns) -> Tensor:
    """The return signal x_{i,t} from the reward-to-go G_t: `rtg` G_t, `full` G_0, `gpomdp` γ^t G_t (valid steps);
    `rally` G_t itself, where `rtg` must then be the restarted sum (`reward_to_go(..., reset=True)`)."""
    if kind in ("rtg", "rally"):
        return rtg
    if kind == "full":
        return rtg[..., :1] * mask
    if kind == "gpomdp":
        return rtg * discounts(mask, gamma, rtg.dtype)
    raise ValueError(f"returns={kind!r}; allowed: full | rtg | gpomdp | rally")


def bootstrap_rewards(rewards: Tensor, mask: Tensor, last_values: Tensor, gamma: float | Tensor) -> Tensor:
    """r with γ·v_i added to the last valid reward of episode i, last_values v [R, N] (V(s_T) of an episode to be
    bootstrapped, zero otherwise): `reward_to_go` and `gae_advantages` of the result continue each episode by γ V(s_T)
    (module docstring)."""
    m = _check(rewards, mask)
    if last_values.shape != rewards.shape[:2]:
        raise ValueError(f"last_values must be [R, N] = {tuple(rewards.shape[:2])}, got {tuple(last_values.shape)}")
    lengths = m.sum(dim=-1).long()
    last = torch.nn.functional.one_hot((lengths - 1).clamp(min=0), rewards.shape[2]).to(rewards.dtype)
    last = last * (lengths > 0).to(rewards.dtype)[..., None]
    return rewards + _gamma(gamma, rewards) * last_values.to(rewards.dtype)[..., None] * last


def gae_advantages(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float | Tensor,
                   lam: float | Tensor) -> Tensor:
    """A^λ_t = Σ_{l≥0} (γλ)^l δ_{t+l}, δ_t = r_t + γ V(s_{t+1}) − V(s_t), per episode (zero on padding); V(s_{t+1}) is
    0 after an episode's last step (a bootstrapped episode carries γ V(s_T) in its rewards: `bootstrap_rewards`).
    values: V(s_t) on the same grid; γ and λ a number or per run [R]. By the recursion A_t = δ_t + γλ A_{t+1}."""
    m = _check(rewards, mask)
    if values.shape != rewards.shape:
        raise ValueError(f"values must have the rewards' shape {tuple(rewards.shape)}, got {tuple(values.shape)}")
    # in numpy on time-major copies, as `reward_to_go` (the loop is as long as the longest episode)
    r = rewards.detach().permute(2, 0, 1).contiguous().numpy()
    v = (values.detach().to(rewards.dtype) * m).permute(2, 0, 1).contiguous().numpy()
    mt = m.permute(2, 0, 1).contiguous().numpy()
    g = _gamma(gamma, rewards).numpy()
    gl = g * _gamma(lam, rewards).numpy()
    next_v = np.zeros_like(v)
    next_v[:-1] = v[1:]  # V(s_{t+1}); zero past the last step (the mask is zero there, so v is)
    delta = (r + g * next_v - v) * mt
    out_t = np.zeros_like(r)
    acc = np.zeros_like(r[0])
    for t in range(r.shape[0] - 1, -1, -1):
        acc = (delta[t] + gl * acc) * mt[t]
        out_t[t] = acc
    return torch.from_numpy(out_t).permute(1, 2, 0).contiguous()


def weights(rewards: Tensor, rtg: Tensor, mask: Tensor, gamma: float | Tensor, returns: Returns, baseline: Baseline,
            normalize: Normalize, values: Tensor | None = None, gae_lambda: float | Tensor = 1.0
            ) -> tuple[Tensor, Tensor]:
    """The trainer's and the probes' weights of every `returns` level → (w, target), from the rewards and their
    reward-to-go `rtg` on the same grid (both bootstrapped, if at all, by `bootstrap_rewards`).

    The Monte-Carlo levels: `weights_from_signal(signal_from_rtg(rtg, ...), ...)`. The GAE levels (baseline `value`,
    normalize `none` or `advantages`): x = A^λ (`gae`) or γ^t A^λ (`gae_gpomdp`) from `gae_advantages` with the
    critic's `values`; w = x, or x standardized (`advantages`); the target is G_t = `rtg`.
    """
    if returns not in GAE_RETURNS:
        return weights_from_signal(signal_from_rtg(rtg, mask, gamma, returns), mask, baseline, normalize, values)
    if baseline != "value" or values is None:
        raise ValueError(f"returns={returns!r} needs baseline='value' and the critic's values")
    adv = gae_advantages(rewards, values, mask, gamma, gae_lambda)
    return gae_weights(adv, mask, gamma, returns, normalize), rtg * _check(rtg, mask)


def gae_weights(adv: Tensor, mask: Tensor, gamma: float | Tensor, returns: Returns, normalize: Normalize) -> Tensor:
    """A GAE level's weights from its advantage A^λ (`gae_advantages`): x = A^λ (`gae`) or γ^t A^λ (`gae_gpomdp`);
    w = x (`none`) or x standardized (`advantages`)."""
    m = _check(adv, mask)
    if returns not in GAE_RETURNS:
        raise ValueError(f"returns={returns!r}; allowed: {' | '.join(GAE_RETURNS)}")
    x = adv if returns == "gae" else adv * discounts(mask, gamma, adv.dtype)
    if normalize == "advantages":
        return standardize(x, mask)
    if normalize == "none":
        return x * m
    raise ValueError(f"normalize={normalize!r} with returns={returns!r}; allowed: none | advantages")


def full_return(rewards: Tensor, mask: Tensor, gamma: float | Tensor) -> Tensor:
    """x_t = G_0 = Σ_k γ^k r_k at every valid step of the episode."""
    m = _check(rewards, mask)
    return reward_to_go(rewards, mask, gamma)[..., :1] * m


def return_signal(rewards: Tensor, mask: Tensor, gamma: float | Tensor, kind: Returns) -> Tensor:
    """The return signal x_{i,t}: `rtg` G_t (reward-to-go), `full` G_0 (the episode's return), `gpomdp` γ^t G_t,
    `rally` the reward-to-go restarted at every non-zero reward."""
    if kind not in ("rtg", "full", "gpomdp", "rally"):
        raise ValueError(f"returns={kind!r}; allowed: full | rtg | gpomdp | rally")
    _check(rewards, mask)
    return signal_from_rtg(reward_to_go(rewards, mask, gamma, reset=kind == "rally"), mask, gamma, kind)


def standardize(x: Tensor, mask: Tensor) -> Tensor:
    """(x − mean) / (std + 1e-8) over each run's valid steps; std is the sample std (n − 1); zero on padding."""
    m = _check(x, mask)
    n = m.sum(dim=(1, 2), keepdim=True)
    mean = (x * m).sum(dim=(1, 2), keepdim=True) / n.clamp(min=1)
    var = (((x - mean) * m) ** 2).sum(dim=(1, 2), keepdim=True) / (n - 1).clamp(min=1)
    return (x - mean) / (var.sqrt() + EPS) * m


def mean_baseline(x: Tensor, mask: Tensor) -> Tensor:
    """b_t = (1/N) Σ_j x_{j,t}: the batch's mean signal at step t (x is zero once an episode ended); on valid steps."""
    m = _check(x, mask)
    return (x * m).sum(dim=1, keepdim=True) / x.shape[1] * m


def loo_baseline(x: Tensor, mask: Tensor) -> Tensor:
    """b_{i,t} = (1/(N−1)) Σ_{j≠i} x_{j,t}: the leave-one-out mean at step t; on valid steps."""
    m = _check(x, mask)
    n = x.shape[1]
    if n < 2:
        raise ValueError("the leave-one-out baseline needs N >= 2 episodes per run")
    xm = x * m
    return (xm.sum(dim=1, keepdim=True) - xm) / (n - 1) * m


def policy_weights(rewards: Tensor, mask: Tensor, gamma: float | Tensor, returns: Returns, baseline: Baseline,
                   normalize: Normalize, values: Tensor | None = None,
                   gae_lambda: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
    """→ (w, target): w_{i,t} multiplies ∇log π(a_{i,t}|s_{i,t}); target is what a value baseline regresses on.

    x = return signal; `normalize='returns'` standardizes x; baseline b is subtracted (`value` uses `values`, the
    critic's V(s) on the same grid, treated as a constant); `normalize='advantages'` standardizes x − b. The GAE
    levels: see `weights`.
    """
    if returns in GAE_RETURNS:
        return weights(rewards, reward_to_go(rewards, mask, gamma), mask, gamma, returns, baseline, normalize, values,
                       gae_lambda)
    return weights_from_signal(return_signal(rewards, mask, gamma, returns), mask, baseline, normalize, values)


def weights_from_signal(x: Tensor, mask: Tensor, baseline: Baseline, normalize: Normalize,
                        values: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """`policy_weights` from a precomputed return signal x (see there) → (w, target)."""
    m = _check(x, mask)
    if normalize == "returns":
        x = standardize(x, mask)
    if baseline == "none":
        b = torch.zeros_like(x)
    elif baseline == "mean":
        b = mean_baseline(x, mask)
    elif baseline == "loo":
        b = loo_baseline(x, mask)
    elif baseline == "value":
        if values is None:
            raise ValueError("baseline='value' needs the critic's values")
        b = values.detach() * m
    else:
        raise ValueError(f"baseline={baseline!r}; allowed: none | mean | loo | value")
    w = (x - b) * m
    if normalize == "advantages":
        w = standardize(w, mask)
    elif normalize not in ("none", "returns"):
        raise ValueError(f"normalize={normalize!r}; allowed: none | returns | advantages")
    return w, x


def pg_terms(weights: Tensor, logp: Tensor, mask: Tensor) -> Tensor:
    """−w_{i,t} · log π(a_{i,t}|s_{i,t}) on valid steps: the REINFORCE surrogate, per element."""
    return -weights.detach() * logp * _check(logp, mask)


Reduction = Literal["episode", "step"]


def aggregation_divisor(aggregate: Reduction, n_episodes: Any, n_steps: Any) -> Any:
    """1/A of the aggregation `aggregate`: a batch's sum is divided by its N episodes (`episode`, the Monte-Carlo
    ∇J) or by its L valid steps (`step`). The one statement of that rule: the loss (`reduce`, the engine's chunked
    update) and the probes' directions take it from here; n_episodes, n_steps may be numbers or tensors."""
    if aggregate == "episode":
        return n_episodes
    if aggregate == "step":
        return n_steps
    raise ValueError(f"aggregate={aggregate!r}; allowed: episode | step")


def reduce(terms: Tensor, mask: Tensor, how: Reduction) -> Tensor:
    """Per-run reduction → [R]: `episode` = Σ_{i,t} / N (the Monte-Carlo ∇J), `step` = mean over valid steps."""
    m = _check(terms, mask)
    total = (terms * m).sum(dim=(1, 2))
    return total / aggregation_divisor(how, terms.shape[1], m.sum(dim=(1, 2)).clamp(min=1))
