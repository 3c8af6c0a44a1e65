"""The one training loop: a cohort of R runs trained together (rollout → estimators → update; probes at checkpoints).

Runs in a cohort never interact (invariant 2). The rollout batches every collecting run's forward pass and env step,
but does not hold the runs in lockstep: a run is updated as soon as its own batch has ended (in groups, with the
other runs waiting at that moment) and starts its next batch at once (`Trainer.iterate`). The update cuts
each run's valid steps into fixed-size chunks (`ablations.train.chunks`), so one batched pass serves the whole cohort while
every shape a run touches depends on that run only; the per-run losses are summed so that one backward pass yields
every run's own gradient; then each run is clipped, checked and stepped with its own optimizer (`optimizer`: Adam,
RMSprop or SGD; `PerRunOptimizer`), state and learning rate. A
run whose loss or gradient is not finite is marked `diverged` and leaves the cohort.

Per run and update, the policy loss is the REINFORCE surrogate −A Σ_{i,t} w_{i,t} log π(a_{i,t}|s_{i,t}) minus
β·A Σ_{i,t} H(π(·|s_{i,t})), one aggregation A for both terms (so β is one coefficient of one objective):
`aggregate = episode` (the default) A = 1/N, the Monte-Carlo form whose expectation is the documented one (∇J_γ for
`full`/`gpomdp` with `none`/`loo`, (1 − 1/N)·∇J_γ with `mean`; the entropy term is then the gradient of β·E[Σ_t H_t],
the entropy summed along an episode); `aggregate = step` A = 1/L, L the batch's valid steps (the common "mean over
the batch" loss). 1/L is random and correlated with the episodes whenever their length depends on the actions, so
the step form's expectation is parallel to no ∇J and a baseline changes it (tests/train/test_exact_gradient.py
measures both against an exact ∇J). The critic (baseline
`value`) is fitted afterwards by `value_iters` full-batch Adam steps on the mean squared error to the return signal,
and is used detached. `run_update` is the plain per-run statement of the same math, the reference the tests hold the
chunked path to.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from . import estimators as est
from ..config import RunConfig
from .chunks import CHUNK_ROWS, Chunks
from .cohort import Cohort, RunState
from ..envs.registry import describe, make_cohort_env
from .nets import Head, Params, forward_single, forward_stacked, head_for, init_mlp, policy_sizes, select, value_sizes
from ..probes.variance import probe_env, run_probe
from .rollout import Batch, Collector, collect
from .seeding import draw_seed, run_streams

BETAS = (0.9, 0.999)
#: A waiting run is updated once this fraction of the cohort's running runs wait (see `Trainer.iterate`).
UPDATE_FRACTION = 0.25
#: Most runs updated in one batched pass: the update's activations and gathered weights grow with it (runs whose
#: batches end at the same step, e.g. every CartPole run once all episodes last 500 steps, are updated in slices).
MAX_UPDATE_GROUP = 32
#: Most probe pools collected at once (each holds K×N episodes in the rollout buffers until it is analysed).
PROBE_WAVE = 6
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


@dataclass
class CohortResult:
    runs: list[dict[str, Any]]
    curves: list[dict[str, Any]]
    probes: list[dict[str, Any]]
    wall_s: dict[str, float]
    policies: dict[str, list[np.ndarray]] = field(default_factory=dict)  # run_id → final policy parameters (no run dim)


@dataclass
class ValueFit:
    """What the critic regresses on after an update: flat rows and, per value run, (r, offset, count, targets)."""

    rows_obs: Tensor
    runs: list[tuple[int, int, int, Tensor]]


@dataclass
class PolicyStep:
    grads: list[Tensor]  # stacked [R, ...] policy gradients of the loss (zero for runs not in the update)
    policy_loss: list[float]  # per active run
    entropy: list[float]
    fit: ValueFit


@dataclass
class RunUpdate:
    """What one run's update produced (before the optimizer step)."""

    loss: Tensor
    policy_loss: float
    entropy: float  # mean entropy over the valid steps, whatever the aggregation
    rows: Tensor  # the run's valid observations [L, D]
    target_rows: Tensor  # value targets on those rows [L]


