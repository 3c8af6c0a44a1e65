"""The EnvPool backend (`env_backend = "envpool"`, the optional ``envpool`` extra): EnvPool's C++ environments behind
the `CohortEnv` protocol, so the training loop is the same for every backend.

Which ids: an `env_id` whose name EnvPool registers under the same name (``LunarLander-v3``/``-v2``,
``HalfCheetah-v5``, ``Hopper-v5`` and the other MuJoCo ids, the classic-control ids), without a `preprocess`. Atari
ids (``ALE/...``) and preprocessors are refused (`envpool_task` returns None): EnvPool's Atari pipeline (84×84
grayscale, frame stack 4, no-op starts, fire reset, no sticky actions) is not gymnasium's ALE v5 screen, and the
package's ``pong`` preprocessor needs that screen. The spaces, and so the policy's shapes and action bounds, are read
from gymnasium's registration of the same id (`registry.describe`); EnvPool's spaces must match them in shape.

Guarantees (each held by a test in tests/envs/test_envpool_backend.py):

* Invariant 1. One pool per run, made anew at every `reset(runs, seeds)`: the pool of a run is seeded from the seed
  the engine drew from that run's env stream and nothing else (episode i gets ``env_seed[i]``, the i-th word of
  ``SeedSequence(seed).generate_state(N, uint32)`` shifted right by 1, EnvPool's seeds being int32). EnvPool cannot
  reseed a pool (``reset(seed=...)`` is ignored), so a fresh pool per reset is what makes an update's start states a
  function of its seed alone, as ``reset(seed=s)`` is for gymnasium: a run's rows are the same bits rerun, alone or
  in any cohort, and an evaluation's stochastic and greedy passes start from the same states. Each pool has one
  worker thread; `step` sends every stepped run's actions before receiving any, so the runs' pools step
  concurrently, and each env's result depends on its own actions only.
* The step limit and the flags are gymnasium's `TimeLimit`'s: ``truncated = steps >= max_episode_steps`` and
  ``terminated`` the env's own, both set when an episode terminates on its last allowed step. (EnvPool's own limit
  reports ``terminated = False`` there; the pool is made with one step more than the limit and the limit applied
  here.) An episode that has ended keeps its flags; its further outputs are EnvPool's autoreset and are ignored, as
  the protocol says.
* Policies are interchangeable: the spec is gymnasium's, so a policy trained on one backend evaluates on the other.

What differs from gymnasium's environments (the rows are not gymnasium's bits, and a study should not mix backends
in one comparison; `env_backend` is a column of runs.csv and part of the cohort key):

* Dynamics: EnvPool's C++ ports (Box2D compiled into EnvPool; MuJoCo's own C library through EnvPool's port of
  gymnasium's v5 envs). They follow gymnasium's equations, but float arithmetic is C++'s (float32 rewards,
  LunarLander's float32 observations computed in another order), so trajectories drift apart from gymnasium's
  after some steps even from the same state.
* RNG: start states (and LunarLander's terrain and initial push) are drawn from each env's own C++ generator
  seeded as above, not from gymnasium's ``PCG64(SeedSequence(seed + i))``: the same seed gives other start states
  than the gymnasium backend (the same distribution).
* Atari preprocessing: not offered (see above).
* Rewards are EnvPool's float32 (the engine stores every reward as float32 in any case).
"""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ConfigError
from .spec import EnvSpec

if TYPE_CHECKING:
    import torch

#: The extra that installs EnvPool.
EXTRA = "envpool"


