"""Memory sizing of a study's cohorts: generous per-run and per-cohort estimates, the cohort size that fits every
worker's cohort in half of the free memory, and the refusal of a config whose single run cannot fit.

The probe pools a cohort holds at once are the engine's probe wave (`train.engine.PROBE_WAVE`): one number decides
both how many pools the engine collects together and how many this estimate counts. It is imported only for a study
that probes (the engine loads torch, which a driver otherwise never needs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..config import RunConfig
from .cohorts import DEFAULT_COHORT_SIZE
from .executors import ExecutorError

if TYPE_CHECKING:
    from ..envs.spec import EnvSpec

#: Bytes assumed available when /proc/meminfo cannot be read.
DEFAULT_AVAILABLE = 8 * 2**30


def available_memory() -> int:
    """Bytes of memory available now (Linux /proc/meminfo MemAvailable; 8 GiB if unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return DEFAULT_AVAILABLE


def _episode_steps(spec: EnvSpec) -> int:
    """Steps per episode the estimates assume: the env's limit, at most 5,000 (10,000 capped when it has none)."""
    return min(spec.max_episode_steps or 10_000, 5_000)


def run_bytes(cfg: RunConfig, spec: EnvSpec) -> int:
    """A generous estimate of one run's share of a cohort's peak memory: its rollout buffers (obs and the other
    fields, kept per step and copied once into its batch) and the chunked update's activations and gradients.
    spec: `describe(cfg.env_id, cfg.preprocess)`."""
    return 4 * _episode_steps(spec) * cfg.episodes_per_update * (3 * spec.obs_dim + 6 * sum(cfg.hidden))


def probe_bytes(cfg: RunConfig, spec: EnvSpec) -> int:
    """A generous estimate of a cohort's probe memory: pools are collected alongside training, `PROBE_WAVE` runs at a
    time (the engine's wave), and analysed one run at a time (per-step layer inputs and deltas of a K×N-episode
    pool)."""
    if not cfg.probe_every:
        return 0
    from ..train.engine import PROBE_WAVE  # here: the engine loads torch, which a driver without probes never needs

    widths = [spec.obs_dim, *cfg.hidden]
    return (4 * PROBE_WAVE * _episode_steps(spec) * cfg.episodes_per_update * cfg.probe_batches
            * (3 * spec.obs_dim + 4 * sum(widths)))


def param_bytes(cfg: RunConfig, spec: EnvSpec) -> int:
    """One run's policy parameters, their gradients and two Adam moments (float32)."""
    sizes = [spec.obs_dim, *cfg.hidden, spec.act_dim]
    return 4 * 4 * sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def auto_cohort_size(n_runs: int, workers: int | None, per_run_bytes: int = 0, fixed_bytes: int = 0,
                     available: int | None = None) -> int:
    """Cohorts of at most DEFAULT_COHORT_SIZE runs, as many per worker for every worker (so no worker idles at the
    end while another trains a last cohort), small enough that all workers' cohorts together (per_run_bytes per
    run plus fixed_bytes per cohort) fit in half of the `available` memory (default: `available_memory()`)."""
    if workers:
        per_worker = max(1, math.ceil(n_runs / workers))
        size = max(1, math.ceil(per_worker / math.ceil(per_worker / DEFAULT_COHORT_SIZE)))
    else:
        size = DEFAULT_COHORT_SIZE
    if per_run_bytes > 0:
        free = available_memory() if available is None else available
        budget = free // 2 // max(1, workers or 1) - fixed_bytes
        size = min(size, max(1, budget // per_run_bytes))
    return size


def check_memory(keys: Sequence[tuple[RunConfig, EnvSpec]], workers: int | None, where: str = "study",
                 available: int | None = None) -> None:
    """Refuse, before anything trains, a config whose single run cannot fit in its worker's share of half the free
    memory (`available`, default `available_memory()`): a cohort of one run, its rollout, update, probe and
    parameter estimates. Raises `ExecutorError`."""
    free = available_memory() if available is None else available
    budget = free // 2 // max(1, workers or 1)
    for cfg, spec in keys:
        need = run_bytes(cfg, spec) + probe_bytes(cfg, spec) + param_bytes(cfg, spec)
        if need > budget:
            raise ExecutorError(f"{where}: hidden={list(cfg.hidden)}, episodes_per_update={cfg.episodes_per_update} on "
                                f"{cfg.env_id}: one run needs about {need / 2**30:.1f} GiB, more than a worker's "
                                f"share of half the free memory ({budget / 2**30:.1f} GiB); allowed: smaller "
                                "hidden layers or fewer episodes per update (or fewer --workers)")


def cohort_plan_size(todo: Sequence[RunConfig], workers: int | None, cohort_size: int | None,
                     where: str = "study") -> int:
    """The cohort size for the runs `todo`: `cohort_size` if given, else `auto_cohort_size` from the largest per-run
    and probe estimates of their cohort keys; first refuses (`check_memory`) a config that cannot fit alone."""
    from ..envs.registry import describe

    keys = [(c, describe(c.env_id, c.preprocess)) for c in {c.cohort_key(): c for c in todo}.values()]
    per_run = max((run_bytes(c, spec) for c, spec in keys), default=0)
    fixed = max((probe_bytes(c, spec) for c, spec in keys), default=0)
    check_memory(keys, workers, where)
    return cohort_size if cohort_size is not None else auto_cohort_size(len(todo), workers, per_run, fixed)
