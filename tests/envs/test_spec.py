"""`ablations.envs.spec`: the `EnvSpec` record (fields, defaults, frozen), the obs-dtype rule (`EXACT_OBS_DTYPES`:
int8/uint8 kept, every other dtype stored as float32, applied when a spec is read from spaces), and the
`Preprocessor` record."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from ablations.envs.registry import _spec_from_spaces
from ablations.envs.spec import EXACT_OBS_DTYPES, EnvSpec, Preprocessor


def test_env_spec_fields_in_order_and_their_defaults():
    names = [f.name for f in dataclasses.fields(EnvSpec)]
    assert names == ["env_id", "obs_dim", "kind", "act_dim", "max_episode_steps", "action_low", "action_high",
                     "action_map", "obs_dtype"]
    spec = EnvSpec("CartPole-v1", 4, "categorical", 2, 500)
    assert (spec.action_low, spec.action_high, spec.action_map, spec.obs_dtype) == (None, None, None, "float32")


def test_env_spec_is_a_frozen_value():
    a = EnvSpec("Pendulum-v1", 3, "gaussian", 1, 200, (-2.0,), (2.0,))
    assert a == EnvSpec("Pendulum-v1", 3, "gaussian", 1, 200, (-2.0,), (2.0,))
    assert hash(a) == hash(EnvSpec("Pendulum-v1", 3, "gaussian", 1, 200, (-2.0,), (2.0,)))
    assert a != dataclasses.replace(a, obs_dtype="uint8")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.obs_dim = 4  # type: ignore[misc]


def test_exact_obs_dtypes_are_the_small_integers_float32_holds_exactly():
    assert EXACT_OBS_DTYPES == ("int8", "uint8")
    for name in EXACT_OBS_DTYPES:  # every value of the dtype survives a round trip through float32
        info = np.iinfo(name)
        values = np.arange(info.min, info.max + 1, dtype=name)
        assert (values.astype(np.float32).astype(name) == values).all()


@pytest.mark.parametrize("dtype, stored", [
    (np.uint8, "uint8"), (np.int8, "int8"),  # kept
    (np.float32, "float32"), (np.float64, "float32"), (np.int32, "float32"), (np.int64, "float32"),
    (np.uint16, "float32"),  # any other dtype: float32
])
def test_obs_dtype_rule(dtype, stored):
    low, high = (0, 1) if np.issubdtype(dtype, np.integer) else (-1.0, 1.0)
    obs = gym.spaces.Box(low, high, shape=(2, 3), dtype=dtype)
    spec = _spec_from_spaces("X-v0", obs, gym.spaces.Discrete(3), 7, None)
    assert spec == EnvSpec("X-v0", 6, "categorical", 3, 7, obs_dtype=stored)  # obs_dim: 2 × 3 flattened


def test_preprocessor_record_defaults_to_no_binary_actions():
    def wrap(env):
        return env

    p = Preprocessor("identity", wrap)
    assert (p.name, p.wrap, p.binary_actions) == ("identity", wrap, None)
    assert Preprocessor("pong", wrap, (2, 3)).binary_actions == (2, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "other"  # type: ignore[misc]
