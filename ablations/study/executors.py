"""Executors: where cohorts train. Serial (in-process), local process pool (the default) and Ray (optional extra).

The unit of work is a `Cohort`. Every executor runs the same function, `train_isolated`, in its worker, with one torch
thread, and returns the rows to the driver (no worker ever writes a file; no shared file system is needed). The
driver (`run_study`) owns the results directory: lock, resume, one atomic part per finished cohort, combined CSVs.

Failure isolation: if `train_cohort` raises for a cohort, each of its runs is retrained alone; a run that still
raises is recorded as status "failed" with "<ExceptionType>: <message>", and its cohort-mates keep their rows
(invariant 1 makes the solo rows identical to the cohort ones).
"""

from __future__ import annotations

import ctypes
import importlib
import math
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import socket
import time

import pandas as pd
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ..config import RunConfig
from .progress import IN_FLIGHT_FILE, InFlight, NullProgress, Progress
from .random_scores import ensure_random_scores
from .machine import current_machine, git_commit, host, versions
from .results_format import failed_run_row
from .store import ResultsDir, now
from .design import DEFAULT_COHORT_SIZE, Cohort, Study, cohorts, expand

if TYPE_CHECKING:
    from ..envs.spec import EnvSpec

DEFAULT_TRAINER = "ablations.train.engine:train_cohort"
#: Seconds between progress messages from a worker.
PROGRESS_EVERY = 0.25
ProgressFn = Callable[[str, int], None]  # (cohort_id, env_steps_delta)


#: Studies with at most this many runs save each finished run's final policy (results/<study>/policies/<run_id>.pt).
SAVE_POLICIES_MAX_RUNS = 100


class ExecutorError(RuntimeError):
    """An executor cannot start or lost its workers; the message says what to do."""


class ExecutorSetupError(ExecutorError):
    """The executor could not start at all (no Ray, no cluster at the address): nothing was trained."""


@dataclass
class CohortResult:
    """A trained cohort's rows (runs in the cohort's order)."""

    cohort_id: str
    runs: list[dict[str, Any]]
    curves: list[dict[str, Any]]
    probes: list[dict[str, Any]]
    wall_s: dict[str, float]
    retried_alone: bool = False
    policies: dict[str, list[Any]] = field(default_factory=dict)  # run_id → final policy parameters
    machine: dict[str, Any] = field(default_factory=dict)  # the worker's `current_machine()`: what decides the bits


# ---- the work of one cohort (runs in the worker) ---------------------------------------------------------------
#: glibc malloc settings for training processes (`configure_worker`): freed memory stays in the heap for reuse up to
#: this much at its top (M_TRIM_THRESHOLD), and allocations up to this size come from the heap, not from a fresh mmap
#: (M_MMAP_THRESHOLD, glibc's maximum). By default every update's large temporaries are mapped, page-faulted in and
#: returned to the OS again. Measured: 143k → 182k env-steps/s in `benchmarks/throughput.py` (R=64, first 8 s), and
#: 4–10% less time per factorial cohort (`benchmarks/cohort_phases.py --default-allocator`, two cohorts at once).
MALLOC_TRIM_BYTES = 256 << 20
MALLOC_MMAP_BYTES = 32 << 20


def configure_worker() -> None:
    """Set up a training process: one torch thread (bit-reproducibility across machines' thread counts) and, with
    glibc, an allocator that keeps and reuses freed memory (`MALLOC_TRIM_BYTES`). Bits do not depend on either
    allocator setting; only speed does."""
    import torch

    torch.set_num_threads(1)
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc: the default allocator is used
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_trim_threshold, MALLOC_TRIM_BYTES)
    mallopt(m_mmap_threshold, MALLOC_MMAP_BYTES)


def _load(trainer: str) -> Callable[..., Any]:
    module, _, name = trainer.partition(":")
    return getattr(importlib.import_module(module), name)


