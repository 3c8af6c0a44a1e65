"""`ablations.envs.registry`: which backend a config gets (`resolve_backend`) and its errors, `describe` of
gymnasium's classic-control ids (as gymnasium's registry says), the space → policy kind rules, `make_cohort_env`
(each run's envs depend on that run's own reset seeds only, whichever cohort it is in), the id forms, custom
imports and the preprocessor lookup."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from ablations.config import ConfigError, RunConfig
from ablations.envs import native
from ablations.envs.registry import (GymnasiumCohortEnv, _spec_from_spaces, describe, import_modules,
                                     make_cohort_env, native_available, preprocessor, resolve_backend, split_env_id)
from ablations.envs.spec import EnvSpec
from ablations.train.seeding import draw_seed, run_streams

pytestmark = pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date:DeprecationWarning")

NATIVE_IDS = ["Acrobot-v1", "CartPole-v0", "CartPole-v1", "MountainCar-v0", "Pendulum-v1", "ablations/ShortCorridor-v0"]


# ---- resolve_backend -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, backend", [
    ({}, "native"),  # auto, and CartPole-v1 has a native implementation
    ({"env_id": "Pendulum-v1"}, "native"),
    ({"env_backend": "native"}, "native"),
    ({"env_backend": "gymnasium"}, "gymnasium"),  # asked for: gymnasium even where a native one exists
    ({"env_id": "MountainCarContinuous-v0"}, "gymnasium"),  # auto without a native implementation
    ({"preprocess": "pong"}, "gymnasium"),  # auto with a preprocessor: never native
])
def test_resolve_backend_choices(fields, backend):
    assert resolve_backend(RunConfig(**fields)) == backend


def test_native_ids():
    assert sorted(native.NATIVE_ENVS) == NATIVE_IDS
    assert all(native_available(i) for i in NATIVE_IDS) and not native_available("MountainCarContinuous-v0")


def test_resolve_backend_native_where_there_is_none():
    cfg = RunConfig(env_id="MountainCarContinuous-v0", env_backend="native")
    with pytest.raises(ConfigError) as exc:
        resolve_backend(cfg)
    assert str(exc.value) == ("env_backend='native' is not available for env_id='MountainCarContinuous-v0'; native "
                              f"ids: {NATIVE_IDS}; use env_backend='gymnasium' or 'auto'")


def test_resolve_backend_native_with_a_preprocessor_names_the_preprocessor():
    cfg = RunConfig(env_backend="native", preprocess="pong")
    with pytest.raises(ConfigError) as exc:
        resolve_backend(cfg)
    assert str(exc.value).startswith("env_backend='native' is not available") and "preprocess='pong'" in str(exc.value)


def test_an_unknown_backend_is_refused_with_the_allowed_values():
    with pytest.raises(ConfigError) as exc:
        RunConfig(env_backend="gpu")
    assert str(exc.value) == "env_backend='gpu' is invalid; allowed: auto | native | gymnasium | envpool"


@pytest.mark.parametrize("fields, why", [
    ({"env_id": "ALE/Pong-v5"}, "for an ALE id"),
    ({"preprocess": "pong"}, "with preprocess='pong'"),
])
def test_resolve_backend_envpool_without_such_a_task(fields, why):
    pytest.importorskip("envpool")
    cfg = RunConfig(env_backend="envpool", **fields)
    with pytest.raises(ConfigError) as exc:
        resolve_backend(cfg)
    message = str(exc.value)
    assert message.startswith(f"env_backend='envpool' is not available for env_id={cfg.env_id!r} {why}")
    assert "allowed: env_backend = auto | native | gymnasium" in message


# ---- describe --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id, expected", [
    ("CartPole-v1", EnvSpec("CartPole-v1", 4, "categorical", 2, 500)),
    ("CartPole-v0", EnvSpec("CartPole-v0", 4, "categorical", 2, 200)),
    ("Acrobot-v1", EnvSpec("Acrobot-v1", 6, "categorical", 3, 500)),
    ("MountainCar-v0", EnvSpec("MountainCar-v0", 2, "categorical", 3, 200)),
    ("Pendulum-v1", EnvSpec("Pendulum-v1", 3, "gaussian", 1, 200, (-2.0,), (2.0,))),
    ("MountainCarContinuous-v0", EnvSpec("MountainCarContinuous-v0", 2, "gaussian", 1, 999, (-1.0,), (1.0,))),
])
def test_describe_classic_control(env_id, expected):
    spec = describe(env_id)
    assert spec == expected
    assert spec.max_episode_steps == gym.spec(env_id).max_episode_steps


def test_the_native_specs_are_gymnasiums():
    for env_id in NATIVE_IDS:
        assert native.NATIVE_ENVS[env_id].spec == describe(env_id), env_id


@pytest.mark.parametrize("env_id, message", [
    ("NoSuch-v0", "env_id='NoSuch-v0' is not a registered gymnasium environment ("),
    (":Foo-v0", "env_id=':Foo-v0' is invalid; allowed: a gymnasium id such as CartPole-v1, or 'module:Env-v0'"),
    ("no_such_module_xyz:Foo-v0", "env_id='no_such_module_xyz:Foo-v0': cannot import 'no_such_module_xyz' "
                                  "(ModuleNotFoundError"),
    ("FrozenLake-v1", "env_id='FrozenLake-v1': observation space Discrete(16) is not supported; allowed: Box"),
])
def test_describe_errors(env_id, message):
    with pytest.raises(ConfigError) as exc:
        describe(env_id)
    assert str(exc.value).startswith(message)


def test_an_unregistered_plain_id_hints_at_imports():
    with pytest.raises(ConfigError, match=r"a custom env needs its module imported first: `imports = \[\"my_env\"\]`"):
        describe("NoSuch-v0")


# ---- spaces → policy kind --------------------------------------------------------------------------------------
BOX = gym.spaces.Box(-1.0, 1.0, shape=(5,), dtype=np.float32)


@pytest.mark.parametrize("act, expected", [
    (gym.spaces.Discrete(4), EnvSpec("X-v0", 5, "categorical", 4, 9)),
    (gym.spaces.MultiBinary(3), EnvSpec("X-v0", 5, "bernoulli", 3, 9)),
    (gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 3.0], np.float32), dtype=np.float32),
     EnvSpec("X-v0", 5, "gaussian", 2, 9, (-1.0, 0.0), (1.0, 3.0))),
])
def test_action_space_decides_the_policy_kind(act, expected):
    assert _spec_from_spaces("X-v0", BOX, act, 9, None) == expected


def test_a_binary_preprocessor_makes_a_bernoulli_over_two_env_actions():
    mapping = preprocessor("pong").binary_actions
    assert mapping is not None and len(mapping) == 2
    spec = _spec_from_spaces("X-v0", BOX, gym.spaces.Discrete(6), None, "pong")
    assert spec == EnvSpec("X-v0", 5, "bernoulli", 1, None, action_map=mapping)


@pytest.mark.parametrize("act, message", [
    (gym.spaces.Discrete(3, start=1), "Discrete action spaces must start at 0"),
    (gym.spaces.Box(-1.0, 1.0, shape=(2, 2), dtype=np.float32),
     "is not supported; allowed: Discrete (Categorical), 1-d Box (Gaussian), 1-d MultiBinary (Bernoulli)"),
    (gym.spaces.MultiDiscrete([2, 3]), "is not supported; allowed: Discrete"),
])
def test_unsupported_action_spaces(act, message):
    with pytest.raises(ConfigError) as exc:
        _spec_from_spaces("X-v0", BOX, act, 9, None)
    assert str(exc.value).startswith("env_id='X-v0': ") and message in str(exc.value)


# ---- make_cohort_env -------------------------------------------------------------------------------------------
def _first_seed(cfg: RunConfig) -> int:
    """The reset seed of a run's first update: the first draw from its own env stream."""
    return draw_seed(run_streams(cfg.seed).env)