@functools.cache
def _task_ids() -> frozenset[str] | None:
    """EnvPool's registered task ids, or None when EnvPool is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # third-party import-time deprecations must not fail `-W error` runs
            import envpool
    except ImportError:
        return None
    return frozenset(envpool.list_all_envs())


def installed() -> bool:
    return _task_ids() is not None


def envpool_task(env_id: str, preprocess: str | None = None) -> str | None:
    """EnvPool's task id for gymnasium's `env_id` (the same name), or None when EnvPool lacks it, the id is namespaced
    (``ALE/...``, ``module:Env``) or a preprocessor is set. Raise `ConfigError` if EnvPool is not installed."""
    tasks = _task_ids()
    if tasks is None:
        raise ConfigError(f"env_backend='envpool' needs the optional package 'envpool' (not installed); install it "
                          f"with: pip install 'ablations[{EXTRA}]'; or use env_backend = auto | native | gymnasium")
    if preprocess is not None or "/" in env_id or ":" in env_id:
        return None
    return env_id if env_id in tasks else None


def env_seeds(seed: int, num_envs: int) -> np.ndarray:
    """The per-episode EnvPool seeds (int32 ≥ 0) of a reset with `seed`: a function of `seed` and the episode's
    index."""
    words = np.random.SeedSequence(int(seed)).generate_state(num_envs, np.uint32)
    return (words >> np.uint32(1)).astype(np.int64)


def make_pool(task: str, seeds: np.ndarray, max_episode_steps: int | None) -> Any:
    """One EnvPool gymnasium pool of len(seeds) envs, one worker thread, env i seeded `seeds[i]`; its own step limit
    one more than `max_episode_steps` (the limit is applied by `EnvPoolCohortEnv`)."""
    import envpool

    kwargs: dict[str, Any] = {"num_envs": len(seeds), "batch_size": len(seeds), "num_threads": 1,
                              "seed": [int(s) for s in seeds]}
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its spaces warn about float64 bounds cast to float32
        pool = envpool.make_gymnasium(task, **kwargs)
        pool.single_observation_space, pool.single_action_space  # noqa: B018 - built (and cached) here, quietly
    return pool


class EnvPoolCohortEnv:
    """R runs × N episodes, one EnvPool pool of N envs per run, made at each reset of the run."""

    def __init__(self, spec: EnvSpec, num_runs: int, num_envs: int, preprocess: str | None = None):
        if num_runs < 1 or num_envs < 1:
            raise ValueError(f"num_runs and num_envs must be >= 1 (got {num_runs}, {num_envs})")
        task = envpool_task(spec.env_id, preprocess)
        if task is None:
            raise ConfigError(unavailable_message(spec.env_id, preprocess))
        self.spec, self.num_runs, self.num_envs, self._task = spec, int(num_runs), int(num_envs), task
        self._pools: list[Any] = [None] * self.num_runs
        shape = (self.num_runs, self.num_envs)
        self._n = np.zeros(shape, dtype=np.int64)  # steps taken in the current episode
        self._te, self._tr = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
        self._lv = np.zeros(shape, dtype=bool)  # reset and not yet ended
        self._dtype = np.dtype(spec.obs_dtype)

    def _check_spaces(self, pool: Any) -> None:
        obs_shape, act = tuple(pool.single_observation_space.shape), pool.single_action_space
        act_dim = int(act.n) if hasattr(act, "n") else int(np.prod(act.shape))
        if int(np.prod(obs_shape)) != self.spec.obs_dim or act_dim != self.spec.act_dim:
            raise ConfigError(f"env_backend='envpool': EnvPool's {self._task} has observation shape {obs_shape} and "
                              f"{act_dim} action(s), gymnasium's {self.spec.env_id} {self.spec.obs_dim} and "
                              f"{self.spec.act_dim}; allowed: env_backend = auto | native | gymnasium for this id")

    def reset(self, runs: np.ndarray, seeds: np.ndarray) -> torch.Tensor:
        import torch

        runs, seeds = np.asarray(runs, dtype=np.int64), np.asarray(seeds)
        if runs.shape != seeds.shape or runs.ndim != 1:
            raise ValueError(f"runs and seeds must be 1-d arrays of the same length (got {runs.shape}, {seeds.shape})")
        obs = []
        for r, s in zip(runs.tolist(), seeds.tolist()):
            if self._pools[r] is not None:
                self._pools[r].close()
            pool = make_pool(self._task, env_seeds(s, self.num_envs), self.spec.max_episode_steps)
            if self._pools[r] is None:
                self._check_spaces(pool)
            self._pools[r] = pool
            obs.append(pool.reset()[0])
        self._n[runs], self._te[runs], self._tr[runs], self._lv[runs] = 0, False, False, True
        return torch.from_numpy(np.stack(obs).reshape(len(runs), self.num_envs, -1).astype(self._dtype, copy=False))

    def step(self, runs: np.ndarray, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                       torch.Tensor]:
        import torch

        runs = np.asarray(runs, dtype=np.int64)
        acts = actions.detach().numpy()
        if acts.shape[:2] != (len(runs), self.num_envs):
            raise ValueError(f"actions must be [k={len(runs)}, N={self.num_envs}, ...] (got {tuple(acts.shape)})")
        for j, r in enumerate(runs.tolist()):  # all pools step at once, each in its own thread
            self._pools[r].send(acts[j])
        obs, rew, term = [], [], []
        for r in runs.tolist():
            o, rw, te, _, _ = self._pools[r].recv()
            obs.append(o)
            rew.append(rw)
            term.append(te)
        live = self._lv[runs]
        steps = self._n[runs] + live  # an ended episode keeps its count, so its `trunc` below is its stored flag
        max_steps = self.spec.max_episode_steps
        trunc = steps >= max_steps if max_steps is not None else np.zeros_like(live)
        term = np.where(live, np.stack(term).astype(bool), self._te[runs])
        self._n[runs], self._te[runs], self._tr[runs] = steps, term, trunc
        self._lv[runs] = live & ~(term | trunc)
        k = len(runs)
        return (torch.from_numpy(np.stack(obs).reshape(k, self.num_envs, -1).astype(self._dtype, copy=False)),
                torch.from_numpy(np.where(live, np.stack(rew).astype(np.float64), 0.0)),
                torch.from_numpy(term), torch.from_numpy(trunc))

    def close(self) -> None:
        for i, pool in enumerate(self._pools):
            if pool is not None:
                pool.close()
                self._pools[i] = None

    def __repr__(self) -> str:
        return f"EnvPoolCohortEnv({self.spec.env_id}, num_runs={self.num_runs}, num_envs={self.num_envs})"


def unavailable_message(env_id: str, preprocess: str | None) -> str:
    """Why `env_backend='envpool'` cannot run `env_id` (EnvPool is installed)."""
    why = (f"with preprocess={preprocess!r} (EnvPool's backend takes no preprocessor)" if preprocess is not None
           else "for an ALE id (EnvPool's Atari preprocessing is not gymnasium's ALE v5 screen)" if "/" in env_id
           else "(EnvPool has no task of that name)")
    return (f"env_backend='envpool' is not available for env_id={env_id!r} {why}; allowed: env_backend = auto | "
            f"native | gymnasium, or an id EnvPool has, e.g. LunarLander-v3, HalfCheetah-v5, Hopper-v5 "
            f"(envpool.list_all_envs() lists them)")