def train_isolated(cohort_id: str, configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None,
                   trainer: str = DEFAULT_TRAINER, imports: Sequence[str] = (),
                   import_paths: Sequence[str] = ()) -> CohortResult:
    """Train a cohort; if it raises, train each run alone and record the ones that still raise as failed.
    `imports`: modules that register custom env ids, imported with `import_paths` first on sys.path."""
    from ..envs.registry import import_modules

    configure_worker()
    import_modules(imports, import_paths)
    train = _load(trainer)
    configs = list(configs)
    where = current_machine()
    if len(configs) > 1:
        try:
            res = train(configs, on_update=on_update)
            return CohortResult(cohort_id, list(res.runs), list(res.curves), list(res.probes), dict(res.wall_s),
                                policies=dict(getattr(res, "policies", {})), machine=where)
        except Exception:  # noqa: BLE001 - isolate below, run by run
            pass
    out = CohortResult(cohort_id, [], [], [], {}, retried_alone=len(configs) > 1, machine=where)
    for cfg in configs:
        start = time.perf_counter()
        try:
            res = train([cfg], on_update=on_update)
        except Exception as exc:  # noqa: BLE001 - recorded, not swallowed
            out.runs.append(failed_run_row(cfg, f"{type(exc).__name__}: {exc}"))
            out.wall_s[cfg.run_id] = time.perf_counter() - start
            continue
        out.runs += res.runs
        out.curves += res.curves
        out.probes += res.probes
        out.wall_s.update(res.wall_s)
        out.policies.update(getattr(res, "policies", {}))
    return out


class _Throttled:
    """on_update for a worker: sums env-step deltas and sends (cohort_id, steps) at most every PROGRESS_EVERY s."""

    def __init__(self, cohort_id: str, send: Callable[[tuple[str, int]], None]):
        self.cohort_id, self.send = cohort_id, send
        self.pending, self.last = 0, time.monotonic()

    def __call__(self, delta: int) -> None:
        self.pending += int(delta)
        t = time.monotonic()
        if t - self.last >= PROGRESS_EVERY:
            try:
                self.send((self.cohort_id, self.pending))
            except Exception:  # noqa: BLE001 - progress is best effort, training is not
                return
            self.pending, self.last = 0, t


# ---- executors -------------------------------------------------------------------------------------------------
class SerialExecutor:
    """In-process, one cohort after another (debugging, tests)."""

    name = "serial"
    workers = 1

    def __init__(self, trainer: str = DEFAULT_TRAINER, imports: Sequence[str] = (), import_paths: Sequence[str] = ()):
        self.trainer, self.imports, self.import_paths = trainer, tuple(imports), tuple(import_paths)

    def map(self, todo: Sequence[Cohort], on_progress: ProgressFn) -> Iterator[CohortResult]:
        for cohort in todo:
            yield train_isolated(cohort.id, cohort.configs, trainer=self.trainer, imports=self.imports,
                                 import_paths=self.import_paths,
                                 on_update=lambda d, cid=cohort.id: on_progress(cid, d))


_QUEUE: Any = None


def _init_worker(progress_queue: Any, driver_pid: int | None = None) -> None:
    """Pool worker: ignore Ctrl-C (the driver stops us), die with the driver (each task sets up torch and the
    allocator in `train_isolated`)."""
    global _QUEUE
    _QUEUE = progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # Linux: SIGKILL us if the driver dies (e.g. SIGKILL), so no orphan keeps training
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if driver_pid is not None and os.getppid() != driver_pid:  # the driver died before prctl: it cannot fire
        os._exit(1)


def _pool_task(cohort_id: str, configs: Sequence[RunConfig], trainer: str, imports: Sequence[str],
               import_paths: Sequence[str] = ()) -> CohortResult:
    on_update = _Throttled(cohort_id, _QUEUE.put) if _QUEUE is not None else None
    return train_isolated(cohort_id, configs, on_update=on_update, trainer=trainer, imports=imports,
                          import_paths=import_paths)


