"""Where one cohort's time goes: train one cohort of a study in this process and time the engine's phases.

The cohort is the one `ablations run` would train (`study.cohorts`, runs dealt round-robin), so its config mix is a
real one. Run two at once to see a 2-worker machine's per-cohort time (the workers share caches and memory):

    python benchmarks/cohort_phases.py --cohort 0 & python benchmarks/cohort_phases.py --cohort 1; wait
    python benchmarks/cohort_phases.py --cohort 0 --default-allocator     # without `configure_worker`'s mallopt
    python benchmarks/cohort_phases.py --cohort 0 --tanh exp              # the faster tanh that was not adopted

Phases nest: `probe_step` (pools + analysis) contains `probe_directions`, which contains `contract`, `crossfit`,
`episode_sums` and `layer_scores`; `apply` (the update) contains `policy_gradient` and `fit_values`.
"""

from __future__ import annotations

import argparse
import collections
import functools
import resource
import time
from typing import Any, Callable

import torch

from ablations.probes import checkpoint, directions, factored
from ablations.train import engine, nets, rollout
from ablations.study.executors import configure_worker
from ablations.study.design import expand, load_study
from ablations.study.cohorts import cohorts


def _exp_tanh_values(z: torch.Tensor) -> torch.Tensor:
    return (z * 2).exp_().add_(1).reciprocal_().mul_(-2).add_(1)


class _ExpTanh(torch.autograd.Function):
    """The values of `_exp_tanh_values`, with torch's own tanh backward from the saved output."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        y = _exp_tanh_values(z)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.tanh_backward(grad, ctx.saved_tensors[0])


def exp_tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 1 − 2/(e^{2x} + 1): ~1.7 ns/element against torch.tanh's ~3.2 on this machine's CPU, within 1.8e-7
    absolute, bits independent of the element's position (unlike torch.sigmoid's scalar tail). Changes results."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _ExpTanh.apply(x)
    return _exp_tanh_values(x)


def timed(owner: Any, name: str, label: str, totals: dict[str, float]) -> None:
    """Replace owner.name by a wrapper that adds its wall time to totals[label]."""
    fn: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - t0

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", nargs="?", default="studies/cartpole_factorial.toml")
    ap.add_argument("--size", type=int, default=120, help="cohort size (the factorial's default on 2 workers: 120)")
    ap.add_argument("--cohort", type=int, default=0, help="which cohort of the study")
    ap.add_argument("--steps", type=int, default=None, help="env steps per run (default: the study's)")
    ap.add_argument("--default-allocator", action="store_true", help="skip configure_worker's mallopt")
    ap.add_argument("--tanh", choices=["torch", "exp"], default="torch")
    args = ap.parse_args()
    if args.default_allocator:
        torch.set_num_threads(1)
    else:
        configure_worker()
    if args.tanh == "exp":
        nets.ACTIVATIONS["tanh"] = exp_tanh
    cohort = cohorts(expand(load_study(args.study)), max_size=args.size)[args.cohort]
    configs = [c.replace(total_steps=args.steps) if args.steps else c for c in cohort.configs]
    totals: dict[str, float] = collections.defaultdict(float)
    phases = [
            (rollout.Collector, "step", "rollout_steps (training + probe pools)"),
            (engine.Trainer, "_apply", "apply (update)"), (engine.Trainer, "_policy_gradient", "  policy_gradient"),
            (engine.Trainer, "_fit_values", "  fit_values"), (engine.Trainer, "_probe_step", "probe_step"),
            (checkpoint, "pool_directions", "  probe_directions"),
            (factored.LayerScores, "contract_in_span", "    contract"),
            (directions, "crossfit_values", "    crossfit"), (factored.LayerScores, "episode_sums", "    episode_sums"),
            (directions, "layer_scores", "    layer_scores"), (engine.Trainer, "evaluate", "evaluate")]
    for owner, name, label in phases:
        timed(owner, name, label, totals)
    probed = sum(c.probe_every > 0 for c in configs)
    print(f"cohort {args.cohort} of {args.study}: {len(configs)} runs ({probed} probed), "
          f"{configs[0].total_steps:,} steps each; allocator "
          f"{'default' if args.default_allocator else 'configure_worker'}; tanh {args.tanh}", flush=True)
    start = time.perf_counter()
    result = engine.train_cohort(configs, probe=checkpoint.probe_checkpoint)
    wall = time.perf_counter() - start
    steps = sum(r["env_steps"] for r in result.runs)
    print(f"wall {wall:.1f} s, {steps / wall:,.0f} env-steps/s (training), peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for _, _, label in phases:
        print(f"  {label:40s} {totals[label]:7.1f} s {totals[label] / wall:6.1%}")
    print("(rollout_steps also counts probe-pool steps, which run inside probe_step)")


if __name__ == "__main__":
    main()
