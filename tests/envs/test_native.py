"""Native classic-control envs against gymnasium as the oracle: bit-exact states, observations, rewards and flags."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from ablations.envs.registry import GymnasiumCohortEnv, describe
from ablations.envs.native import NATIVE_ENVS, _libm_square
from ablations.envs.pcg64 import pcg64_doubles
from ablations.study.machine import numpy_simd

ENV_IDS = sorted(NATIVE_ENVS)
CORE_IDS = ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0"]

# gymnasium warns whenever CartPole-v0 is made (the oracle side of the CartPole-v0 cases): expected, not a bug here
pytestmark = pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date:DeprecationWarning")


def _random_actions(spec, rng: np.random.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Discrete: uniform over actions. Box: uniform over 1.5× the bounds, so that a third falls outside (clipping)."""
    if spec.kind == "categorical":
        return torch.from_numpy(rng.integers(0, spec.act_dim, size=shape))
    low, high = np.array(spec.action_low), np.array(spec.action_high)
    mid, half = (low + high) / 2, (high - low) / 2
    return torch.from_numpy(rng.uniform(mid - 1.5 * half, mid + 1.5 * half, size=(*shape, spec.act_dim))
                            .astype(np.float32))


def _set_state(env: gym.Env, state: np.ndarray) -> None:
    env.state = state.copy()
    if hasattr(env, "steps_beyond_terminated"):  # CartPole warns when stepped after a termination it reported
        env.steps_beyond_terminated = None


def test_all_core_envs_present():
    assert set(CORE_IDS) <= set(NATIVE_ENVS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spec_equals_describe(env_id):
    env = NATIVE_ENVS[env_id](num_runs=2, num_envs=3)
    assert env.spec == describe(env_id)
    assert (env.num_runs, env.num_envs) == (2, 3)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_matches_gymnasium_backend(env_id):
    R, N = 3, 5
    native, oracle = NATIVE_ENVS[env_id](R, N), GymnasiumCohortEnv(describe(env_id), R, N)
    try:
        for seeds in ([0, 1, 2], [12345, 2**31 + 7, 99], [2**63 - 1, 7, 0]):
            runs = np.array([2, 0, 1])
            seeds = np.array(seeds, dtype=np.uint64)
            got, want = native.reset(runs, seeds), oracle.reset(runs, seeds)
            assert got.dtype == torch.float32 and got.shape == (R, N, native.spec.obs_dim)
            assert torch.equal(got, want)
        one = native.reset(np.array([1]), np.array([5]))  # a subset of runs
        assert torch.equal(one, oracle.reset(np.array([1]), np.array([5])))
    finally:
        oracle.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_matches_gymnasium_single_env(env_id):
    """One step from many states along random trajectories: gymnasium's env, set to the same state, is the oracle."""
    N, T = 64, 150
    native = NATIVE_ENVS[env_id](1, N)
    oracle = gym.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    native.reset(np.array([0]), np.array([1]))
    compared = 0
    for _ in range(T):
        if not native._live.any():
            native.reset(np.array([0]), rng.integers(0, 2**32, size=1))
        live = native._live[0].numpy().copy()
        before = native.state[0].numpy().copy()
        actions = _random_actions(native.spec, rng, (1, N))
        obs, reward, term, trunc = native.step(np.array([0]), actions)
        assert obs.dtype == torch.float32 and reward.dtype == torch.float64
        assert term.dtype == torch.bool and trunc.dtype == torch.bool
        after = native.state[0].numpy()
        for i in np.flatnonzero(live):
            _set_state(oracle, before[i])
            o, r, te, _, _ = oracle.step(actions[0, i].numpy() if native.spec.kind == "gaussian"
                                         else int(actions[0, i]))
            np.testing.assert_array_equal(after[i], np.asarray(oracle.state, dtype=np.float64))  # float64 state
            np.testing.assert_array_equal(obs[0, i].numpy(), o)
            assert reward[0, i].item() == r
            assert bool(term[0, i]) == te
            compared += 1
    assert compared >= 2000


def _compare_rollouts(native, oracle, runs, seeds, policy, T):
    """Step both backends with the same actions; require identical outputs on each episode up to its end."""
    o_n, o_g = native.reset(runs, seeds), oracle.reset(runs, seeds)
    assert torch.equal(o_n, o_g)
    alive = torch.ones(len(runs), native.num_envs, dtype=torch.bool)
    ends = {"terminated": 0, "truncated": 0}
    for t in range(T):
        actions = policy(t, o_n)
        o_n, r_n, te_n, tr_n = native.step(runs, actions)
        o_g, r_g, te_g, tr_g = oracle.step(runs, actions)
        a = alive
        assert torch.equal(o_n[a], o_g[a]) and torch.equal(r_n[a], r_g[a]), f"step {t}"
        assert torch.equal(te_n[a], te_g[a]) and torch.equal(tr_n[a], tr_g[a]), f"step {t}"
        ends["terminated"] += int((te_n & alive).sum())
        ends["truncated"] += int((tr_n & alive).sum())
        alive = alive & ~(te_n | tr_n)
        if not alive.any():
            break
    assert not alive.any(), "every episode must end (by termination or truncation) within T steps"
    return ends


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rollout_matches_gymnasium_backend(env_id):
    R, N = 3, 4
    spec = describe(env_id)
    native, oracle = NATIVE_ENVS[env_id](R, N), GymnasiumCohortEnv(spec, R, N)
    rng = np.random.default_rng(1)
    T = spec.max_episode_steps
    actions = _random_actions(spec, rng, (T, R, N))  # pre-drawn
    try:
        for seeds in ([3, 4, 5], [1000, 77, 2**40]):
            _compare_rollouts(native, oracle, np.arange(R), np.array(seeds), lambda t, obs: actions[t], T)
    finally:
        oracle.close()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "CartPole-v0"])
