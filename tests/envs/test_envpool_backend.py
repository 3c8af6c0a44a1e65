"""The EnvPool backend: seeding from the run's own seed only (invariant 1), gymnasium's step-limit flags, policies
interchangeable with the gymnasium backend, and the errors when EnvPool is missing or lacks the id."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from ablations.config import ConfigError, RunConfig
from ablations.envs import envpool_backend
from ablations.envs.registry import describe, make_cohort_env, resolve_backend

pytest.importorskip("envpool", reason="EnvPool is not installed (pip install 'ablations[envpool]')")

try:
    import mujoco  # noqa: F401 - only whether it imports
    HAS_MUJOCO = True
except ImportError:
    HAS_MUJOCO = False
needs_mujoco = pytest.mark.skipif(not HAS_MUJOCO, reason="gymnasium's MuJoCo envs need pip install 'ablations[mujoco]'")
ENV_IDS = ["LunarLander-v3", pytest.param("HalfCheetah-v5", marks=needs_mujoco)]


def same(a, b):
    """Bit-identical row dicts (NaN equals NaN)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def test_env_seeds_are_seedsequence_words_shifted_into_int32():
    words = np.random.SeedSequence(7).generate_state(3, np.uint32)
    seeds = envpool_backend.env_seeds(7, 3)
    assert seeds.tolist() == [int(w) // 2 for w in words]
    assert all(0 <= s < 2**31 for s in seeds)
    assert envpool_backend.env_seeds(7, 5)[:3].tolist() == seeds.tolist()  # episode i's seed does not depend on N


def _actions(spec, rng, k, n):
    if spec.kind == "categorical":
        return torch.from_numpy(rng.integers(0, spec.act_dim, size=(k, n)))
    return torch.from_numpy(rng.uniform(-1, 1, size=(k, n, spec.act_dim)).astype(np.float32))


def _trajectory(env, run, seed, actions):
    """Reset `run` of `env` with `seed` and step it alone with `actions` [T, N, ...] → list of outputs."""
    out = [env.reset(np.array([run]), np.array([seed]))]
    for a in actions:
        out.extend(env.step(np.array([run]), a[None]))
    return out


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_run_alone_equals_the_same_run_inside_a_cohort_and_reruns(env_id):
    spec, n, t = describe(env_id), 3, 30
    rng = np.random.default_rng(0)
    acts = [_actions(spec, rng, 3, n) for _ in range(t)]
    cohort = envpool_backend.EnvPoolCohortEnv(spec, 3, n)
    got = [cohort.reset(np.arange(3), np.array([11, 22, 33]))]
    for step, a in enumerate(acts):
        runs = np.arange(3) if step % 2 else np.array([1, 2])  # run 0 sits some steps out, as the engine may do
        out = cohort.step(runs, a[runs])
        got.append([x[runs == 1][0] for x in out])
    alone = envpool_backend.EnvPoolCohortEnv(spec, 1, n)
    ref = _trajectory(alone, 0, 22, [a[1] for a in acts])
    again = _trajectory(alone, 0, 22, [a[1] for a in acts])
    assert torch.equal(got[0][1], ref[0][0]) and all(torch.equal(x, y) for x, y in zip(ref, again))
    flat = [x for step in got[1:] for x in step]
    assert len(flat) == len(ref) - 1 == 4 * t and all(torch.equal(x, y[0]) for x, y in zip(flat, ref[1:]))
    cohort.close()
    alone.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_training_rows_do_not_depend_on_the_cohort_and_rerun_bit_identical(env_id):
    from ablations.train.engine import train_cohort

    base = RunConfig(env_id=env_id, env_backend="envpool", total_steps=1500, episodes_per_update=3 if
                     env_id == "LunarLander-v3" else 1, hidden=(16,), eval_episodes=1, seed=5)
    alone, again = train_cohort([base]), train_cohort([base])
    cohort = train_cohort([base.replace(seed=1), base.replace(seed=2, policy_lr=1e-2), base])
    mine = [c for c in cohort.curves if c["run_id"] == base.run_id]
    assert len(alone.curves) == len(mine) >= 2
    assert all(same(x, y) for x, y in zip(alone.curves, mine))
    assert all(same(x, y) for x, y in zip(alone.curves, again.curves))
    assert same(alone.runs[0], [r for r in cohort.runs if r["run_id"] == base.run_id][0])


def test_step_limit_flags_are_gymnasiums_time_limit():
    """CartPole pushed left falls after T steps; with the limit at T both flags are set (as gymnasium's TimeLimit
    does; EnvPool's own limit would report terminated=False), with the limit at T-1 only `truncated`; an ended
    episode keeps its flags."""
    spec = describe("CartPole-v1")
    push = torch.zeros(1, 2, dtype=torch.int64)

    def flags(limit):
        env = envpool_backend.EnvPoolCohortEnv(dataclasses.replace(spec, max_episode_steps=limit), 1, 2)
        env.reset(np.array([0]), np.array([3]))
        seq = [tuple(x[0, 0].item() for x in env.step(np.array([0]), push)[2:]) for _ in range(limit + 3)]
        env.close()
        return seq

    free = flags(100)
    t_end = next(i for i, f in enumerate(free) if f[0]) + 1  # steps until termination
    assert 5 < t_end < 50 and free[t_end - 1] == (True, False)
    at_limit = flags(t_end)
    assert at_limit[t_end - 1] == (True, True) and at_limit[:t_end - 1] == [(False, False)] * (t_end - 1)
    assert at_limit[t_end:] == [(True, True)] * 3  # frozen
    before = flags(t_end - 1)
    assert before[t_end - 2] == (False, True) and before[t_end - 1:] == [(False, True)] * 3


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_policy_trained_on_one_backend_evaluates_on_the_other(env_id):
    from ablations.evaluate.episodes import evaluate_policy
    from ablations.train.engine import train_cohort

    steps = 2000 if env_id == "HalfCheetah-v5" else 800
    for trained, other in (("envpool", "gymnasium"), ("gymnasium", "envpool")):
        cfg = RunConfig(env_id=env_id, env_backend=trained, total_steps=steps, episodes_per_update=2, hidden=(8,),
                        eval_episodes=0)
        params = train_cohort([cfg]).policies[cfg.run_id]
        res = evaluate_policy(cfg.replace(env_backend=other), params, episodes=2, seed=1)
        assert np.isfinite(res.greedy).all() and np.isfinite(res.stochastic).all() and len(res.greedy_lengths) == 2
        # stochastic and greedy passes start from the same states: the pool is made anew at each reset
        env = make_cohort_env([cfg.replace(env_backend="envpool")], num_envs=2)
        first, second = env.reset(np.array([0]), np.array([9])), env.reset(np.array([0]), np.array([9]))
        env.close()
        assert torch.equal(first, second)


def test_auto_keeps_todays_choice_and_envpool_is_only_taken_when_asked():
    assert resolve_backend(RunConfig(env_id="LunarLander-v3")) == "gymnasium"
    assert resolve_backend(RunConfig(env_id="CartPole-v1")) == "native"
    assert resolve_backend(RunConfig(env_id="LunarLander-v3", env_backend="envpool")) == "envpool"


@pytest.mark.parametrize("env_id, preprocess, words", [
    ("ALE/Pong-v5", "pong", ["env_backend='envpool'", "preprocess='pong'", "auto | native | gymnasium"]),
    ("ALE/Pong-v5", None, ["env_backend='envpool'", "ALE id", "LunarLander-v3"]),
    ("ablations/EnumMDP-v0", None, ["env_backend='envpool'", "env_id='ablations/EnumMDP-v0'"]),
])
def test_ids_envpool_cannot_run_are_a_config_error_naming_the_field(env_id, preprocess, words):
    with pytest.raises(ConfigError) as err:
        resolve_backend(RunConfig(env_id=env_id, preprocess=preprocess, env_backend="envpool"))
    assert all(w in str(err.value) for w in words)


def test_envpool_missing_is_a_config_error_naming_the_extra(monkeypatch):
    monkeypatch.setattr(envpool_backend, "_task_ids", lambda: None)
    with pytest.raises(ConfigError, match=r"env_backend='envpool'.*pip install 'ablations\[envpool\]'"):
        resolve_backend(RunConfig(env_id="LunarLander-v3", env_backend="envpool"))
    monkeypatch.setattr(envpool_backend, "_task_ids", lambda: frozenset({"CartPole-v1"}))
    with pytest.raises(ConfigError, match="EnvPool has no task of that name"):
        resolve_backend(RunConfig(env_id="LunarLander-v3", env_backend="envpool"))


def test_config_accepts_envpool_and_names_it_among_the_allowed_backends():
    assert RunConfig(env_backend="envpool").env_backend == "envpool"
    with pytest.raises(ConfigError, match="auto | native | gymnasium | envpool"):
        RunConfig(env_backend="gpu")


@pytest.mark.parametrize("env_id", ["LunarLander-v3", pytest.param("Hopper-v5", marks=needs_mujoco)])
def test_live_envs_give_the_bits_of_envpools_own_synchronous_pool_stepping_every_env(env_id):
    """Each env's outputs until its episode ends are those of a plain EnvPool pool of the same seeds stepped
    synchronously (the reference is EnvPool itself, used without the backend)."""
    spec, n, t = describe(env_id), 5, 200
    rng = np.random.default_rng(3)
    acts = [_actions(spec, rng, 1, n) for _ in range(t)]
    env = envpool_backend.EnvPoolCohortEnv(spec, 1, n)
    got = [env.reset(np.array([0]), np.array([44]))[0]]
    outs = [env.step(np.array([0]), a) for a in acts]
    task, seeds = envpool_backend.envpool_task(env_id), envpool_backend.env_seeds(44, n)
    ref_pool = envpool_backend.make_pool(task, seeds, spec.max_episode_steps)
    ref_obs = [torch.from_numpy(np.asarray(ref_pool.reset()[0], dtype=spec.obs_dtype))]
    alive, ended = np.ones(n, dtype=bool), 0
    for step, a in enumerate(acts):
        o, rw, te, _, _ = ref_pool.step(a[0].numpy().astype(ref_pool.single_action_space.dtype))
        obs, rew, term, trunc = outs[step]
        assert torch.equal(obs[0][alive], torch.from_numpy(np.asarray(o, dtype=spec.obs_dtype))[alive]), step
        assert torch.equal(rew[0][alive], torch.from_numpy(rw.astype(np.float64))[alive]), step
        assert term[0][alive].tolist() == te[alive].tolist(), step
        ended += int((alive & (term[0] | trunc[0]).numpy()).sum())
        alive &= ~(term[0] | trunc[0]).numpy()
    assert torch.equal(got[0], ref_obs[0])
    assert ended > 0  # episodes ended inside the window, so stepping stopped for some envs and not others
    env.close()
    ref_pool.close()