@pytest.mark.parametrize("backend, kind", [("auto", native.CartPole), ("gymnasium", GymnasiumCohortEnv)])
def test_make_cohort_env_backend_and_shape(backend, kind):
    configs = [RunConfig(seed=s, env_backend=backend, episodes_per_update=3) for s in range(2)]
    env = make_cohort_env(configs)
    try:
        assert isinstance(env, kind) and (env.num_runs, env.num_envs) == (2, 3)  # N = episodes_per_update
        assert env.spec == describe("CartPole-v1")
    finally:
        env.close()
    env = make_cohort_env(configs, num_envs=5)
    assert env.num_envs == 5
    env.close()


@pytest.mark.parametrize("env_id, backend", [("CartPole-v1", "auto"), ("CartPole-v1", "gymnasium"),
                                             ("Pendulum-v1", "auto"), ("Pendulum-v1", "gymnasium")])
def test_a_runs_envs_follow_its_own_seed_alone_or_in_a_cohort(env_id, backend):
    """Run `seed=5` reset with its first update's seed gives the same first observations alone and at position 1 of
    a cohort of three; after the same actions, the same observations and rewards. Another run's seed gives others."""
    configs = [RunConfig(env_id=env_id, env_backend=backend, seed=s, episodes_per_update=4) for s in (9, 5, 2)]
    me = configs[1]
    alone, cohort = make_cohort_env([me]), make_cohort_env(configs)
    try:
        seeds = [_first_seed(c) for c in configs]
        obs_alone = alone.reset(np.array([0]), np.array([seeds[1]]))
        obs_all = cohort.reset(np.arange(3), np.array(seeds))
        assert obs_alone.shape == (1, 4, alone.spec.obs_dim) and obs_all.shape == (3, 4, alone.spec.obs_dim)
        assert torch.equal(obs_alone[0], obs_all[1])
        assert not torch.equal(obs_all[0], obs_all[1]) and not torch.equal(obs_all[2], obs_all[1])
        if alone.spec.kind == "categorical":
            actions = torch.tensor([[0, 1, 1, 0]] * 3)
        else:
            actions = torch.full((3, 4, 1), 0.5)
        step_alone = alone.step(np.array([0]), actions[1:2])
        step_all = cohort.step(np.arange(3), actions)
        for a, b in zip(step_alone, step_all):
            assert torch.equal(a[0], b[1])
        # reset again: only run 1 of the cohort, with the same seed → the same start
        again = cohort.reset(np.array([1]), np.array([seeds[1]]))
        assert torch.equal(again[0], obs_alone[0])
    finally:
        alone.close()
        cohort.close()


