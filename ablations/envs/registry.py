"""Environments for a cohort: R runs × N episodes, stepped together, each run seeded from its own stream.

A `CohortEnv` holds the environments of every run of a cohort. The engine asks it to reset the N episodes of some runs
(each with a seed drawn from that run's env stream) and to step the runs that are still collecting. Two backends:

* `GymnasiumCohortEnv`: one gymnasium vector env per run (the id's own vectorized implementation where it has one,
  `SyncVectorEnv` otherwise). Every update starts with `reset(seed=s)`, `s` drawn from the run's env stream, so what
  happens between updates (autoresets of finished sub-envs) never leaks into the next update.
* native batched torch implementations (`ablations.envs.native`), which step all R×N episodes at once.
* `EnvPoolCohortEnv` (`ablations.envs.envpool_backend`, the optional ``envpool`` extra): EnvPool's C++ envs, one
  pool per run made at each reset; only when a config asks for ``env_backend = "envpool"``.

Spaces decide the policy kind: `Discrete` → Categorical, `Box` → diagonal Gaussian, `MultiBinary`/binary → Bernoulli.
"""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

import gymnasium as gym
import numpy as np

from ..config import ConfigError, RunConfig
from . import short_corridor  # noqa: F401 - registers the package's own ablations/ShortCorridor-v0
from .spec import EXACT_OBS_DTYPES, CohortEnv, EnvSpec, Preprocessor

if TYPE_CHECKING:
    import torch

def import_modules(modules: Sequence[str], paths: Sequence[str | Path] = ()) -> None:
    """Import `modules` (each registers custom gymnasium ids as a side effect), with `paths` put first on
    `sys.path` (a study file's folder). Importing runs the module's code, as any Python import does.
    Raise `ConfigError` naming the module if one cannot be imported."""
    for path in paths:
        path = str(Path(path).resolve())
        if path not in sys.path:
            sys.path.insert(0, path)
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any error in the user's module is a bad input
            hint = (f"; put {module.replace('.', '/')}.py beside the study file, install it, or add its folder "
                    "to PYTHONPATH" if isinstance(exc, ModuleNotFoundError) else "")
            raise ConfigError(f"cannot import {module!r} ({type(exc).__name__}: {exc}){hint}") from None


def split_env_id(env_id: str) -> tuple[str | None, str]:
    """gymnasium's ``module:Env-v0`` form → (module, "Env-v0"); a plain id → (None, id)."""
    module, sep, name = env_id.partition(":")
    return (module, name) if sep else (None, env_id)


def _registered(env_id: str) -> gym.envs.registration.EnvSpec:
    from .preprocess import ensure_registered  # ALE ids register on first use; Box2D imports quietly

    module, name = split_env_id(env_id)
    if module is not None:
        if not module or not name:
            raise ConfigError(f"env_id={env_id!r} is invalid; allowed: a gymnasium id such as CartPole-v1, or "
                              "'module:Env-v0' (a module that registers Env-v0 when imported)")
        try:
            import_modules([module])
        except ConfigError as exc:
            raise ConfigError(f"env_id={env_id!r}: {exc}") from None
    ensure_registered(name)
    try:
        return gym.spec(name)
    except Exception as exc:  # noqa: BLE001 - gymnasium raises several error types (NameNotFound, VersionNotFound, ...)
        hint = ("" if module is not None else "; a custom env needs its module imported first: `imports = "
                "[\"my_env\"]` in the study file, `--import my_env` on the command line, or the id "
                "'my_env:MyEnv-v0'")
        raise ConfigError(f"env_id={env_id!r} is not a registered gymnasium environment ({exc}){hint}") from None


def _make_vec(env_id: str, num_envs: int, preprocess: str | None) -> gym.vector.VectorEnv:
    spec = _registered(env_id)
    name = split_env_id(env_id)[1]
    if preprocess is None and spec.vector_entry_point is not None:
        return gym.make_vec(name, num_envs=num_envs, vectorization_mode="vector_entry_point")
    wrappers = [] if preprocess is None else [preprocessor(preprocess).wrap]
    return gym.make_vec(name, num_envs=num_envs, vectorization_mode="sync", wrappers=wrappers)


