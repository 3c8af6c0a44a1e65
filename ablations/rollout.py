"""Collect N complete episodes per run, for several runs in lockstep, without autograd.

The result is padded `[k, N, T, ...]` tensors with a mask (True on real steps); `terminated` and `truncated` are
kept apart (invariant 4). A run leaves the per-step batch as soon as all of its N episodes have ended (compaction),
so neither its environment nor its random streams are touched by how long its batch-mates take. Action noise comes
from each run's own generator in fixed blocks of `NOISE_BLOCK` steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .envs import CohortEnv, EnvSpec
from .nets import Head, Params, forward_stacked, select

NOISE_BLOCK = 64  # steps of action noise drawn at once from a run's stream
DEFAULT_MAX_STEPS = 10_000  # episode cap for environments without a time limit (recorded as truncation)


@dataclass
class Batch:
    """Episodes of k runs: obs [k,N,T,D], actions [k,N,T(,A)], rewards [k,N,T], mask [k,N,T]; flags/lengths [k,N]."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor
    lengths: Tensor
    terminated: Tensor
    truncated: Tensor

    def run(self, j: int) -> "Batch":
        """Run j's own episodes, cut to its own longest episode (so shapes depend on that run only)."""
        t = int(self.lengths[j].max())
        return Batch(self.obs[j: j + 1, :, :t], self.actions[j: j + 1, :, :t], self.rewards[j: j + 1, :, :t],
                     self.mask[j: j + 1, :, :t], self.lengths[j: j + 1], self.terminated[j: j + 1],
                     self.truncated[j: j + 1])

    def episode_returns(self) -> Tensor:
        """Undiscounted episode returns [k, N] (float64)."""
        return (self.rewards.double() * self.mask).sum(dim=-1)


def to_env_actions(head: Head, actions: Tensor, low: Tensor | None, high: Tensor | None,
                   action_map: Tensor | None) -> Tensor:
    """Policy actions → what the env steps with: clipped Box actions, mapped Bernoulli choices."""
    if head.kind == "gaussian":
        return torch.maximum(torch.minimum(actions, high), low)
    if action_map is not None:  # a Bernoulli choice between two actions of a Discrete space
        return action_map[actions[..., 0].long()]
    if head.kind == "bernoulli":
        return actions.to(torch.int8)
    return actions


def action_tensors(spec: EnvSpec, head: Head) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """(low, high, action_map) for `to_env_actions`: Box bounds of a Gaussian head, a Bernoulli choice's actions."""
    low = high = amap = None
    if head.kind == "gaussian":
        low = torch.tensor(spec.action_low, dtype=torch.float32)
        high = torch.tensor(spec.action_high, dtype=torch.float32)
    if spec.action_map is not None:
        amap = torch.tensor(spec.action_map, dtype=torch.long)
    return low, high, amap


def collect(env: CohortEnv, runs: np.ndarray, seeds: Sequence[int], params: Params, activation: str, head: Head,
            noise_gens: Sequence[np.random.Generator], *, greedy: bool = False,
            max_steps: int | None = None) -> Batch:
    """One batch of N complete episodes for each of `runs` (cohort positions), with the cohort's policy `params`.

    seeds[j] resets run runs[j]; noise_gens[j] is that run's action stream (unused when greedy).
    """
    spec = env.spec
    runs = np.asarray(runs)
    k, n = len(runs), env.num_envs
    cap_steps = max_steps or spec.max_episode_steps or DEFAULT_MAX_STEPS
    runs_t = torch.as_tensor(runs, dtype=torch.long)
    low, high, amap = action_tensors(spec, head)

    # Steps are kept per segment (a stretch of time with a constant set of active runs) and written once at the end.
    segments: list[tuple[Tensor, int, list[Tensor], list[Tensor], list[Tensor], list[Tensor], list[Tensor]]] = []
    active = torch.arange(k)  # positions (0..k-1) of runs still collecting
    done = torch.zeros(k, n, dtype=torch.bool)  # of the active runs
    noise = torch.zeros(k, NOISE_BLOCK, n, head.noise_dim)  # of the active runs
    obs = env.reset(runs, np.asarray(seeds, dtype=np.int64))
    pol = select(params, runs_t)
    seg: tuple[list[Tensor], ...] = ([], [], [], [], [])
    seg_start = 0
    t = 0
    with torch.no_grad():
        while True:
            if not greedy and t % NOISE_BLOCK == 0:
                for j, g in enumerate(active.tolist()):
                    noise[j] = torch.from_numpy(head.draw_noise(noise_gens[g], NOISE_BLOCK, n))
            out = forward_stacked(pol, obs, activation)
            act = head.greedy(out) if greedy else head.sample(out, noise[:, t % NOISE_BLOCK])
            o, r, term, trunc = env.step(runs[active.numpy()], to_env_actions(head, act, low, high, amap))
            alive = ~done
            if t + 1 >= cap_steps:
                trunc = torch.ones_like(trunc)
            ended = alive & (term | trunc)
            for lst, x in zip(seg, (obs, act, r.float() * alive, alive, alive & term)):
                lst.append(x)
            done = done | ended
            t += 1
            finished = done.all(dim=1)
            if bool(finished.any()):
                segments.append((active, seg_start, *seg))
                seg, seg_start = ([], [], [], [], []), t
                keep = ~finished
                if not bool(keep.any()):
                    break
                active, done, noise, o = active[keep], done[keep], noise[keep], o[keep]
                pol = select(params, runs_t[active])
            obs = o

    obs_buf = torch.zeros(k, n, t, spec.obs_dim)
    act_buf = torch.zeros((k, n, t, *head.action_shape()), dtype=segments[0][3][0].dtype)
    rew_buf = torch.zeros(k, n, t)
    mask_buf = torch.zeros(k, n, t, dtype=torch.bool)
    term_buf = torch.zeros(k, n, t, dtype=torch.bool)
    for idx, t0, *lists in segments:
        t1 = t0 + len(lists[0])
        for buf, lst in zip((obs_buf, act_buf, rew_buf, mask_buf, term_buf), lists):
            buf[idx, :, t0:t1] = torch.stack(lst, dim=2)
    terminated = term_buf.any(dim=-1)
    return Batch(obs_buf, act_buf, rew_buf, mask_buf, mask_buf.sum(dim=-1), terminated, ~terminated)