# ---- ids, imports, preprocessors -------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id, parts", [
    ("CartPole-v1", (None, "CartPole-v1")), ("my_env:MyEnv-v0", ("my_env", "MyEnv-v0")),
    ("pkg.mod:Env-v2", ("pkg.mod", "Env-v2")), ("ALE/Pong-v5", (None, "ALE/Pong-v5")), (":X-v0", ("", "X-v0")),
])
def test_split_env_id(env_id, parts):
    assert split_env_id(env_id) == parts


def test_import_modules_puts_the_paths_first_and_imports(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "t_tests_registry_probe_mod.py").write_text("VALUE = 42\n")
    import_modules(["t_tests_registry_probe_mod"], [tmp_path])
    assert sys.path[0] == str(tmp_path.resolve())
    assert sys.modules["t_tests_registry_probe_mod"].VALUE == 42
    import_modules([], [tmp_path])  # a path already there is not added twice
    assert sys.path.count(str(tmp_path.resolve())) == 1
    monkeypatch.delitem(sys.modules, "t_tests_registry_probe_mod")


def test_import_modules_errors_name_the_module(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "t_tests_registry_broken_mod.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError) as exc:
        import_modules(["t_tests_registry_broken_mod"], [tmp_path])
    assert str(exc.value) == "cannot import 't_tests_registry_broken_mod' (RuntimeError: boom)"  # no hint: it exists
    with pytest.raises(ConfigError) as exc:
        import_modules(["no_such.mod_xyz"])
    assert str(exc.value) == ("cannot import 'no_such.mod_xyz' (ModuleNotFoundError: No module named 'no_such'); put "
                              "no_such/mod_xyz.py beside the study file, install it, or add its folder to PYTHONPATH")


def test_preprocessor_lookup():
    assert preprocessor("pong").name == "pong"
    with pytest.raises(ConfigError) as exc:
        preprocessor("crop")
    assert str(exc.value) == "preprocess='crop' is unknown; allowed: ['pong'] or None"
