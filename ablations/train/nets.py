"""Cohort networks: one MLP per run with weights stacked `[R, in, out]`, and the policy heads.

Parameters are plain tensors (a list `[W0, b0, W1, b1, ...]`, each with a leading run dimension) so that Adam,
clipping and learning rates can be per run, and a single run's slice can be used with `torch.func`. Two forwards:
`forward_stacked` (rollout: all active runs in one `baddbmm` per layer) and `forward_single` (update and probes: one
run's own rows, so shapes never depend on batch-mates).

Policy heads: Categorical (logits), diagonal Gaussian (mean and state-dependent log-std, clamped to
[LOG_STD_MIN, LOG_STD_MAX]), Bernoulli (one logit per binary choice). The value network is separate from the
policy (its own hidden layers, `RunConfig.critic_hidden`), so a `value` baseline never changes the policy's features.
`hidden = ()` makes the network one affine layer: a linear policy (logits = x·W + b) or a linear critic.

The initial policy (`init_policy`): every layer drawn by `init_mlp` (the output layer scaled by 0.01: a near-uniform
policy); a run with `init_logits` / `init_log_std` then gets its output layer's weights set to 0 and its bias to
those values (`initial_bias`), so its initial policy is exactly the given one at every observation. The draws are
the same either way: the hidden layers and the critic do not depend on the initial policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import RunConfig
from ..envs.registry import check_policy_init
from ..envs.spec import EnvSpec, PolicyKind

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}

Params = list[Tensor]


def init_mlp(sizes: Sequence[int], gens: Sequence[torch.Generator], out_gain: float = 1.0) -> Params:
    """Stacked MLP parameters for len(gens) runs; run r's weights come from gens[r] only.

    W ~ U(−1/√in, 1/√in) (torch's `nn.Linear` bound), biases zero, the last layer scaled by `out_gain`.
    """
    params: Params = []
    layers = list(zip(sizes[:-1], sizes[1:]))
    per_run = []
    for g in gens:
        ws = []
        for li, (fan_in, fan_out) in enumerate(layers):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound
            ws.append(w * out_gain if li == len(layers) - 1 else w)
        per_run.append(ws)
    for li, (_, fan_out) in enumerate(layers):
        params.append(torch.stack([ws[li] for ws in per_run]))
        params.append(torch.zeros(len(gens), fan_out))
    return params


def forward_stacked(params: Params, x: Tensor, activation: str) -> Tensor:
    """x [k, M, in] with params gathered for the same k runs → [k, M, out]."""
    act = ACTIVATIONS[activation]
    n = len(params) // 2
    for li in range(n):
        w, b = params[2 * li], params[2 * li + 1]
        if w.shape[-1] == 1:  # a width-1 bmm takes a gemv path whose bits depend on k: pad to width 2
            x = torch.baddbmm(F.pad(b, (0, 1)).unsqueeze(1), x, F.pad(w, (0, 1)))[..., :1]
        else:
            x = torch.baddbmm(b.unsqueeze(1), x, w)
        if li < n - 1:
            x = act(x)
    return x


def forward_single(params: Sequence[Tensor], x: Tensor, activation: str) -> Tensor:
    """One run's parameters (no run dimension) on x [..., in] → [..., out]."""
    act = ACTIVATIONS[activation]
    n = len(params) // 2
    for li in range(n):
        x = x @ params[2 * li] + params[2 * li + 1]
        if li < n - 1:
            x = act(x)
    return x


def select(params: Params, idx: Tensor | None) -> Params:
    return params if idx is None else [p.index_select(0, idx) for p in params]


@dataclass(frozen=True)
class Head:
    """A policy head: how network outputs become a distribution over actions."""

    kind: PolicyKind
    act_dim: int

    @property
    def out_dim(self) -> int:
        return 2 * self.act_dim if self.kind == "gaussian" else self.act_dim

    @property
    def noise_dim(self) -> int:
        return 1 if self.kind == "categorical" else self.act_dim

    def action_shape(self) -> tuple[int, ...]:
        return () if self.kind == "categorical" else (self.act_dim,)

    def draw_noise(self, gen: np.random.Generator, steps: int, n: int) -> np.ndarray:
        """Noise for `steps` steps of n episodes: uniforms (Categorical inverse CDF, Bernoulli) or N(0,1) (Gaussian)."""
        if self.kind == "gaussian":
            return gen.standard_normal((steps, n, self.noise_dim), dtype=np.float32)
        return gen.random((steps, n, self.noise_dim), dtype=np.float32)

    def _gaussian(self, out: Tensor) -> tuple[Tensor, Tensor]:
        return out[..., : self.act_dim], out[..., self.act_dim:].clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, out: Tensor, noise: Tensor) -> Tensor:
        """Actions from outputs and pre-drawn noise [..., noise_dim] (elementwise per episode: no shared random
        state)."""
        if self.kind == "categorical":
            cdf = torch.softmax(out, dim=-1).cumsum(dim=-1)
            return (noise > cdf[..., :-1]).sum(dim=-1)
        if self.kind == "gaussian":
            mean, log_std = self._gaussian(out)
            return mean + log_std.exp() * noise
        return (noise < torch.sigmoid(out)).to(out.dtype)

    def greedy(self, out: Tensor) -> Tensor:
        if self.kind == "categorical":
            return out.argmax(dim=-1)
        if self.kind == "gaussian":
            return self._gaussian(out)[0]
        return (out > 0).to(out.dtype)

    def log_prob(self, out: Tensor, actions: Tensor) -> Tensor:
        """log π(a|s), summed over action dimensions → out.shape[:-1]."""
        if self.kind == "categorical":
            return torch.log_softmax(out, dim=-1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        if self.kind == "gaussian":
            mean, log_std = self._gaussian(out)
            z = (actions - mean) * torch.exp(-log_std)
            return (-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)
        # Bernoulli: a·log σ(l) + (1−a)·log σ(−l) = −BCEWithLogits(l, a)
        return (actions * F.logsigmoid(out) + (1 - actions) * F.logsigmoid(-out)).sum(dim=-1)

    def distribution(self, out: Tensor) -> dict[str, Tensor]:
        """The distribution the outputs `out` [..., out_dim] define, as named columns (each out.shape[:-1]), the ones
        `sample` draws from: Categorical `p(a=i)` per action (softmax); Bernoulli `p(x_i=1)` per binary choice
        (sigmoid); Gaussian `mean_i` and `std_i` per action dimension (exp of the clamped log-std; before clipping
        to the action bounds)."""
        if self.kind == "categorical":
            p = torch.softmax(out, dim=-1)
            return {f"p(a={i})": p[..., i] for i in range(self.act_dim)}
        if self.kind == "bernoulli":
            p = torch.sigmoid(out)
            return {f"p(x_{i}=1)": p[..., i] for i in range(self.act_dim)}
        mean, log_std = self._gaussian(out)
        std = log_std.exp()
        return {**{f"mean_{i}": mean[..., i] for i in range(self.act_dim)},
                **{f"std_{i}": std[..., i] for i in range(self.act_dim)}}

    def entropy(self, out: Tensor) -> Tensor:
        """H(π(·|s)) → out.shape[:-1]."""
        if self.kind == "categorical":
            logp = torch.log_softmax(out, dim=-1)
            return -(logp.exp() * logp).sum(dim=-1)
        if self.kind == "gaussian":
            log_std = self._gaussian(out)[1]
            return (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(dim=-1)
        p = torch.sigmoid(out)
        return (F.binary_cross_entropy_with_logits(out, p, reduction="none")).sum(dim=-1)


def head_for(spec: EnvSpec) -> Head:
    return Head(spec.kind, spec.act_dim)


def policy_sizes(spec: EnvSpec, hidden: Sequence[int]) -> list[int]:
    return [spec.obs_dim, *hidden, head_for(spec).out_dim]


def value_sizes(spec: EnvSpec, hidden: Sequence[int]) -> list[int]:
    return [spec.obs_dim, *hidden, 1]


def initial_bias(spec: EnvSpec, cfg: RunConfig) -> Tensor | None:
    """The output layer's bias of `cfg`'s initial policy (`[out_dim]`), or None for the default draw: Categorical and
    Bernoulli: `init_logits`; Gaussian: zeros for the mean, then `init_log_std`. Raise `ConfigError` when the lengths
    do not fit the env's actions (`envs.registry.check_policy_init`)."""
    check_policy_init(cfg, spec)
    if cfg.init_logits is not None:
        return torch.tensor(cfg.init_logits, dtype=torch.float32)
    if cfg.init_log_std is not None:
        return torch.cat([torch.zeros(spec.act_dim), torch.tensor(cfg.init_log_std, dtype=torch.float32)])
    return None


def init_policy(spec: EnvSpec, configs: Sequence[RunConfig], gens: Sequence[torch.Generator]) -> Params:
    """The stacked policies of `configs` (sharing `hidden`): `init_mlp` with out_gain 0.01, then each run with an
    initial policy gets zero output weights and its `initial_bias` (the same draws from gens[r] either way)."""
    params = init_mlp(policy_sizes(spec, configs[0].hidden), gens, out_gain=0.01)
    for r, cfg in enumerate(configs):
        bias = initial_bias(spec, cfg)
        if bias is not None:
            params[-2][r] = 0.0
            params[-1][r] = bias
    return params
