"""Collect N complete episodes per run, for several runs at once, without autograd.

The result is padded `[k, N, T, ...]` tensors with a mask (True on real steps); `terminated` and `truncated` are
kept apart (invariant 4), and each episode's final observation s_T (what the env returned on its last step: the state
a truncated episode would continue from, for bootstrapping) is kept too. `Collector` steps every collecting run
together; runs join (`start`) and leave (when all of their N episodes have ended) at any step, so neither a run's
environment nor its random streams are touched by how long its batch-mates take or when they started. `collect` is
one batch of a fixed set of runs. Action noise comes from each run's own generator in fixed blocks of `NOISE_BLOCK`
steps of that run's batch.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..envs.spec import CohortEnv, EnvSpec
from .nets import Head, Params, forward_stacked, select

NOISE_BLOCK = 64  # steps of action noise drawn at once from a run's stream
DEFAULT_MAX_STEPS = 10_000  # episode cap for environments without a time limit (recorded as truncation)


@dataclass
class Batch:
    """Episodes of k runs: obs [k,N,T,D] float32, actions [k,N,T(,A)], rewards [k,N,T], mask [k,N,T];
    flags/lengths [k,N]; final_obs [k,N,D] float32, the observation the env returned on each episode's last step
    (s_T; None where a batch was built without it)."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor
    lengths: Tensor
    terminated: Tensor
    truncated: Tensor
    final_obs: Tensor | None = None

    def run(self, j: int) -> "Batch":
        """Run j's own episodes, cut to its own longest episode (so shapes depend on that run only)."""
        t = int(self.lengths[j].max())
        return Batch(self.obs[j: j + 1, :, :t], self.actions[j: j + 1, :, :t], self.rewards[j: j + 1, :, :t],
                     self.mask[j: j + 1, :, :t], self.lengths[j: j + 1], self.terminated[j: j + 1],
                     self.truncated[j: j + 1], None if self.final_obs is None else self.final_obs[j: j + 1])

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