def _grid(mask: Tensor, rows: Tensor) -> Tensor:
    """Scatter per-valid-step values [L] back onto the [1, N, T] grid (zero on padding); differentiable in rows."""
    return torch.zeros(mask.shape, dtype=rows.dtype).masked_scatter(mask, rows)


def run_update(cfg: RunConfig, head: Head, activation: str, pol: Sequence[Tensor], val: Sequence[Tensor],
               b: Batch, rtg: Tensor) -> RunUpdate:
    """One run's loss on its own batch b ([1, N, T_r] tensors) and its reward-to-go `rtg` on the same grid.

    pol/val: that run's parameters (no run dimension).
    """
    mask = b.mask
    rows = b.obs[mask]  # [L, D] in (episode, step) order
    out = forward_single(pol, rows, activation)
    logp = _grid(mask, head.log_prob(out, b.actions[mask]))
    ent = _grid(mask, head.entropy(out))
    values = None
    if cfg.baseline == "value":
        with torch.no_grad():
            values = _grid(mask, forward_single(val, rows, activation)[:, 0])
    x = est.signal_from_rtg(rtg, mask, cfg.gamma, cfg.returns)  # = est.return_signal(b.rewards, mask, γ, returns)
    w, target = est.weights_from_signal(x, mask, cfg.baseline, cfg.normalize, values)
    pl = est.reduce(est.pg_terms(w, logp, mask), mask, cfg.aggregate)[0]
    h = est.reduce(ent, mask, cfg.aggregate)[0]
    loss = pl - cfg.entropy_coef * h if cfg.entropy_coef > 0 else pl
    h_step = est.reduce(ent.detach(), mask, "step")[0]  # curves.csv's `entropy`: the mean over valid steps
    return RunUpdate(loss, float(pl.detach()), float(h_step), rows, target[mask].detach())