def test_cartpole_truncation_matches_gymnasium_backend(env_id):
    """A balancing controller (with some random pushes) reaches the time limit: truncation as in gymnasium."""
    R, N = 2, 6
    spec = describe(env_id)
    native, oracle = NATIVE_ENVS[env_id](R, N), GymnasiumCohortEnv(spec, R, N)
    rng = np.random.default_rng(2)
    noise = rng.random((spec.max_episode_steps, R, N)) < 0.1

    def policy(t, obs):  # push towards where the pole falls; episodes 0, 1 of each run are pushed at random more
        act = (obs[..., 2] + 0.5 * obs[..., 3] + 0.01 * obs[..., 1] > 0).long()
        flip = torch.from_numpy(noise[t])
        flip[:, :2] |= torch.from_numpy(rng.random((R, 2)) < 0.5)
        return torch.where(flip, 1 - act, act)

    try:
        ends = _compare_rollouts(native, oracle, np.arange(R), np.array([11, 12]), policy, spec.max_episode_steps)
    finally:
        oracle.close()
    assert ends["truncated"] > 0 and ends["terminated"] > 0


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCar-v0"])
def test_truncation_matches_time_limit_wrapper(env_id):
    """Step counter vs gymnasium's TimeLimit: truncated exactly at max_episode_steps."""
    native = NATIVE_ENVS[env_id](1, 1)
    oracle = gym.make(env_id)
    spec = native.spec
    rng = np.random.default_rng(3)
    o_n = native.reset(np.array([0]), np.array([8]))
    o_g, _ = oracle.reset(seed=8)
    assert np.array_equal(o_n[0, 0].numpy(), o_g)
    for t in range(spec.max_episode_steps):
        if spec.kind == "gaussian":  # inside the bounds here: the passive env checker is not under test
            act = torch.from_numpy(rng.uniform(-1, 1, size=(1, 1, 1)).astype(np.float32))
            o_g, r_g, te_g, tr_g, _ = oracle.step(act[0, 0].numpy())
        else:
            act = torch.zeros(1, 1, dtype=torch.int64)  # MountainCar: never reaches the goal
            o_g, r_g, te_g, tr_g, _ = oracle.step(0)
        o_n, r_n, te_n, tr_n = native.step(np.array([0]), act)
        assert np.array_equal(o_n[0, 0].numpy(), o_g) and r_n.item() == r_g
        assert (bool(te_n), bool(tr_n)) == (te_g, tr_g), f"step {t}"
    assert tr_g and bool(tr_n)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_subset_step_leaves_other_runs_untouched(env_id):
    R, N = 4, 5
    a, b = NATIVE_ENVS[env_id](R, N), NATIVE_ENVS[env_id](R, N)
    seeds = np.array([10, 20, 30, 40])
    a.reset(np.arange(R), seeds)
    b.reset(np.arange(R), seeds)
    rng = np.random.default_rng(4)
    subset = np.array([3, 1])
    for _ in range(5):
        actions = _random_actions(a.spec, rng, (R, N))
        full = a.step(np.arange(R), actions)
        frozen_state, frozen_steps = b.state[[0, 2]].clone(), b.steps[[0, 2]].clone()
        part = b.step(subset, actions[subset])
        for x, y in zip(full, part):
            assert torch.equal(x[subset], y)
        assert torch.equal(b.state[[0, 2]], frozen_state) and torch.equal(b.steps[[0, 2]], frozen_steps)
        b.step(np.array([0, 2]), actions[[0, 2]])  # catch up, so both envs are in the same state again
        assert torch.equal(a.state, b.state) and torch.equal(a.steps, b.steps)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_ended_episodes_stay_frozen_and_finite(env_id):
    R, N = 2, 8
    env = NATIVE_ENVS[env_id](R, N)
    env.reset(np.arange(R), np.array([5, 6]))
    rng = np.random.default_rng(5)
    ended = torch.zeros(R, N, dtype=torch.bool)
    for _ in range(env.spec.max_episode_steps + 300):
        state, steps = env.state.clone(), env.steps.clone()
        obs, reward, term, trunc = env.step(np.arange(R), _random_actions(env.spec, rng, (R, N)))
        assert torch.isfinite(obs).all() and torch.isfinite(reward).all()
        assert torch.equal(env.state[ended], state[ended]) and torch.equal(env.steps[ended], steps[ended])
        assert (term | trunc)[ended].all()
        ended |= term | trunc
    assert ended.all()
    assert (env.steps <= env.spec.max_episode_steps).all()