class Collector:
    """Lockstep collection in which runs join and leave at any step: the engine's rollout.

    `start` resets some runs' N episodes (a seed and an action stream each); every `step` advances all collecting
    runs by one step in one batched forward pass and one `env.step`; a run leaves the step batch as soon as its N
    episodes have all ended, and `take` hands out its `Batch`. Runs therefore need not start together: the engine
    restarts a run right after its own update while its cohort-mates are still mid-batch, so a step is never spent
    on a run that is waiting for slower batch-mates, and neither a run's environment nor its random streams depend
    on when, or with whom, it is stepped. A started run holds a buffer slot until its batch is taken; each step is
    recorded at the run's own step index (row slot·capacity + t), and the buffers grow with the number of runs
    collecting at once and with the longest batch seen.
    """

    def __init__(self, env: CohortEnv, params: Params, activation: str, head: Head, *, greedy: bool = False,
                 max_steps: int | None = None):
        spec = env.spec
        self.env, self.params, self.activation, self.head, self.greedy = env, params, activation, head, greedy
        self.n = env.num_envs
        self.cap = max_steps or spec.max_episode_steps or DEFAULT_MAX_STEPS
        self.low, self.high, self.amap = action_tensors(spec, head)
        self.slot: dict[int, int] = {}  # cohort position → its buffer slot, from `start` to `take`
        self.free: list[int] = []
        self.n_slots = 0  # slots the buffers hold
        self.length = np.zeros(0, dtype=np.int64)  # steps taken in each slot's current batch
        self.gens: list[np.random.Generator | None] = []
        self.noise = torch.zeros(0, self.n, head.noise_dim)  # row slot·NOISE_BLOCK + t % NOISE_BLOCK
        self.finished: dict[int, int] = {}  # position → length of its completed batch, until taken
        self.capacity = min(64, self.cap)  # steps per slot
        self.bufs: list[Tensor] = []  # obs, actions, rewards, mask, terminated [n_slots·capacity, N, ...]
        # the observations the env returned on a batch's last step [n_slots, N, D]: the final observations s_T of the
        # episodes that end there (an episode that ends earlier has its s_T recorded as the next step's observation)
        self.last = torch.zeros(0, self.n, spec.obs_dim, dtype=getattr(torch, spec.obs_dtype))
        # the collecting runs, in step order, and their per-step state aligned with them
        self.runs = np.zeros(0, dtype=np.int64)
        self.slots = np.zeros(0, dtype=np.int64)
        self.obs_dtype = getattr(torch, spec.obs_dtype)  # kept so in the buffers; float32 for the policy (exact)
        self.obs = torch.zeros(0, self.n, spec.obs_dim, dtype=self.obs_dtype)
        self.done = np.zeros((0, self.n), dtype=bool)
        self._pol: Params | None = None  # params gathered for `runs`
        self._grad = any(p.requires_grad for p in params)  # plain tensors need no `no_grad` (it costs ~5 µs a step)
        self._pending: list[tuple[np.ndarray, tuple[Tensor, ...]]] = []  # steps recorded, not yet in the buffers

    @property
    def collecting(self) -> int:
        return len(self.runs)

    def start(self, runs: Sequence[int], seeds: Sequence[int], noise_gens: Sequence[np.random.Generator]) -> None:
        """Reset the N episodes of `runs` (cohort positions, neither collecting nor waiting to be taken) and add them
        to the step batch."""
        if not len(runs):
            return
        runs = np.asarray(runs, dtype=np.int64)
        for r in runs.tolist():
            if r in self.slot:
                raise ValueError(f"run {r} is already collecting or has a batch not yet taken")
            if not self.free:
                self._add_slots()
            self.slot[r] = self.free.pop()
        slots = np.array([self.slot[r] for r in runs.tolist()], dtype=np.int64)
        obs = self.env.reset(runs, np.asarray(seeds, dtype=np.int64))
        for s, g in zip(slots.tolist(), noise_gens):
            self.gens[s] = g
        self.length[slots] = 0
        self.runs, self.slots = np.concatenate([self.runs, runs]), np.concatenate([self.slots, slots])
        self.obs = torch.cat([self.obs, obs])
        self.done = np.concatenate([self.done, np.zeros((len(runs), self.n), dtype=bool)])
        self._pol = None

    def step(self) -> list[int]:
        """One step of every collecting run → the runs whose N episodes have now all ended (they leave the batch)."""
        head, n, slots = self.head, self.n, self.slots
        t = self.length[slots]
        t_max = int(t.max())
        if t_max >= self.capacity:
            self._flush()
            self._relayout(self.n_slots, min(max(t_max + 1, 2 * self.capacity), max(t_max + 1, self.cap)))
        if not self.greedy:
            phase = t % NOISE_BLOCK
            for s in slots[phase == 0].tolist():
                block = head.draw_noise(self.gens[s], NOISE_BLOCK, n)
                self.noise[s * NOISE_BLOCK: (s + 1) * NOISE_BLOCK] = torch.from_numpy(block)
        if self._pol is None:
            self._pol = select(self.params, torch.from_numpy(self.runs))
        with torch.no_grad() if self._grad else contextlib.nullcontext():
            out = forward_stacked(self._pol, self.obs.float(), self.activation)
            if self.greedy:
                act = head.greedy(out)
            else:
                act = head.sample(out, self.noise.index_select(0, torch.from_numpy(slots * NOISE_BLOCK + phase)))
        o, r, term, trunc = self.env.step(self.runs, to_env_actions(head, act, self.low, self.high, self.amap))
        # per-episode flags in numpy (cheaper than torch on these small arrays; `.numpy()` shares memory)
        term, ended = term.numpy(), (term | trunc).numpy()
        if t_max + 1 >= self.cap:
            ended = ended | (t + 1 >= self.cap)[:, None]
        alive = ~self.done
        if not self.bufs:
            self._make_buffers(act.dtype)
        rew = r.numpy().astype(np.float32) * alive  # float32 · bool, as torch's `r.float() * alive`
        self._pending.append((slots * self.capacity + t, (self.obs, act, torch.from_numpy(rew),
                                                            torch.from_numpy(alive), torch.from_numpy(term & alive))))
        self.done |= ended
        self.length[slots] = t + 1
        fin = self.done.all(axis=1)
        if not fin.any():
            self.obs = o
            return []
        ended_runs = self.runs[fin].tolist()
        self.last[torch.from_numpy(slots[fin])] = o[torch.from_numpy(np.flatnonzero(fin))]
        for r, s in zip(ended_runs, slots[fin].tolist()):
            self.finished[r] = int(self.length[s])
        keep = ~fin
        rows = torch.from_numpy(np.flatnonzero(keep))  # index_select: no boolean-mask `nonzero` per tensor
        self.runs, self.slots = self.runs[keep], slots[keep]
        self.obs, self.done = o.index_select(0, rows), self.done[keep]
        self._pol = [p.index_select(0, rows) for p in self._pol]
        return ended_runs

    def take(self, runs: Sequence[int]) -> Batch:
        """The completed batches of `runs` (in that order), padded to the longest; their slots are cleared and freed."""
        self._flush()
        lengths = [self.finished.pop(int(r)) for r in runs]
        t = max(lengths)
        slots = [self.slot.pop(int(r)) for r in runs]
        idx = torch.tensor(slots, dtype=torch.long)
        out = []
        for b in self.bufs:
            per_slot = b.view(self.n_slots, self.capacity, *b.shape[1:])
            out.append(per_slot[idx, :t].transpose(1, 2).contiguous())  # [k, N, t, ...]
            per_slot[idx, :t] = 0
        self.free.extend(slots)
        obs, act, rew, mask, term = out
        lengths_ep = mask.sum(dim=-1)
        final = self._final_obs(obs, lengths_ep, torch.tensor(lengths), idx)
        obs = obs.float()  # a no-op for float32 observations
        terminated = term.any(dim=-1)
        return Batch(obs, act, rew, mask, lengths_ep, terminated, ~terminated, final)

    def _final_obs(self, obs: Tensor, lengths: Tensor, batch_lengths: Tensor, idx: Tensor) -> Tensor:
        """Each episode's final observation s_T [k, N, D] float32, the observation the env returned on its last step
        (step L − 1): for an episode that ended before its batch did, the observation recorded at step L (the runs
        keep stepping, and every backend returns s_T on the last step, an autoreset coming only at the next); for
        one that ended on the batch's last step, the one kept then (`last`). obs [k, N, t, D]; lengths [k, N]."""
        at = lengths.clamp(max=obs.shape[2] - 1)
        recorded = obs.gather(2, at[:, :, None, None].expand(-1, -1, 1, obs.shape[-1]))[:, :, 0]
        on_last = (lengths == batch_lengths[:, None])[..., None]
        return torch.where(on_last, self.last[idx], recorded).float()

    # ---- buffers --------------------------------------------------------------------------------------------------
    def _add_slots(self) -> None:
        """Double the slots (at least one more): lengths, generators, noise and step buffers."""
        old, new = self.n_slots, max(1, 2 * self.n_slots)
        self._flush()
        self.length = np.concatenate([self.length, np.zeros(new - old, dtype=np.int64)])
        self.gens += [None] * (new - old)
        self.noise = torch.cat([self.noise, torch.zeros((new - old) * NOISE_BLOCK, *self.noise.shape[1:])])
        self.last = torch.cat([self.last, self.last.new_zeros((new - old, *self.last.shape[1:]))])
        self.free.extend(range(new - 1, old - 1, -1))  # lowest slot first
        if self.bufs:
            self._relayout(new, self.capacity)
        self.n_slots = new

    def _make_buffers(self, act_dtype: torch.dtype) -> None:
        """The step buffers, made at the first step, once the actions' dtype is known."""
        spec, rows = self.env.spec, self.n_slots * self.capacity
        self.bufs = [torch.zeros((rows, self.n, *tail), dtype=dt) for dt, tail in zip(
            (self.obs_dtype, act_dtype, torch.float32, torch.bool, torch.bool),
            ((spec.obs_dim,), self.head.action_shape(), (), (), ()))]

    def _relayout(self, n_slots: int, capacity: int) -> None:
        """Buffers for n_slots × capacity rows, keeping what is recorded (call `_flush` first)."""
        old, old_slots, old_cap = self.bufs, self.n_slots, self.capacity
        self.bufs = [b.new_zeros((n_slots * capacity, *b.shape[1:])) for b in old]
        for b_new, b_old in zip(self.bufs, old):
            b_new.view(n_slots, capacity, *b_new.shape[1:])[:old_slots, :old_cap] = b_old.view(
                old_slots, old_cap, *b_old.shape[1:])
        self.capacity = capacity

    def _flush(self) -> None:
        """Write the recorded steps into the buffers (one `index_copy_` per field for many steps)."""
        if not self._pending:
            return
        rows = torch.from_numpy(np.concatenate([p[0] for p in self._pending]))
        for f, buf in enumerate(self.bufs):
            buf.index_copy_(0, rows, torch.cat([p[1][f] for p in self._pending]))
        self._pending = []


def collect(env: CohortEnv, runs: np.ndarray, seeds: Sequence[int], params: Params, activation: str, head: Head,
            noise_gens: Sequence[np.random.Generator], *, greedy: bool = False,
            max_steps: int | None = None) -> Batch:
    """One batch of N complete episodes for each of `runs` (cohort positions), with the cohort's policy `params`.

    seeds[j] resets run runs[j]; noise_gens[j] is that run's action stream (unused when greedy).
    """
    runs = [int(r) for r in np.asarray(runs)]
    col = Collector(env, params, activation, head, greedy=greedy, max_steps=max_steps)
    col.start(runs, seeds, noise_gens)
    while col.collecting:
        col.step()
    return col.take(runs)
