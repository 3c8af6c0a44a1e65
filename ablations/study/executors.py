"""Executors: where cohorts train. Serial (in-process), local process pool (the default) and Ray (optional extra).
They only execute: planning, the results directory and the manifest are the driver's (`study.driver`).

The unit of work is a `Cohort`. Every executor runs the same function, `train_isolated`, in its worker, with one torch
thread, and returns the rows to the driver (no worker ever writes a file; no shared file system is needed).

Failure isolation: if `train_cohort` raises for a cohort, each of its runs is retrained alone; a run that still
raises is recorded as status "failed" with "<ExceptionType>: <message>", and its cohort-mates keep their rows
(invariant 1 makes the solo rows identical to the cohort ones).
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import socket
import time

from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from ..config import RunConfig
from .machine import current_machine
from .results_format import failed_run_row
from .cohorts import Cohort

DEFAULT_TRAINER = "ablations.study.worker:train_cohort"
#: Seconds between progress messages from a worker.
PROGRESS_EVERY = 0.25
ProgressFn = Callable[[str, int], None]  # (cohort_id, env_steps_delta)


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


def ray_init_message(address: str | None, exc: BaseException) -> str:
    """What `ray.init` failing means, with Ray's own error (its type and message) as the cause. Ray 2.5x's `ray start
    --head` turns token authentication on by default, and a client without RAY_AUTH_MODE=token is refused with a
    plain ConnectionError (the cause, InvalidAuthToken, only in Ray's log lines): the hint says so."""
    cause = f"{type(exc).__name__}: {exc}".strip()
    text = cause.lower()
    hint = "start one with `ray start --head` (see README, On a Ray cluster)"
    if address is not None and os.environ.get("RAY_AUTH_MODE", "").lower() != "token" and (
            "auth" in text or "token" in text or "failed to connect" in text):
        hint = ("if the cluster uses token authentication (`ray start --head` turns it on by default since Ray "
                "2.5x; Ray's log lines above then say InvalidAuthToken), set RAY_AUTH_MODE=token in this shell too "
                "(the token is read from ~/.ray/auth_token; on another machine copy it there, see `ray "
                "get-auth-token`); else check that the cluster is up (`ray status`) and the address")
    elif "could not find any running ray instance" in text:
        hint = ("no cluster was found from this machine: start one with `ray start --head`, or give its address "
                "(see README, On a Ray cluster)")
    where = "a new local Ray instance" if address is None else f"the Ray cluster at {address!r}"
    return f"cannot connect to {where}: {cause}; {hint}. Nothing was written"


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

    def connect(self) -> None:
        """Connect to the cluster (start a local one without `address`) unless connected already; the study driver
        calls it before it writes anything. `ExecutorSetupError` with Ray's own error when the cluster does not
        answer (e.g. a cluster started with token auth, `RAY_AUTH_MODE=token`, needs it in this shell too)."""
        ray = self.ray
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        if self.address is None:
            kwargs["num_cpus"] = self.workers
        else:
            kwargs["address"] = self.address
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises many types here; its own message is the cause
            raise ExecutorSetupError(ray_init_message(self.address, exc)) from None
        self._connected = True

    def close(self) -> None:
        """Disconnect if `connect` connected (a Ray session started by the caller is left alone)."""
        if getattr(self, "_connected", False):
            self._connected = False
            self.ray.shutdown()

    def map(self, todo: Sequence[Cohort], on_progress: ProgressFn, in_flight: Any = None) -> Iterator[CohortResult]:
        """Yield each cohort's result as it arrives. `in_flight`: a `progress.InFlight` to keep up to date."""
        if not todo:
            return
        ray = self.ray
        owns = not ray.is_initialized()
        self.connect()
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
                self.close()


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