def test_cartpole_rewards_include_terminal_step():
    env = NATIVE_ENVS["CartPole-v1"](1, 4)
    env.reset(np.array([0]), np.array([0]))
    rewards, ended = [], torch.zeros(1, 4, dtype=torch.bool)
    while not ended.all():
        _, r, te, tr = env.step(np.array([0]), torch.ones(1, 4, dtype=torch.int64))
        rewards.append(torch.where(ended, torch.nan, r))
        ended |= te | tr
    r = torch.stack(rewards)
    assert (r[~r.isnan()] == 1.0).all()


def test_bad_shapes_are_refused():
    env = NATIVE_ENVS["CartPole-v1"](2, 3)
    with pytest.raises(ValueError, match="actions"):
        env.step(np.array([0]), torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="seeds"):
        env.reset(np.array([0, 1]), np.array([1]))


def test_pcg64_doubles_match_numpy_generator():
    """The vectorized replay of SeedSequence + PCG64 used by `reset` equals numpy's own generator, draw for draw."""
    rng = np.random.default_rng(6)
    seeds = [0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1] + [int(x) for x in rng.integers(0, 2**63, size=200)]
    want = np.stack([np.random.Generator(np.random.PCG64(np.random.SeedSequence(s))).random(5) for s in seeds])
    assert np.array_equal(pcg64_doubles(np.array(seeds, dtype=np.uint64), 5), want)


@pytest.mark.parametrize("env_id", ["Acrobot-v1", "Pendulum-v1", "MountainCar-v0"])
def test_reset_vectorized_seeding_matches_gymnasium_backend(env_id):
    """Enough episodes per reset call to take the vectorized path; seeds near 2**64 fall back to numpy generators."""
    R, N = 4, 20
    native, oracle = NATIVE_ENVS[env_id](R, N), GymnasiumCohortEnv(describe(env_id), R, N)
    try:
        for seeds in ([0, 1, 2**32 - 10, 2**40 + 3], [2**64 - 1, 5, 6, 7]):
            runs, seeds = np.arange(R), np.array(seeds, dtype=np.uint64)
            assert torch.equal(native.reset(runs, seeds), oracle.reset(runs, seeds))
    finally:
        oracle.close()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_libm_square_is_gymnasiums_scalar_power(dtype):
    """gymnasium squares numpy scalars (`x**2`: libm's pow / powf); `_libm_square` gives those bits for arrays, where
    numpy's array power would not on AVX-512 CPUs (SVML)."""
    x = np.random.default_rng(0).uniform(-30, 30, 50_000).astype(dtype)
    want = np.array([v ** 2 for v in x], dtype=dtype)
    got = _libm_square(x.reshape(100, 500))
    assert got.dtype == dtype and got.shape == (100, 500)
    assert np.array_equal(got.ravel(), want)
    assert (want != x * x).any()  # pow(x, 2) is not x*x: the test would notice a shortcut


def test_native_envs_match_gymnasium_at_every_numpy_simd_level():
    """The oracle tests again in subprocesses with numpy's dispatched SIMD levels switched off one by one (on an AVX-512
    CPU: AVX-512, then AVX2 too), so that one machine checks the paths other CPUs take."""
    found = numpy_simd()
    settings = [" ".join(found[i:]) for i in range(len(found) - 1, -1, -1)]
    if not settings:
        pytest.skip("numpy dispatches to no SIMD target above its baseline here")
    for disabled in settings:
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                              "(matches_gymnasium or time_limit) and not simd_level"],
                             env={**os.environ, "NPY_DISABLE_CPU_FEATURES": disabled}, capture_output=True, text=True)
        assert res.returncode == 0, f"NPY_DISABLE_CPU_FEATURES={disabled!r}:\n{res.stdout[-3000:]}"
        assert " passed" in res.stdout and "failed" not in res.stdout
