import numpy as np
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
