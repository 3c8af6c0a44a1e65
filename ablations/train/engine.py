"""The one training loop: a cohort of R runs trained together (rollout → loss → per-run optimizer step; probes at
checkpoints through a hook).

Runs in a cohort never interact (invariant 2). The rollout batches every collecting run's forward pass and env step,
but does not hold the runs in lockstep: a run is updated as soon as its own batch has ended (in groups, with the
other runs waiting at that moment) and starts its next batch at once (`Trainer.iterate`). The update is `loss`'s (one
chunked backward pass for the whole group, every shape a run touches depending on that run only); then each run is
clipped, checked and stepped with its own optimizer (`optim.PerRunOptimizer`: Adam, RMSprop or SGD), state and learning
rate, and its critic fitted (`loss.fit_values`). A run whose loss or gradient is not finite is marked `diverged` and
leaves the cohort.

Probes. A run with `probe_every = k > 0` is probed at update 0 and every k updates: the engine freezes a copy of its
policy and critic, collects a pool of K×N episodes from the run's own `probes` stream in an environment of its own
(alongside training, `PROBE_WAVE` pools at a time), and hands the pool to the probe hook it was given
(`train_cohort(..., probe=...)`, e.g. `ablations.probes.checkpoint.probe_checkpoint`) through a read-only
`cohort.CohortView`; the hook returns the probes.csv rows. The training streams are never touched, so probes on or off
leave training bit-identical. `train` never imports the probes: `ablations.study.worker` wires them in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ..config import RunConfig
from ..envs.registry import describe, make_cohort_env
from ..envs.spec import CohortEnv
from .cohort import Checkpoint, CohortState, CohortView, ProbeHook, RunState
from .loss import PolicyStep, ValueFit, fit_values, per_run_norms, policy_gradient
from .nets import Params, head_for, init_mlp, init_policy, value_sizes
from .optim import PerRunOptimizer
from .rollout import Batch, Collector, collect
from .scores import final_return
from .seeding import draw_seed, run_streams

#: A waiting run is updated once this fraction of the cohort's running runs wait (see `Trainer.iterate`).
UPDATE_FRACTION = 0.25
#: Most runs updated in one batched pass: the update's activations and gathered weights grow with it (runs whose
#: batches end at the same step, e.g. every CartPole run once all episodes last 500 steps, are updated in slices).
MAX_UPDATE_GROUP = 32
#: Most probe pools collected at once (each holds K×N episodes in the rollout buffers until it is analysed).
PROBE_WAVE = 6


@dataclass
class TrainedCohort:
    """What training a cohort produced: rows for runs.csv, curves.csv and probes.csv, each run's share of the wall
    time, and its final policy."""

    runs: list[dict[str, Any]]
    curves: list[dict[str, Any]]
    probes: list[dict[str, Any]]
    wall_s: dict[str, float]
    policies: dict[str, list[np.ndarray]] = field(default_factory=dict)  # run_id → final policy parameters (no run dim)


class Trainer:
    """Trains one cohort. Use `train_cohort` unless you need the intermediate state (probes, tests)."""

    def __init__(self, configs: Sequence[RunConfig], probe: ProbeHook | None = None):
        configs = list(configs)
        if not configs:
            raise ValueError("a cohort needs at least one run")
        probed = [c.run_id for c in configs if c.probe_every > 0]
        if probed and probe is None:
            raise ValueError(f"runs {probed} have probe_every > 0 but no probe hook was given: pass "
                             f"probe=ablations.probes.checkpoint.probe_checkpoint (or train through "
                             f"ablations.study.worker.train_cohort), or set probe_every = 0")
        key = configs[0].cohort_key()
        for c in configs:
            if c.cohort_key() != key:
                raise ValueError(f"run {c.run_id} cannot share a cohort with {configs[0].run_id}: "
                                 f"cohort keys differ ({c.cohort_key()} vs {key})")
        spec = describe(configs[0].env_id, configs[0].preprocess)
        head = head_for(spec)
        streams = [run_streams(c.seed) for c in configs]
        gens = [s.init for s in streams]
        policy = init_policy(spec, configs, gens)  # raises ConfigError for an initial policy that does not fit
        value = init_mlp(value_sizes(spec, configs[0].critic_hidden), gens, out_gain=1.0)
        self.cohort = CohortState(configs, spec, head, make_cohort_env(configs, spec=spec), policy, value,
                                  [RunState(c, s) for c, s in zip(configs, streams)])
        self.popt = PerRunOptimizer.for_policy(policy, configs)
        self.vopt = PerRunOptimizer(value, [c.value_lr for c in configs], [c.value_optimizer for c in configs])
        self.probe_rows: list[dict[str, Any]] = []
        self._probe = probe
        self._probe_env: CohortEnv | None = None  # K·N episodes per run, made at the first checkpoint
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
            num_envs = cfg.probe_batches * cfg.episodes_per_update  # part of the cohort key
            self._probe_env = make_cohort_env(co.configs, num_envs=num_envs, spec=co.spec)  # never the training env
            frozen = ([p.clone() for p in co.policy], [p.clone() for p in co.value])
            self._probes = (Collector(self._probe_env, frozen[0], co.activation, co.head), *frozen)
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
        """One step of the probe pools in flight (starting the queued ones if none is); the probe hook's rows for
        every pool that ends. → whether any pool is left."""
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
            checkpoint = Checkpoint(env_steps, col.take([r]), tuple(p[r] for p in pol), tuple(p[r] for p in val),
                                    self.cohort.runs[r].streams.probes)
            assert self._probe is not None  # probed runs exist only with a hook (__init__)
            self.probe_rows.extend(self._probe(CohortView.of(self.cohort, {r: checkpoint}), [r], update))
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
        norms[active] = per_run_norms(grads, active).numpy()
        ok = np.zeros(R, dtype=bool)
        for j, r in enumerate(active):
            ok[r] = math.isfinite(step.policy_loss[j]) and math.isfinite(norms[r])
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
            elif spent(s):
                s.status = "done"
        due = [r for r in active if co.runs[r].status == "running" and self._probe_due(r)]
        for upd in sorted({co.runs[r].updates for r in due}):
            self._probe_start([r for r in due if co.runs[r].updates == upd], upd)
        return steps_total

    def _policy_gradient(self, active: list[int], batch: Batch) -> PolicyStep:
        """Every active run's policy gradient (unclipped), `loss.policy_gradient`."""
        return policy_gradient(self.cohort, active, batch)

    def _fit_values(self, fit: ValueFit, ok: np.ndarray) -> dict[int, float]:
        """The critic's fit after an update, `loss.fit_values` with the cohort's critic optimizer."""
        return fit_values(self.cohort, fit, ok, self.vopt)

    # -- probes and evaluation ------------------------------------------------------------------------------------
    def _probe_due(self, r: int) -> bool:
        k = self.cohort.configs[r].probe_every
        return k > 0 and self.cohort.runs[r].updates % k == 0

    def evaluate(self) -> None:
        """K evaluation episodes per finished run, from its own eval stream, with the final policy, in both modes from
        the same K start states: first the mode `eval_greedy` picks (`eval_return`), then the other one, whose draws
        come after (so `eval_return`'s bits do not depend on it)."""
        co = self.cohort
        k = co.configs[0].eval_episodes
        runs = [r for r, s in enumerate(co.runs) if s.status == "done"]
        if k == 0 or not runs:
            return
        first = co.configs[0].eval_greedy  # part of the cohort key
        env = make_cohort_env(co.configs, num_envs=k, spec=co.spec)
        try:
            seeds = [draw_seed(co.runs[r].streams.eval) for r in runs]
            rets = {greedy: collect(env, np.asarray(runs), seeds, co.policy, co.activation, co.head,
                                    [co.runs[r].streams.eval for r in runs], greedy=greedy).episode_returns().numpy()
                    for greedy in (first, not first)}
        finally:
            env.close()
        for j, r in enumerate(runs):
            s = co.runs[r]
            s.eval_return_greedy, s.eval_return_stochastic = float(rets[True][j].mean()), float(rets[False][j].mean())
            s.eval_return = s.eval_return_greedy if first else s.eval_return_stochastic

    def close(self) -> None:
        self.cohort.env.close()
        if self._probe_env is not None:
            self._probe_env.close()

    # -- rows -----------------------------------------------------------------------------------------------------
    def result(self, wall: float) -> TrainedCohort:
        runs, curves = [], []
        total_steps = sum(s.env_steps for s in self.cohort.runs) or 1
        wall_s = {}
        for s in self.cohort.runs:
            runs.append(run_row(s))
            curves.extend(s.curves)
            wall_s[s.config.run_id] = wall * s.env_steps / total_steps
        policies = {s.config.run_id: [p[r].numpy().copy() for p in self.cohort.policy]  # numpy: no torch to unpickle
                    for r, s in enumerate(self.cohort.runs)}
        return TrainedCohort(runs, curves, self.probe_rows, wall_s, policies)