def describe(env_id: str, preprocess: str | None = None) -> EnvSpec:
    """Make the environment once and read its spaces → `EnvSpec`; raise `ConfigError` if unsupported."""
    spec = _registered(env_id)
    env = _make_vec(env_id, 1, preprocess)
    try:
        return _spec_from_spaces(env_id, env.single_observation_space, env.single_action_space,
                                 spec.max_episode_steps, preprocess)
    finally:
        env.close()


def _spec_from_spaces(env_id: str, obs_space: gym.Space, act_space: gym.Space, max_steps: int | None,
                      preprocess: str | None) -> EnvSpec:
    if not isinstance(obs_space, gym.spaces.Box):
        raise ConfigError(f"env_id={env_id!r}: observation space {obs_space} is not supported; allowed: Box "
                          "(or a preprocessor that turns it into one)")
    obs_dim = int(np.prod(obs_space.shape))
    obs_dtype = np.dtype(obs_space.dtype).name
    if obs_dtype not in EXACT_OBS_DTYPES:
        obs_dtype = "float32"
    spec = functools.partial(EnvSpec, obs_dtype=obs_dtype)
    if preprocess is not None and preprocessor(preprocess).binary_actions is not None:
        mapping = preprocessor(preprocess).binary_actions
        return spec(env_id, obs_dim, "bernoulli", 1, max_steps, action_map=mapping)
    if isinstance(act_space, gym.spaces.Discrete):
        if int(act_space.start) != 0:
            raise ConfigError(f"env_id={env_id!r}: Discrete action spaces must start at 0 (got {act_space})")
        return spec(env_id, obs_dim, "categorical", int(act_space.n), max_steps)
    if isinstance(act_space, gym.spaces.MultiBinary) and len(act_space.shape) == 1:
        return spec(env_id, obs_dim, "bernoulli", int(act_space.shape[0]), max_steps)
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        return spec(env_id, obs_dim, "gaussian", int(act_space.shape[0]), max_steps,
                       tuple(float(x) for x in act_space.low), tuple(float(x) for x in act_space.high))
    raise ConfigError(f"env_id={env_id!r}: action space {act_space} is not supported; allowed: Discrete "
                      "(Categorical), 1-d Box (Gaussian), 1-d MultiBinary (Bernoulli)")


def check_policy_init(cfg: RunConfig, spec: EnvSpec) -> None:
    """Raise `ConfigError` unless `cfg`'s initial policy fits `spec`'s actions: `init_logits` one logit per action
    (Categorical) or per binary choice (Bernoulli), `init_log_std` one log-std per action dimension (Gaussian)."""
    what = {"categorical": "actions", "bernoulli": "binary choices", "gaussian": "action dimensions"}[spec.kind]
    for name, kinds in (("init_logits", ("categorical", "bernoulli")), ("init_log_std", ("gaussian",))):
        value = getattr(cfg, name)
        if value is None:
            continue
        if spec.kind not in kinds:
            other = "init_log_std (a Gaussian policy's log-std)" if spec.kind == "gaussian" else \
                "init_logits (one logit per action or binary choice)"
            raise ConfigError(f"{name}={list(value)} does not fit env_id={spec.env_id!r}: its policy is "
                              f"{spec.kind.capitalize()}; allowed: None, or {other}")
        if len(value) != spec.act_dim:
            raise ConfigError(f"{name}={list(value)} has {len(value)} value(s) but env_id={spec.env_id!r} has "
                              f"{spec.act_dim} {what}; allowed: a list of {spec.act_dim} numbers, or None")