class LocalExecutor:
    """A pool of `workers` spawned processes (default: one per core); cohorts are the unit of work."""

    name = "local"

    def __init__(self, workers: int | None = None, trainer: str = DEFAULT_TRAINER, imports: Sequence[str] = (),
                 start_method: str = "spawn", import_paths: Sequence[str] = ()):
        self.workers = workers or os.cpu_count() or 1
        self.trainer, self.imports, self.start_method = trainer, tuple(imports), start_method
        self.import_paths = tuple(import_paths)

    def map(self, todo: Sequence[Cohort], on_progress: ProgressFn) -> Iterator[CohortResult]:
        if not todo:
            return
        ctx = mp.get_context(self.start_method)
        progress_queue = ctx.Queue()
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(todo)), mp_context=ctx,
                                   initializer=_init_worker, initargs=(progress_queue, os.getpid()))
        finished = False
        try:
            futures = {pool.submit(_pool_task, c.id, c.configs, self.trainer, self.imports, self.import_paths): c
                       for c in todo}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_queue, on_progress)
                for fut in done:
                    try:
                        yield fut.result()
                    except BrokenProcessPool as exc:
                        raise ExecutorError(f"a worker process died ({exc}); finished cohorts are saved: run the "
                                            "same command again to resume") from None
                    except Exception as exc:  # noqa: BLE001 - outside any run (e.g. an import): stop the study
                        raise ExecutorError(f"cohort {futures[fut].id} could not run: {type(exc).__name__}: "
                                            f"{exc}") from exc
            finished = True
        finally:
            if not finished:  # interrupted or failed: stop the workers now rather than finish their cohorts
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.kill()
            pool.shutdown(wait=finished, cancel_futures=True)
            progress_queue.close()
            progress_queue.cancel_join_thread()


def _drain(progress_queue: Any, on_progress: ProgressFn) -> None:
    while True:
        try:
            cohort_id, steps = progress_queue.get_nowait()
        except (queue_mod.Empty, OSError, EOFError, ValueError):
            return
        on_progress(cohort_id, steps)


def _ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorSetupError("--executor ray needs Ray, which is not installed: pip install 'ablations[ray]' "
                            "(or use --executor local)") from None
    return ray


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Refuse, within `timeout` seconds, an address where nothing accepts a TCP connection: `ray.init` retries a dead
    `host:port` for many minutes. 'auto' and 'local' are Ray's to resolve; otherwise host:port or ray://host:port."""
    if address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")  # an IPv6 literal, [::1]:6379
    if not sep or not host or not port.isdigit():
        raise ExecutorSetupError(f"--address {address!r} is not a Ray address; allowed: host:port (the head node's "
                                 "address that `ray start --head` prints, e.g. 10.0.0.5:6379), ray://host:port, "
                                 "auto or local")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ExecutorSetupError(f"--address {address!r}: nothing accepts connections at {host}:{port} "
                                 f"({exc.strerror or exc}); start the cluster with `ray start --head` on its head "
                                 "node (see README, On a Ray cluster) or check the address") from None


