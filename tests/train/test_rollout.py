import numpy as np
import pytest
import torch

from ablations.envs.registry import GymnasiumCohortEnv, describe
from ablations.train.nets import Head, init_mlp, policy_sizes
from ablations.train.rollout import collect


def _collect(env_id, runs, seeds, n=3, backend_seed=0):
    spec = describe(env_id)
    env = GymnasiumCohortEnv(spec, 3, n)
    params = init_mlp(policy_sizes(spec, (16,)), [torch.Generator().manual_seed(s) for s in range(3)], 0.01)
    head = Head(spec.kind, spec.act_dim)
    return collect(env, np.array(runs), seeds, params, "tanh", head,
                   [np.random.default_rng(100 + r) for r in runs])


def test_masks_lengths_and_termination_flags_on_cartpole():
    b = _collect("CartPole-v1", [0, 1, 2], [1, 2, 3])
    assert b.mask.shape[:2] == (3, 3)
    assert torch.equal(b.mask.sum(-1), b.lengths)
    # a valid prefix, then padding
    for k in range(3):
        for i in range(3):
            n = int(b.lengths[k, i])
            assert b.mask[k, i, :n].all() and not b.mask[k, i, n:].any()
            assert torch.all(b.rewards[k, i, n:] == 0)
    assert b.terminated.all() and not b.truncated.any()  # a random CartPole policy falls long before 500 steps
    assert torch.equal(b.episode_returns(), b.lengths.double())


def test_truncation_is_kept_apart_on_pendulum():
    b = _collect("Pendulum-v1", [0, 1], [5, 6])
    assert b.truncated.all() and not b.terminated.any() and (b.lengths == 200).all()


def test_a_runs_episodes_do_not_depend_on_its_batch_mates():
    together = _collect("CartPole-v1", [0, 1, 2], [11, 12, 13])
    alone = _collect("CartPole-v1", [1], [12])
    mine = together.run(1)
    assert torch.equal(mine.obs, alone.run(0).obs) and torch.equal(mine.actions, alone.run(0).actions)
    assert torch.equal(mine.rewards, alone.run(0).rewards)


def test_runs_that_join_mid_collection_get_the_batches_they_get_alone():
    """The engine's Collector: a run started while others are mid-batch, or restarted right after its own batch,
    records exactly the episodes it records alone (same env seed, same action stream)."""
    from ablations.envs.native import CartPole
    from ablations.train.rollout import Collector

    spec = CartPole.spec
    params = init_mlp(policy_sizes(spec, (16,)), [torch.Generator().manual_seed(s) for s in range(3)], 0.01)
    head = Head(spec.kind, spec.act_dim)

    def alone(r, seed, gen_seed):
        env = CartPole(num_runs=3, num_envs=4)
        return collect(env, np.array([r]), [seed], params, "tanh", head, [np.random.default_rng(gen_seed)]).run(0)

    env = CartPole(num_runs=3, num_envs=4)
    col = Collector(env, params, "tanh", head)
    gens = {r: np.random.default_rng(100 + r) for r in range(3)}
    col.start([0], [10], [gens[0]])
    for _ in range(5):
        col.step()
    col.start([2, 1], [12, 11], [gens[2], gens[1]])
    got: dict[int, list] = {0: [], 1: [], 2: []}
    restarted = False
    while col.collecting:
        for r in col.step():
            got[r].append(col.take([r]).run(0))
            if r == 1 and not restarted:  # run 1 starts its next batch at once, mid-batch for the others
                col.start([1], [21], [gens[1]])
                restarted = True
    assert [len(v) for v in got.values()] == [1, 2, 1]
    second_gen = np.random.default_rng(101)
    expected = {0: [alone(0, 10, 100)], 2: [alone(2, 12, 102)]}
    env1 = CartPole(num_runs=3, num_envs=4)
    expected[1] = [collect(env1, np.array([1]), [s], params, "tanh", head, [second_gen]).run(0) for s in (11, 21)]
    for r in range(3):
        for mine, ref in zip(got[r], expected[r]):
            for f in ("obs", "actions", "rewards", "mask", "lengths", "terminated", "truncated"):
                assert torch.equal(getattr(mine, f), getattr(ref, f)), (r, f)


# ---- the final observation s_T of every episode, per backend ---------------------------------------------------------
def _collect_on(env, spec, seeds, n):
    from ablations.train.rollout import collect as collect_batch

    params = init_mlp(policy_sizes(spec, (16,)), [torch.Generator().manual_seed(s) for s in range(len(seeds))], 0.5)
    head = Head(spec.kind, spec.act_dim)
    batch = collect_batch(env, np.arange(len(seeds)), seeds, params, "tanh", head,
                          [np.random.default_rng(200 + j) for j in range(len(seeds))])
    env.close()
    return batch, head