class GymnasiumCohortEnv:
    """One gymnasium vector env of N sub-envs per run."""

    def __init__(self, spec: EnvSpec, num_runs: int, num_envs: int, preprocess: str | None = None):
        self.spec, self.num_runs, self.num_envs = spec, num_runs, num_envs
        self._envs = [_make_vec(spec.env_id, num_envs, preprocess) for _ in range(num_runs)]
        self._dtype = np.dtype(spec.obs_dtype)

    def reset(self, runs: np.ndarray, seeds: np.ndarray) -> torch.Tensor:
        import torch  # here, not at import: the driver of a study reads env specs without loading torch

        obs = [self._envs[r].reset(seed=int(s))[0] for r, s in zip(runs, seeds)]
        return torch.from_numpy(np.stack(obs).reshape(len(runs), self.num_envs, -1).astype(self._dtype, copy=False))

    def step(self, runs: np.ndarray, actions: torch.Tensor):
        import torch

        acts = actions.numpy()
        obs, rew, term, trunc = [], [], [], []
        for j, r in enumerate(runs):
            o, rw, te, tr, _ = self._envs[r].step(acts[j])
            obs.append(o)
            rew.append(rw)
            term.append(te)
            trunc.append(tr)
        k = len(runs)
        return (torch.from_numpy(np.stack(obs).reshape(k, self.num_envs, -1).astype(self._dtype, copy=False)),
                torch.from_numpy(np.stack(rew).astype(np.float64)),
                torch.from_numpy(np.stack(term).astype(bool)),
                torch.from_numpy(np.stack(trunc).astype(bool)))

    def close(self) -> None:
        for env in self._envs:
            env.close()


def native_available(env_id: str) -> bool:
    try:
        from .native import NATIVE_ENVS
    except ImportError:
        return False
    return env_id in NATIVE_ENVS


def resolve_backend(cfg: RunConfig) -> Literal["native", "gymnasium", "envpool"]:
    """`auto` → native where a native implementation exists (and no preprocessor is set), else gymnasium; `envpool`
    only when asked for (raise `ConfigError` if EnvPool is not installed or has no such id)."""
    if cfg.env_backend == "gymnasium":
        return "gymnasium"
    if cfg.env_backend == "envpool":
        from .envpool_backend import envpool_task, unavailable_message

        if envpool_task(cfg.env_id, cfg.preprocess) is None:
            raise ConfigError(unavailable_message(cfg.env_id, cfg.preprocess))
        return "envpool"
    has_native = cfg.preprocess is None and native_available(cfg.env_id)
    if cfg.env_backend == "native" and not has_native:
        from .native import NATIVE_ENVS

        if cfg.preprocess is not None and native_available(cfg.env_id):
            raise ConfigError(f"env_backend='native' is not available with preprocess={cfg.preprocess!r} (native "
                              "envs take no preprocessor); allowed: preprocess unset, or env_backend='gymnasium' "
                              "or 'auto'")
        raise ConfigError(f"env_backend='native' is not available for env_id={cfg.env_id!r}; "
                          f"native ids: {sorted(NATIVE_ENVS)}; use env_backend='gymnasium' or 'auto'")
    return "native" if has_native else "gymnasium"


def make_cohort_env(configs: Sequence[RunConfig], num_envs: int | None = None,
                    spec: EnvSpec | None = None) -> CohortEnv:
    """The environments of one cohort (all configs share `cohort_key()`): N episodes per run unless `num_envs`.

    `spec`: the cohort's `describe(env_id, preprocess)` if the caller has it (saves making the env once more)."""
    first = configs[0]
    n = first.episodes_per_update if num_envs is None else num_envs
    backend = resolve_backend(first)
    if backend == "native":
        from .native import NATIVE_ENVS

        return NATIVE_ENVS[first.env_id](num_runs=len(configs), num_envs=n)
    spec = spec or describe(first.env_id, first.preprocess)
    if backend == "envpool":
        from .envpool_backend import EnvPoolCohortEnv

        return EnvPoolCohortEnv(spec, len(configs), n, first.preprocess)
    return GymnasiumCohortEnv(spec, len(configs), n, first.preprocess)


# ---- observation preprocessors (named, so a config stays plain data) -------------------------------------------
def _registry() -> dict[str, Preprocessor]:
    from . import preprocess as pp  # imported lazily: optional dependencies live there

    return pp.PREPROCESSORS


def preprocessor(name: str) -> Preprocessor:
    table = _registry()
    if name not in table:
        raise ConfigError(f"preprocess={name!r} is unknown; allowed: {sorted(table)} or None")
    return table[name]