def spent(s: RunState) -> bool:
    """Whether run `s` has reached its budget: env steps (`total_steps`) or episodes (`total_episodes`)."""
    budget, unit = s.config.budget
    return (s.episodes if unit == "episodes" else s.env_steps) >= budget


def run_row(s: RunState) -> dict[str, Any]:
    """runs.csv's row of a run."""
    budget, unit = s.config.budget
    return {"run_id": s.config.run_id, **s.config.cells(), "status": s.status, "error": s.error,
            "env_steps": s.env_steps, "updates": s.updates,
            "final_return": final_return(s.curves, budget, unit), "eval_return": s.eval_return,
            "eval_return_greedy": s.eval_return_greedy, "eval_return_stochastic": s.eval_return_stochastic}


def train_cohort(configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None,
                 probe: ProbeHook | None = None) -> TrainedCohort:
    """Train `configs` (sharing `cohort_key()`) as one cohort → rows for runs.csv, curves.csv and probes.csv.

    on_update: called with the env steps of each group of updates. probe: the hook called at every probed run's
    checkpoint (`cohort.ProbeHook`); required when a config has `probe_every > 0` (else `ValueError`). Call with one
    torch thread (`torch.set_num_threads(1)`) for bit-reproducibility across machines' thread counts.
    """
    start = time.perf_counter()
    trainer = Trainer(configs, probe)
    try:
        trainer.train(on_update)
    finally:
        trainer.close()
    return trainer.result(time.perf_counter() - start)