def _env_actions(spec, head, actions):
    from ablations.train.rollout import action_tensors, to_env_actions

    return to_env_actions(head, actions, *action_tensors(spec, head)).numpy()


def _ends(step, reset_obs, actions):
    """Step an env (`step(actions [N, ...]) → (obs, terminated, truncated)`) with the recorded actions [N, T, ...];
    → the observation returned on each episode's last step (where it is first terminated or truncated), whether it
    terminated, and its length."""
    n, t_max = actions.shape[:2]
    final, term, done = np.zeros((n, reset_obs.shape[-1])), np.zeros(n, bool), np.zeros(n, bool)
    length = np.zeros(n, dtype=np.int64)
    for t in range(t_max):
        obs, te, tr = step(actions[:, t])
        new = (te | tr) & ~done
        final[new], term[new], length[new] = obs.reshape(n, -1)[new], te[new], t + 1
        done |= new
    assert done.all()
    return final, term, length


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "Acrobot-v1"])
@pytest.mark.parametrize("backend", ["native", "gymnasium"])
def test_the_final_observation_is_what_gymnasium_returns_on_the_episodes_last_step(backend, env_id):
    """Batch.final_obs of every episode (terminated or truncated) equals the observation gymnasium's own vector env
    (the id's vector entry point, else SyncVectorEnv, reset with the same seed) returns on that episode's last step
    when stepped with the recorded actions; Pendulum's episodes are all truncated at 200 steps, CartPole's and
    Acrobot's end both ways."""
    import gymnasium as gym

    from ablations.envs.native import NATIVE_ENVS

    spec, n, seeds = describe(env_id), 4, [3, 8]
    env = NATIVE_ENVS[env_id](num_runs=2, num_envs=n) if backend == "native" else GymnasiumCohortEnv(spec, 2, n)
    batch, head = _collect_on(env, spec, seeds, n)
    assert batch.final_obs.shape == (2, n, spec.obs_dim) and batch.final_obs.dtype == torch.float32
    mode = "vector_entry_point" if gym.spec(env_id).vector_entry_point else "sync"
    for j, seed in enumerate(seeds):
        venv = gym.make_vec(env_id, num_envs=n, vectorization_mode=mode)
        first, _ = venv.reset(seed=seed)

        def step(a, venv=venv):
            obs, _, te, tr, _ = venv.step(a)
            return obs, te, tr

        final, term, length = _ends(step, first, _env_actions(spec, head, batch.actions[j]))
        assert np.array_equal(batch.lengths[j].numpy(), length)
        venv.close()
        assert np.array_equal(batch.final_obs[j].numpy(), final.astype(np.float32)), (j, env_id)
        assert np.array_equal(batch.terminated[j].numpy(), term)
    assert not torch.equal(batch.final_obs, batch.obs[:, :, 0])  # not the reset observation
    if env_id == "Pendulum-v1":
        assert batch.truncated.all()
    if env_id == "Acrobot-v1":
        assert batch.truncated.any()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_the_final_observation_on_envpool_is_what_envpool_returns_on_the_episodes_last_step(env_id):
    """EnvPool's dynamics are not gymnasium's (envs/envpool_backend.py), so the reference is EnvPool itself: a pool
    made as the backend makes it, stepped with the recorded actions, returns Batch.final_obs on each episode's last
    step (the step limit applied as gymnasium's TimeLimit: Pendulum's 200th step is a real step, not an autoreset)."""
    pytest.importorskip("envpool", reason="EnvPool is not installed (pip install 'ablations[envpool]')")
    from ablations.envs import envpool_backend as eb

    spec, n, seeds = describe(env_id), 4, [3, 8]
    batch, head = _collect_on(eb.EnvPoolCohortEnv(spec, 2, n), spec, seeds, n)
    for j, seed in enumerate(seeds):
        pool = eb.make_pool(eb.envpool_task(env_id), eb.env_seeds(seed, n), spec.max_episode_steps)
        first = pool.reset()[0]
        count = np.zeros(n, dtype=np.int64)

        def step(a, pool=pool, count=count):
            obs, _, te, _, _ = pool.step(a)
            count += 1
            return obs, te.astype(bool), count >= spec.max_episode_steps

        final, term, length = _ends(step, first, _env_actions(spec, head, batch.actions[j]))
        assert np.array_equal(batch.lengths[j].numpy(), length)
        pool.close()
        assert np.array_equal(batch.final_obs[j].numpy(), final.astype(np.float32)), (j, env_id)
        assert np.array_equal(batch.terminated[j].numpy(), term)
    if env_id == "Pendulum-v1":
        assert batch.truncated.all() and (batch.lengths == 200).all()