def _grads(loss: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    """∂loss/∂params, zeros for parameters the loss does not reach."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _per_run_norms(grads: Sequence[Tensor], rows: Sequence[int]) -> Tensor:
    """‖g_r‖ over all parameters of each run r in `rows` → [len(rows)] (float64 accumulation; a run's norm does not
    depend on which other rows are reduced with it)."""
    idx = torch.tensor(rows, dtype=torch.long)
    sq = sum(g.index_select(0, idx).reshape(len(rows), -1).double().pow(2).sum(dim=1) for g in grads)
    return sq.sqrt()


def _finite(x: float) -> bool:
    return math.isfinite(x)


class Trainer:
    """Trains one cohort. Use `train_cohort` unless you need the intermediate state (probes, tests)."""

    def __init__(self, configs: Sequence[RunConfig]):
        configs = list(configs)
        if not configs:
            raise ValueError("a cohort needs at least one run")
        key = configs[0].cohort_key()
        for c in configs:
            if c.cohort_key() != key:
                raise ValueError(f"run {c.run_id} cannot share a cohort with {configs[0].run_id}: "
                                 f"cohort keys differ ({c.cohort_key()} vs {key})")
        spec = describe(configs[0].env_id, configs[0].preprocess)
        head = head_for(spec)
        streams = [run_streams(c.seed) for c in configs]
        hidden = configs[0].hidden
        gens = [s.init for s in streams]
        policy = init_mlp(policy_sizes(spec, hidden), gens, out_gain=0.01)
        value = init_mlp(value_sizes(spec, hidden), gens, out_gain=1.0)
        self.cohort = Cohort(configs, spec, head, make_cohort_env(configs, spec=spec), policy, value,
                             [RunState(c, s) for c, s in zip(configs, streams)])
        self.popt = PerRunOptimizer.for_policy(policy, configs)
        self.vopt = PerRunAdam(value, [c.value_lr for c in configs])
        self.probe_rows: list[dict[str, Any]] = []
        self._probes: tuple[Collector, Params, Params] | None = None  # pool collector, frozen policy and critic
        self._probing: dict[int, tuple[int, int]] = {}  # run → (update, env steps) of its pool, queued or in flight
        self._queued: list[int] = []  # runs whose pools start when the pools in flight have ended
        self.max_grad_norm = np.array([c.max_grad_norm or math.inf for c in configs])

    # -- the loop -------------------------------------------------------------------------------------------------
    def active(self) -> list[int]:
        return [r for r, s in enumerate(self.cohort.runs) if s.status == "running"]

    def train(self, on_update: Callable[[int], None] | None = None) -> None:
        for steps in self.iterate():
            if on_update is not None:
                on_update(steps)
        self.evaluate()

    def iterate(self) -> Iterator[int]:
        """Train every run to the end of its budget, yielding the env steps of each group of updates.

        The runs do not wait for each other: the rollout steps every run that is collecting (`rollout.Collector`);
        a run whose N episodes have ended waits, out of the step batch, until `UPDATE_FRACTION` of the running runs
        (or all that are left) are waiting, then they are updated together and start their next batch at once. A
        run's numbers do not depend on when or with whom it is updated (invariant 1), only the speed does: batch-mates
        are never stepped for the sake of one long episode, and updates still batch across runs. Probe pools are
        collected the same way, alongside training, from a frozen copy of each probed run's checkpoint parameters.
        """
        co = self.cohort
        self._probe_start(self.active(), 0)
        col = Collector(co.env, co.policy, co.activation, co.head)
        self._start(col, self.active())
        ready: list[int] = []
        while col.collecting or ready:
            if col.collecting:
                ready += col.step()
            if ready and (not col.collecting or len(ready) >= UPDATE_FRACTION * (col.collecting + len(ready))):
                ready.sort()
                for lo in range(0, len(ready), MAX_UPDATE_GROUP):  # bounded groups: bounded update memory
                    group = ready[lo: lo + MAX_UPDATE_GROUP]
                    steps = self._apply(group, col.take(group))
                    self._start(col, [r for r in group if co.runs[r].status == "running"])
                    yield steps
                ready = []
            self._probe_step()
        while self._probe_step():
            pass

    # -- probes: pools collected alongside training ---------------------------------------------------------------
    def _probe_start(self, runs: list[int], update: int) -> None:
        """Freeze the current policy and critic of the probed ones among `runs` and queue their pools.

        Queued pools start together once the pools in flight have ended (`_probe_step`), so that pools of runs whose
        checkpoints come at different times still share rollout steps; a pool depends only on the frozen parameters
        and the run's probes stream, not on when it is collected.
        """
        co = self.cohort
        runs = [r for r in runs if co.configs[r].probe_every > 0]
        if not runs:
            return
        if self._probes is None:
            cfg = co.configs[runs[0]]
            env = probe_env(co, cfg.probe_batches * cfg.episodes_per_update)  # part of the cohort key
            frozen = ([p.clone() for p in co.policy], [p.clone() for p in co.value])
            self._probes = (Collector(env, frozen[0], co.activation, co.head), *frozen)
        col, pol, val = self._probes
        for r in runs:  # a pool not yet collected (not before its run's next checkpoint, normally) ends first
            while r in self._probing:
                self._probe_step()
        idx = torch.tensor(runs)
        with torch.no_grad():
            for frozen, live in zip((*pol, *val), (*co.policy, *co.value)):
                frozen[idx] = live[idx]
        for r in runs:
            self._probing[r] = (update, co.runs[r].env_steps)
        self._queued += runs

    def _probe_step(self) -> bool:
        """One step of the probe pools in flight (starting the queued ones if none is); rows for every pool that
        ends. → whether any pool is left."""
        if self._probes is None:
            return False
        col, pol, val = self._probes
        if not col.collecting:
            if not self._queued:
                return False
            wave, self._queued = self._queued[:PROBE_WAVE], self._queued[PROBE_WAVE:]
            gens = [self.cohort.runs[r].streams.probes for r in wave]
            col.start(wave, [draw_seed(g) for g in gens], gens)
        for r in col.step():
            update, env_steps = self._probing.pop(r)
            self.probe_rows.extend(run_probe(self.cohort, r, col.take([r]), [p[r] for p in pol], [p[r] for p in val],
                                             update, env_steps))
        return True

    def _start(self, col: Collector, runs: list[int]) -> None:
        """Start the next batch of `runs`: a reset seed and the action stream of each run's own streams."""
        streams = [self.cohort.runs[r].streams for r in runs]
        col.start(runs, [draw_seed(s.env) for s in streams], [s.actions for s in streams])

    def update(self, active: list[int]) -> int:
        """One update of every run in `active` (cohort positions), collected together; returns the env steps."""
        co = self.cohort
        seeds = [draw_seed(co.runs[r].streams.env) for r in active]
        batch = collect(co.env, np.asarray(active), seeds, co.policy, co.activation, co.head,
                        [co.runs[r].streams.actions for r in active])
        steps = self._apply(active, batch)
        while self._probe_step():  # pools started by this update end before it returns
            pass
        return steps

    def _apply(self, active: list[int], batch: Batch) -> int:
        """The update of runs `active` (cohort positions) from their batches (rows of `batch` in that order)."""
        co = self.cohort
        R = len(co.configs)
        step = self._policy_gradient(active, batch)
        grads, values_fit = step.grads, step.fit
        norms = np.zeros(R)  # of the runs in this update only
        norms[active] = _per_run_norms(grads, active).numpy()
        ok = np.zeros(R, dtype=bool)
        for j, r in enumerate(active):
            ok[r] = _finite(step.policy_loss[j]) and math.isfinite(norms[r])
        clip = np.where(np.isfinite(norms) & (norms > self.max_grad_norm), self.max_grad_norm / (norms + 1e-6), 1.0)
        if (clip < 1).any():
            coef = torch.from_numpy(clip.astype(np.float32))
            grads = [g * coef.view((-1,) + (1,) * (g.dim() - 1)) for g in grads]
        self.popt.step(co.policy, grads, ok)
        value_loss = self._fit_values(values_fit, ok)

        returns = batch.episode_returns().numpy()
        lengths = batch.lengths.numpy()
        steps_total = 0
        for j, r in enumerate(active):
            s = co.runs[r]
            n_steps = int(lengths[j].sum())
            steps_total += n_steps
            s.env_steps += n_steps
            s.episodes += lengths.shape[1]
            s.updates += 1
            ret = returns[j]
            s.curves.append({
                "run_id": s.config.run_id, "update": s.updates, "env_steps": s.env_steps, "episodes": s.episodes,
                "return_mean": float(ret.mean()),
                "return_std": float(ret.std(ddof=1)) if len(ret) > 1 else math.nan,
                "length_mean": float(lengths[j].mean()),
                "policy_loss": step.policy_loss[j], "value_loss": value_loss.get(r, math.nan),
                "entropy": step.entropy[j], "grad_norm": float(norms[r]),
                "terminated_frac": float(batch.terminated[j].double().mean()),
                "truncated_frac": float(batch.truncated[j].double().mean()),
            })
            if not ok[r]:
                s.status, s.error = "diverged", f"non-finite loss or gradient at update {s.updates}"
            elif s.env_steps >= s.config.total_steps:
                s.status = "done"
        due = [r for r in active if co.runs[r].status == "running" and self._probe_due(r)]
        for upd in sorted({co.runs[r].updates for r in due}):
            self._probe_start([r for r in due if co.runs[r].updates == upd], upd)
        return steps_total

    def _policy_gradient(self, active: list[int], batch: Batch) -> "PolicyStep":
        """Every active run's policy gradient (unclipped) from one chunked backward pass; see `chunks`.

        The math is `run_update`'s, which stays as the per-run reference the tests compare against.
        """
        co = self.cohort
        cfgs = [co.configs[r] for r in active]
        mask = batch.mask
        counts = mask.sum(dim=(1, 2)).tolist()
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        n_rows = int(sum(counts))
        rows_obs, rows_act = batch.obs[mask], batch.actions[mask]  # [L, ...] in (run, episode, step) order
        layout = Chunks.build(active, counts, offsets, n_rows)
        x = layout.gather(rows_obs)
        # the reward-to-go recursion is elementwise, hence exact for any padding: run it once for the whole batch
        gamma = torch.tensor([c.gamma for c in cfgs], dtype=batch.rewards.dtype)
        reset = torch.tensor([c.returns == "rally" for c in cfgs])  # rally returns restart at non-zero rewards
        rtg = est.reward_to_go(batch.rewards, mask, gamma, reset)
        values = None
        critic = torch.tensor([c.baseline == "value" for c in cfgs])
        if bool(critic.any()):  # V(s) on the chunks of the runs with a critic only
            on = layout.per_chunk(critic).view(-1)
            with torch.no_grad():
                v = forward_stacked(select(co.value, layout.owner[on]), x[on], co.activation)[..., 0]
                index = layout.index.view(-1, CHUNK_ROWS)[on].reshape(-1)
                values = torch.zeros(n_rows + 1).index_put_((index,), v.reshape(-1))[:n_rows]
        w_rows, fit = [], []
        aggregators = [mask.shape[1] if c.aggregate == "episode" else counts[j] for j, c in enumerate(cfgs)]
        for j, (c, r) in enumerate(zip(cfgs, active)):
            t_j = int(batch.lengths[j].max())
            m = mask[j: j + 1, :, :t_j]
            sig = rtg[j: j + 1, :, :t_j]
            sig = est.signal_from_rtg(sig, m, c.gamma, c.returns)  # = est.return_signal(rewards, m, γ, returns)
            vals = None
            if c.baseline == "value":
                vals = _grid(m, values[offsets[j]: offsets[j] + counts[j]])
            w, target = est.weights_from_signal(sig, m, c.baseline, c.normalize, vals)
            # REINFORCE surrogate −A Σ w log π, minus β·A Σ H: A = 1/N (episode) or 1/L over the L valid steps (step)
            w_rows.append(w[m] / aggregators[j])
            if c.baseline == "value":
                fit.append((r, offsets[j], counts[j], target[m]))
        pg_coef = layout.gather(torch.cat(w_rows))
        beta = torch.tensor([c.entropy_coef / n for c, n in zip(cfgs, aggregators)], dtype=torch.float32)
        ent_coef = layout.per_chunk(beta)
        params = [p.detach().requires_grad_(True) for p in co.policy]
        out = forward_stacked(select(params, layout.owner), x, co.activation)
        logp = co.head.log_prob(out, layout.gather(rows_act))
        ent = co.head.entropy(out)
        valid = layout.valid.to(logp.dtype)
        pg = -pg_coef * logp * valid
        total = pg.sum() - (ent_coef * ent * valid).sum()
        grads = _grads(total, params)
        ent_mean = layout.per_run_sum(ent * valid) / torch.tensor(counts, dtype=torch.float64)
        fits = ValueFit(rows_obs, fit)
        return PolicyStep(grads, layout.per_run_sum(pg).tolist(), ent_mean.tolist(), fits)

    def _fit_values(self, fit: "ValueFit", ok: np.ndarray) -> dict[int, float]:
        """`value_iters` Adam steps on each value run's MSE to its targets (one chunked pass per step)."""
        co = self.cohort
        runs = [f for f in fit.runs if ok[f[0]]]
        if not runs:
            return {}
        n_rows = fit.rows_obs.shape[0]
        rows = [f[0] for f in runs]
        layout = Chunks.build(rows, [f[2] for f in runs], [f[1] for f in runs], n_rows)
        x = layout.gather(fit.rows_obs)
        targets = torch.zeros(n_rows)
        for r, off, cnt, tgt in runs:
            targets[off: off + cnt] = tgt
        y = layout.gather(targets)
        inv_n = torch.tensor([1.0 / f[2] for f in runs], dtype=torch.float32)
        coef = layout.per_chunk(inv_n) * layout.valid
        active = np.zeros(len(co.configs), dtype=bool)
        active[rows] = True
        first: dict[int, float] = {}
        for it in range(co.configs[0].value_iters):  # value_iters is part of the cohort key
            params = [p.detach().requires_grad_(True) for p in co.value]
            pred = forward_stacked(select(params, layout.owner), x, co.activation)[..., 0]
            sq = coef * (pred - y) ** 2
            grads = _grads(sq.sum(), params)
            if it == 0:
                first = dict(zip(rows, layout.per_run_sum(sq).tolist()))
            finite = np.zeros_like(active)
            finite[rows] = np.isfinite(_per_run_norms(grads, rows).numpy())
            self.vopt.step(co.value, grads, active & finite)
        return first

    # -- probes and evaluation ------------------------------------------------------------------------------------
    def _probe_due(self, r: int) -> bool:
        k = self.cohort.configs[r].probe_every
        return k > 0 and self.cohort.runs[r].updates % k == 0

    def evaluate(self) -> None:
        """K evaluation episodes per finished run, from its own eval stream, with the final policy."""
        co = self.cohort
        k = co.configs[0].eval_episodes
        runs = [r for r, s in enumerate(co.runs) if s.status == "done"]
        if k == 0 or not runs:
            return
        env = make_cohort_env(co.configs, num_envs=k, spec=co.spec)
        try:
            seeds = [draw_seed(co.runs[r].streams.eval) for r in runs]
            batch = collect(env, np.asarray(runs), seeds, co.policy, co.activation, co.head,
                            [co.runs[r].streams.eval for r in runs], greedy=co.configs[0].eval_greedy)
        finally:
            env.close()
        rets = batch.episode_returns().numpy()
        for j, r in enumerate(runs):
            co.runs[r].eval_return = float(rets[j].mean())

    def close(self) -> None:
        self.cohort.env.close()
        if self.cohort.probe_env is not None:
            self.cohort.probe_env.close()

    # -- rows -----------------------------------------------------------------------------------------------------
    def result(self, wall: float) -> CohortResult:
        runs, curves = [], []
        total_steps = sum(s.env_steps for s in self.cohort.runs) or 1
        wall_s = {}
        for s in self.cohort.runs:
            runs.append(run_row(s))
            curves.extend(s.curves)
            wall_s[s.config.run_id] = wall * s.env_steps / total_steps
        policies = {s.config.run_id: [p[r].numpy().copy() for p in self.cohort.policy]  # numpy: no torch to unpickle
                    for r, s in enumerate(self.cohort.runs)}
        return CohortResult(runs, curves, self.probe_rows, wall_s, policies)


def final_return(curves: list[dict[str, Any]], total_steps: int) -> float:
    """Mean training return over the updates that end in the last 10% of the budget (at least the last update)."""
    if not curves:
        return math.nan
    tail = [c["return_mean"] for c in curves if c["env_steps"] >= 0.9 * total_steps] or [curves[-1]["return_mean"]]
    return float(np.mean(tail))


def run_row(s: RunState) -> dict[str, Any]:
    return {"run_id": s.config.run_id, **s.config.cells(), "status": s.status, "error": s.error,
            "env_steps": s.env_steps, "updates": s.updates,
            "final_return": final_return(s.curves, s.config.total_steps), "eval_return": s.eval_return}


def train_cohort(configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None) -> CohortResult:
    """Train `configs` (sharing `cohort_key()`) as one cohort → rows for runs.csv, curves.csv and probes.csv.

    Call with one torch thread (`torch.set_num_threads(1)`) for bit-reproducibility across machines' thread counts.
    """
    start = time.perf_counter()
    trainer = Trainer(configs)
    try:
        trainer.train(on_update)
    finally:
        trainer.close()
    return trainer.result(time.perf_counter() - start)