def _ray_task(cohort_id: str, configs: Sequence[RunConfig], trainer: str, imports: Sequence[str],
              progress_queue: Any, import_paths: Sequence[str] = ()) -> CohortResult:
    if progress_queue is not None:  # where this attempt runs, for the driver's in-flight record (`ablations status`)
        import ray

        ctx = ray.get_runtime_context()
        where = {"node_id": ctx.get_node_id(), "task_id": ctx.get_task_id(), "worker_pid": os.getpid(),
                 "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            progress_queue.put_nowait((cohort_id, 0, where))
        except Exception:  # noqa: BLE001 - best effort, as progress
            pass
    on_update = _Throttled(cohort_id, progress_queue.put_nowait) if progress_queue is not None else None
    return train_isolated(cohort_id, configs, on_update=on_update, trainer=trainer, imports=imports,
                          import_paths=import_paths)


class RayExecutor:
    """Cohorts as Ray tasks (num_cpus=1); rows return to the driver as each cohort finishes; a task whose worker or
    node dies is retried (`max_retries`) on any node. At most `max_in_flight` tasks are submitted at once (default:
    twice the cluster's CPUs, at least 4), so the driver's memory and the object store hold a bounded number of
    cohorts whatever the size of the study."""

    name = "ray"
    records_in_flight = True

    def __init__(self, address: str | None = None, workers: int | None = None, trainer: str = DEFAULT_TRAINER,
                 imports: Sequence[str] = (), max_retries: int = 3, import_paths: Sequence[str] = (),
                 max_in_flight: int | None = None):
        if address is not None:
            check_ray_address(address)
        self.ray = _ray_module()
        self.address, self.trainer, self.imports, self.max_retries = address, trainer, tuple(imports), max_retries
        self.import_paths = tuple(import_paths)
        self.workers = workers or (os.cpu_count() or 1 if address is None else None)
        self.max_in_flight = max_in_flight

    def map(self, todo: Sequence[Cohort], on_progress: ProgressFn, in_flight: Any = None) -> Iterator[CohortResult]:
        """Yield each cohort's result as it arrives. `in_flight`: a `progress.InFlight` to keep up to date."""
        if not todo:
            return
        ray = self.ray
        owns = not ray.is_initialized()
        if owns:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            if self.address is None:
                kwargs["num_cpus"] = self.workers
            else:
                kwargs["address"] = self.address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ExecutorSetupError(f"cannot connect to the Ray cluster at {self.address!r} ({exc}); start one "
                                    "with `ray start --head` (see README, On a Ray cluster)") from None
        try:
            from ray.util.queue import Queue
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # the queue actor lives on the driver's node (soft), so losing a worker node does not lose progress
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
            progress_queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
            task = ray.remote(num_cpus=1, max_retries=self.max_retries)(_ray_task)
            limit = self.max_in_flight or max(4, 2 * int(ray.cluster_resources().get("CPU", 1)))
            waiting = list(reversed(todo))  # pop() takes them in study order
            refs: dict[Any, Cohort] = {}

            def submit() -> None:
                while waiting and len(refs) < limit:
                    c = waiting.pop()
                    refs[task.remote(c.id, c.configs, self.trainer, self.imports, progress_queue,
                                     self.import_paths)] = c
                    if in_flight is not None:
                        in_flight.queued(c)

            submit()
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
                if done:  # and whatever else is ready now
                    done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
                _drain_ray(progress_queue, on_progress, in_flight)
                for ref in done:
                    cohort = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        raise ExecutorError(f"cohort {cohort.id} failed on Ray ({type(exc).__name__}: {exc}); "
                                            "finished cohorts are saved: run the same command again to resume") from exc
                    if in_flight is not None:
                        in_flight.finished(cohort.id)
                    yield result
                submit()
                if in_flight is not None:
                    in_flight.flush()
        finally:
            if owns:
                ray.shutdown()


def _drain_ray(progress_queue: Any, on_progress: ProgressFn, in_flight: Any = None) -> None:
    try:
        items = progress_queue.get_nowait_batch(progress_queue.qsize())
    except Exception:  # noqa: BLE001 - progress is best effort
        return
    for item in items:
        if len(item) == 3:  # a task started: (cohort_id, 0, where)
            if in_flight is not None:
                in_flight.running(item[0], item[2])
        else:
            on_progress(item[0], item[1])


def make_executor(name: str = "local", *, workers: int | None = None, address: str | None = None,
                  trainer: str = DEFAULT_TRAINER, imports: Sequence[str] = (), import_paths: Sequence[str] = ()) -> Any:
    """`local` (a pool; `workers=1` means serial in-process), `serial`, or `ray`. `imports`: modules that register
    custom env ids (imported in every worker, `import_paths` first on sys.path)."""
    kw = {"trainer": trainer, "imports": imports, "import_paths": import_paths}
    if name == "ray":
        return RayExecutor(address=address, workers=workers, **kw)
    if name == "serial" or (name == "local" and workers == 1):
        return SerialExecutor(**kw)
    if name == "local":
        return LocalExecutor(workers=workers, **kw)
    raise ExecutorError(f"executor={name!r} is unknown; allowed: local | serial | ray")


# ---- the driver ------------------------------------------------------------------------------------------------
@dataclass
class StudySummary:
    """What `run_study` did and where the study stands."""

    out: Path
    total: int
    trained: int
    counts: dict[str, int] = field(default_factory=dict)  # done / diverged / failed / pending
    failed: list[tuple[str, str]] = field(default_factory=list)  # (run_id, error)
    wall_s: float = 0.0
    discarded: list[tuple[str, str]] = field(default_factory=list)  # (part, problem): corrupt parts, trained again
    env_steps: int = 0  # env steps the runs actually took (a run may overshoot its budget; see `budget_overshoot`)
    budget_steps: int = 0  # the budget: sum of total_steps of the runs that have rows


#: Probe pools a cohort holds at once, for its memory estimate (pools take about one update's time, every
#: `probe_every` updates, so few overlap).
PROBE_POOLS = 4


def available_memory() -> int:
    """Bytes of memory available now (Linux /proc/meminfo MemAvailable; 8 GiB if unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def run_bytes(cfg: RunConfig, spec: EnvSpec) -> int:
    """A generous estimate of one run's share of a cohort's peak memory: its rollout buffers (obs and the other
    fields, kept per step and copied once into its batch) and the chunked update's activations and gradients.
    spec: `describe(cfg.env_id, cfg.preprocess)`."""
    steps = min(spec.max_episode_steps or 10_000, 5_000)
    return 4 * steps * cfg.episodes_per_update * (3 * spec.obs_dim + 6 * sum(cfg.hidden))


def probe_bytes(cfg: RunConfig, spec: EnvSpec) -> int:
    """A generous estimate of a cohort's probe memory: pools are collected alongside training, a few runs at a time
    (`PROBE_POOLS`), and analysed one run at a time (per-step layer inputs and deltas of a K×N-episode pool)."""
    if not cfg.probe_every:
        return 0
    steps = min(spec.max_episode_steps or 10_000, 5_000)
    widths = [spec.obs_dim, *cfg.hidden]
    return 4 * PROBE_POOLS * steps * cfg.episodes_per_update * cfg.probe_batches * (3 * spec.obs_dim + 4 * sum(widths))


def auto_cohort_size(n_runs: int, workers: int | None, per_run_bytes: int = 0, fixed_bytes: int = 0) -> int:
    """Cohorts of at most DEFAULT_COHORT_SIZE runs, as many per worker for every worker (so no worker idles at the
    end while another trains a last cohort), small enough that all workers' cohorts together (per_run_bytes per
    run plus fixed_bytes per cohort) fit in half of the available memory."""
    if workers:
        per_worker = max(1, math.ceil(n_runs / workers))
        size = max(1, math.ceil(per_worker / math.ceil(per_worker / DEFAULT_COHORT_SIZE)))
    else:
        size = DEFAULT_COHORT_SIZE
    if per_run_bytes > 0:
        budget = available_memory() // 2 // max(1, workers or 1) - fixed_bytes
        size = min(size, max(1, budget // per_run_bytes))
    return size


def check_memory(keys: Sequence[tuple[RunConfig, "EnvSpec"]], workers: int | None, where: str = "study") -> None:
    """Refuse, before anything trains, a config whose single run cannot fit in its worker's share of half the free
    memory (a cohort of one run: its rollout, update, probe and parameter estimates)."""
    budget = available_memory() // 2 // max(1, workers or 1)
    for cfg, spec in keys:
        sizes = [spec.obs_dim, *cfg.hidden, spec.act_dim]
        params = 4 * 4 * sum(a * b + b for a, b in zip(sizes, sizes[1:]))  # weights, grads, two Adam moments
        need = run_bytes(cfg, spec) + probe_bytes(cfg, spec) + params
        if need > budget:
            raise ExecutorError(f"{where}: hidden={list(cfg.hidden)}, episodes_per_update={cfg.episodes_per_update} on "
                                f"{cfg.env_id}: one run needs about {need / 2**30:.1f} GiB, more than a worker's "
                                f"share of half the free memory ({budget / 2**30:.1f} GiB); allowed: smaller "
                                "hidden layers or fewer episodes per update (or fewer --workers)")


def plan(study: Study, out: str | Path, *, retry_failed: bool = False, cohort_size: int | None = None,
         workers: int | None = None, configs: Sequence[RunConfig] | None = None
         ) -> tuple[list[RunConfig], list[Cohort]]:
    """The study's runs and the cohorts still to train in `out` (read-only). `cohort_size=None` picks
    `auto_cohort_size` for `workers`; rows never depend on the cohort a run trains in (invariant 1).
    `configs`: the runs, when they are not `expand(study)` (a stage of a tuned study: `study.tuning`)."""
    configs = expand(study) if configs is None else list(configs)
    records = ResultsDir(out).records() if Path(out).is_dir() else {}
    todo = [c for c in configs if c.run_id not in records
            or (retry_failed and records[c.run_id].status == "failed")]
    from ..envs.registry import describe

    keys = [(c, describe(c.env_id, c.preprocess)) for c in {c.cohort_key(): c for c in todo}.values()]
    per_run = max((run_bytes(c, spec) for c, spec in keys), default=0)
    fixed = max((probe_bytes(c, spec) for c, spec in keys), default=0)
    check_memory(keys, workers, study.path)
    size = cohort_size if cohort_size is not None else auto_cohort_size(len(todo), workers, per_run, fixed)
    return configs, cohorts(todo, max_size=size)


def run_study(study: Study, out: str | Path, executor: Any, *, retry_failed: bool = False,
              cohort_size: int | None = None, progress: Progress | None = None,
              configs: Sequence[RunConfig] | None = None, manifest_extra: dict[str, Any] | None = None
              ) -> StudySummary:
    """Train what `out` lacks (and the failed runs if `retry_failed`), one atomic part per cohort, then rebuild the
    combined CSVs. Holds the directory's lock throughout; raises `StoreError` if it is locked or incompatible.
    `configs` (default `expand(study)`) and `manifest_extra` (merged into the manifest) serve a tuned study's
    stages (`study.tuning.run_tuned`)."""
    progress = progress or NullProgress()
    results = ResultsDir(out)
    configs = expand(study) if configs is None else list(configs)
    run_ids = [c.run_id for c in configs]
    if results.root.is_dir():
        results.check_compatible(run_ids, study.path)
    t0, started = time.perf_counter(), now()
    with results.lock():
        results.check_compatible(run_ids, study.path)
        results.clean_incomplete()
        (results.root / IN_FLIGHT_FILE).unlink(missing_ok=True)  # a killed driver's: its tasks died with it
        discarded = [(str(path), problem) for path, problem in results.verify_parts()]
        if discarded:
            progress.warn(f"{len(discarded)} cohort part(s) did not match their checksums and will be trained "
                          "again: " + "; ".join(f"{p}: {why}" for p, why in discarded))
        _, todo = plan(study, out, retry_failed=retry_failed, cohort_size=cohort_size,
                       workers=getattr(executor, "workers", None), configs=configs)
        ensure_random_scores(results.root, study)  # multi-env, or [report] random_episodes: before training
        manifest = {**_manifest(results, study, configs, started, executor, cohort_size), **(manifest_extra or {})}
        invocation = manifest["invocations"][-1]
        results.write_manifest(manifest)
        outcome = "interrupted"
        trained = 0
        try:
            progress.start(todo, done_runs=len(configs) - sum(len(c.configs) for c in todo), total_runs=len(configs))
            by_id = {c.run_id: c for c in configs}
            in_flight = None
            if getattr(executor, "records_in_flight", False):
                in_flight = InFlight(results.root, executor.name, getattr(executor, "address", None))
            for res in executor.map(todo, progress.steps, **({"in_flight": in_flight} if in_flight else {})):
                if len(configs) <= SAVE_POLICIES_MAX_RUNS:  # before the part: a done part implies its policies
                    from ..evaluate.policy_io import policy_path, save_policy  # torch: only in a driver that saves policies

                    for run in res.runs:
                        if run["status"] == "done" and run["run_id"] in res.policies:
                            save_policy(policy_path(out, run["run_id"]), by_id[run["run_id"]],
                                        res.policies[run["run_id"]], imports=study.imports,
                                        import_paths=study.import_paths)
                results.write_part(res.cohort_id, study.name, res.runs, res.curves, res.probes, res.wall_s,
                                   machine=res.machine)
                trained += len(res.runs)
                progress.cohort_done(res.cohort_id, [r["status"] for r in res.runs],
                                     env_steps=sum(int(r.get("env_steps") or 0) for r in res.runs))
            outcome = "finished"
        finally:
            progress.stop()
            (results.root / IN_FLIGHT_FILE).unlink(missing_ok=True)
            wall = time.perf_counter() - t0
            if outcome == "finished":
                results.combine(run_ids)
                manifest["files"] = results.combined_files()
            summary = summarize(results, run_ids, trained=trained, wall_s=wall)
            summary.discarded = discarded
            invocation.update(finished=now(), wall_s=round(wall, 3), trained_runs=trained, outcome=outcome)
            manifest.update(finished=invocation["finished"],
                            wall_s=round(sum(i.get("wall_s") or 0.0 for i in manifest["invocations"]), 3),
                            status="complete" if summary.counts["pending"] == 0 else "incomplete",
                            counts=summary.counts, machines=results.machines(run_ids))
            results.write_manifest(manifest)
    return summary


def summarize(results: ResultsDir, run_ids: Sequence[str], *, trained: int = 0, wall_s: float = 0.0) -> StudySummary:
    """Counts of done / diverged / failed / pending runs, and the failed runs with their errors (study order)."""
    records = results.records()
    counts = {"done": 0, "diverged": 0, "failed": 0, "pending": 0}
    failed = []
    for run_id in run_ids:
        rec = records.get(run_id)
        status = rec.status if rec else "pending"
        counts[status] = counts.get(status, 0) + 1
        if status == "failed":
            failed.append((run_id, rec.error))
    steps, budget = _steps(results, set(run_ids), records)
    return StudySummary(results.root, len(run_ids), trained, counts, failed, wall_s, env_steps=steps,
                        budget_steps=budget)


def _steps(results: ResultsDir, run_ids: set[str], records: dict) -> tuple[int, int]:
    """(env steps taken, budget) over the runs of `run_ids` that have a row with env_steps."""
    from .results_format import read_text_table

    steps = budget = 0
    for part in {id(r.part): r.part for r in records.values()}.values():
        df = read_text_table(part.path / "runs.csv")
        if not len(df) or "env_steps" not in df or "total_steps" not in df:
            continue
        latest = [records[r].part.path == part.path and r in run_ids for r in df["run_id"]]
        df = df[latest]
        df = df[df["env_steps"] != ""]
        steps += int(pd.to_numeric(df["env_steps"]).sum())
        budget += int(pd.to_numeric(df["total_steps"]).sum())
    return steps, budget


def _manifest(results: ResultsDir, study: Study, configs: Sequence[RunConfig], started: str, executor: Any,
              cohort_size: int | None) -> dict[str, Any]:
    previous = results.read_manifest() or {}
    invocations = list(previous.get("invocations", []))
    invocations.append({"started": started, "finished": None, "wall_s": None, "executor": executor.name,
                        "workers": getattr(executor, "workers", None), "cohort_size": cohort_size or "auto",
                        "trained_runs": 0, "outcome": "running", "pid": os.getpid()})
    return {
        "study": study.spec(),
        "name": study.name,
        "n_runs": len(configs),
        "n_configs": len(configs) // max(1, len(study.seeds)),
        "total_env_steps": sum(c.total_steps for c in configs),
        "run_ids": [c.run_id for c in configs],
        "versions": versions(),
        "git": git_commit(),
        "host": host(),
        "started": previous.get("started", started),
        "finished": None,
        "wall_s": previous.get("wall_s"),
        "status": "running",
        "invocations": invocations,
    }
