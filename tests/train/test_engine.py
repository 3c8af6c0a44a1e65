import math

import numpy as np
import pytest

from ablations.config import RunConfig
from ablations.probes.checkpoint import probe_checkpoint
from ablations.train.engine import Trainer, train_cohort

BASE = RunConfig(seed=3, total_steps=4000, eval_episodes=3, max_grad_norm=1.0, hidden=(32, 32))
MIXED = [BASE.replace(seed=s, baseline=b, returns=rt, normalize=n, entropy_coef=e, policy_lr=lr, gamma=g, aggregate=a)
         for s, (b, rt, n, e, lr, g, a) in enumerate([
             ("none", "full", "none", 0.0, 1e-2, 0.99, "step"), ("mean", "rtg", "returns", 0.01, 3e-3, 0.95, "episode"),
             ("loo", "full", "advantages", 0.0, 1e-3, 0.99, "step"), ("value", "rtg", "none", 0.1, 5e-3, 0.9, "step"),
             ("value", "gpomdp", "returns", 0.0, 3e-3, 0.99, "episode"),
             ("mean", "gpomdp", "none", 0.01, 3e-3, 0.95, "step"),
             ("none", "rtg", "advantages", 0.01, 2e-3, 0.99, "episode"),
             ("loo", "rally", "returns", 0.0, 3e-3, 0.9, "episode")])]


def rows_of(res, run_id):
    return [c for c in res.curves if c["run_id"] == run_id], [r for r in res.runs if r["run_id"] == run_id][0]


def same(a, b):
    """Bit-identical dicts (NaN equals NaN)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@pytest.mark.parametrize("backend", ["gymnasium", "native"])
def test_invariant_1_alone_equals_inside_a_mixed_cohort_and_reruns(backend):
    base = BASE.replace(env_backend=backend)
    mixed = [c.replace(env_backend=backend) for c in MIXED]
    alone = train_cohort([base])
    cohort = train_cohort(mixed[:3] + [base] + mixed[3:])
    again = train_cohort([base])
    a_curves, a_run = rows_of(alone, base.run_id)
    c_curves, c_run = rows_of(cohort, base.run_id)
    assert len(a_curves) == len(c_curves) > 3
    assert all(same(x, y) for x, y in zip(a_curves, c_curves))
    assert same(a_run, c_run)
    assert all(same(x, y) for x, y in zip(a_curves, again.curves))
    for p, q in zip(alone.policies[base.run_id], cohort.policies[base.run_id]):
        assert np.array_equal(p, q)
    assert {r["status"] for r in cohort.runs} == {"done"}


@pytest.mark.parametrize("aggregate", ["step", "episode"])
@pytest.mark.parametrize("backend", ["gymnasium", "native"])
def test_every_aggregation_and_return_level_alone_equals_inside_a_mixed_cohort(backend, aggregate):
    runs = [c.replace(env_backend=backend, aggregate=aggregate, total_steps=2000) for c in MIXED]
    cohort = train_cohort(runs)
    for cfg in runs[::2]:
        alone = train_cohort([cfg])
        assert all(same(x, y) for x, y in zip(alone.curves, rows_of(cohort, cfg.run_id)[0]))
        assert same(alone.runs[0], rows_of(cohort, cfg.run_id)[1])


def test_budget_is_env_steps_and_rows_have_the_design_columns():
    res = train_cohort([BASE])
    run = res.runs[0]
    assert run["env_steps"] >= BASE.total_steps and run["env_steps"] == res.curves[-1]["env_steps"]
    assert res.curves[-2]["env_steps"] < BASE.total_steps  # stops at the first update that reaches the budget
    for col in ["run_id", "update", "env_steps", "episodes", "return_mean", "return_std", "length_mean",
                "policy_loss", "value_loss", "entropy", "grad_norm"]:
        assert col in res.curves[0]
    for col in ["run_id", "env_id", "seed", "returns", "baseline", "normalize", "entropy_coef", "status",
                "env_steps", "updates", "final_return"]:
        assert col in run
    assert [c["update"] for c in res.curves] == list(range(1, run["updates"] + 1))
    assert res.curves[0]["episodes"] == BASE.episodes_per_update


def test_a_diverging_run_is_marked_and_not_contagious():
    bad = BASE.replace(seed=1, policy_lr=1e38, normalize="none", baseline="none", returns="full")
    good = BASE.replace(seed=2)
    res = train_cohort([bad, good])
    statuses = {r["run_id"]: r["status"] for r in res.runs}
    assert statuses[bad.run_id] == "diverged" and statuses[good.run_id] == "done"
    alone = train_cohort([good])
    assert all(same(x, y) for x, y in zip(rows_of(res, good.run_id)[0], alone.curves))


def test_a_run_is_bit_identical_alone_and_in_a_cohort_of_mixed_optimizers_and_returns():
    """Invariant 1 with every optimizer (and rally returns) in one cohort; the optimizers do train differently."""
    base = BASE.replace(total_steps=2000, env_backend="native")
    runs = [base.replace(seed=0, optimizer="rmsprop", policy_lr=1e-3, optimizer_eps=1e-5),
            base.replace(seed=1, optimizer="sgd", policy_lr=0.05, momentum=0.9, returns="rally", baseline="mean"),
            base.replace(seed=2, optimizer="adam", returns="rally", normalize="returns", baseline="none"),
            base.replace(seed=0, optimizer="rmsprop", policy_lr=1e-3, momentum=0.5, rmsprop_decay=0.9,
                         max_grad_norm=None, aggregate="step"),
            base.replace(seed=0, optimizer="sgd", policy_lr=0.01)]
    cohort = train_cohort(runs)
    for cfg in runs:
        alone = train_cohort([cfg])
        assert all(same(x, y) for x, y in zip(alone.curves, rows_of(cohort, cfg.run_id)[0]))
        assert same(alone.runs[0], rows_of(cohort, cfg.run_id)[1])
        for p, q in zip(alone.policies[cfg.run_id], cohort.policies[cfg.run_id]):
            assert np.array_equal(p, q)
    assert {r["status"] for r in cohort.runs} == {"done"}
    seed0 = [runs[0], runs[3], runs[4], base.replace(seed=0)]  # same seed, same first batch; other updates
    policies = [train_cohort([c]).policies[c.run_id][0] if c is seed0[-1] else cohort.policies[c.run_id][0]
                for c in seed0]
    assert all(not np.array_equal(policies[i], policies[j]) for i in range(4) for j in range(i + 1, 4))


def test_pendulum_runs_end_to_end_with_a_gaussian_policy():
    cfg = RunConfig(env_id="Pendulum-v1", total_steps=3200, episodes_per_update=4, eval_episodes=2,
                    hidden=(32, 32), baseline="value", normalize="advantages")
    res = train_cohort([cfg, cfg.replace(seed=1, baseline="loo", normalize="returns")])
    assert {r["status"] for r in res.runs} == {"done"}
    for c in res.curves:
        assert math.isfinite(c["policy_loss"]) and math.isfinite(c["grad_norm"]) and math.isfinite(c["entropy"])
        assert c["length_mean"] == 200 and c["truncated_frac"] == 1.0
    assert all(math.isfinite(r["eval_return"]) for r in res.runs)


def test_acrobot_and_other_discrete_envs_run():
    res = train_cohort([RunConfig(env_id="Acrobot-v1", total_steps=1000, episodes_per_update=2, eval_episodes=1,
                                  hidden=(16,), env_backend="gymnasium")])
    assert res.runs[0]["status"] == "done"


@pytest.mark.slow
def test_cartpole_learns_with_the_default_config():
    """Median over 8 seeds of the last-10-update mean return ≥ 400 within 200k env steps."""
    res = train_cohort([RunConfig(seed=s, total_steps=200_000, eval_episodes=0) for s in range(8)])
    last10 = []
    for r in res.runs:
        curve = [c["return_mean"] for c in res.curves if c["run_id"] == r["run_id"]]
        last10.append(np.mean(curve[-10:]))
    assert np.median(last10) >= 400, last10


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0"])
def test_native_and_gymnasium_backends_give_identical_rows(env_id):
    """The native physics is bit-exact (tests/envs/test_native.py), and both backends reset from the same seeds,
    so whole training runs agree to the bit (rows differ only in run_id and the env_backend column)."""
    base = RunConfig(env_id=env_id, total_steps=1500 if env_id == "CartPole-v1" else 1200, episodes_per_update=3,
                     hidden=(16,), eval_episodes=2, baseline="value", probe_every=2, probe_batches=2)
    runs = {b: train_cohort([base.replace(env_backend=b, seed=s) for s in range(2)], probe=probe_checkpoint)
            for b in ("native", "gymnasium")}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("run_id", "env_backend")} for r in rows]
    for table in ("curves", "runs", "probes"):
        a, b = strip(getattr(runs["native"], table)), strip(getattr(runs["gymnasium"], table))
        assert len(a) == len(b) > 0 and all(same(x, y) for x, y in zip(a, b)), table


def test_desynchronized_training_equals_updating_the_whole_cohort_together():
    """`train` updates runs in groups as their batches end (Trainer.iterate); every row equals the rows of the plain
    loop that collects and updates all running runs together."""
    configs = [c.replace(total_steps=3000, eval_episodes=0, probe_every=2 if i % 2 and c.returns != "rally" else 0,
                         probe_batches=2)
               for i, c in enumerate(MIXED)]
    together = Trainer(configs, probe_checkpoint)
    together._probe_start(together.active(), 0)
    while active := together.active():
        together.update(active)
    desync = Trainer(configs, probe_checkpoint)
    groups = list(desync.iterate())
    assert len(groups) > len(together.cohort.runs[0].curves)  # the runs were in fact updated in several groups
    for a, b in zip(together.cohort.runs, desync.cohort.runs):
        assert a.curves == b.curves and a.status == b.status
    # probe pools collected alongside training, from frozen checkpoint parameters, give the same rows
    key = lambda row: (row["run_id"], row["update"], row["estimator"])
    assert len(desync.probe_rows) > 0
    assert sorted(together.probe_rows, key=key) == sorted(desync.probe_rows, key=key)


# ---- aggregate = "step" is the loss the engine trained with before the `aggregate` axis existed ---------------------
#: Recorded at commit d0a0a93 (before `aggregate` existed; its loss was today's `step`) on machine class STEP_CLASS:
#: sha256 of each run's curves (without run_id), outcome columns and final policy bytes (`training_digest`).
STEP_CLASS = "9038ae622a49"
STEP_GOLDEN = {
    ("CartPole-v1", 0): "4c6ba4cc8f66596053f71d995436639db89e0f9ed1fe7b81936494d99ea5f237",
    ("CartPole-v1", 1): "6937d3e30340f8c4fd9fc7c2f55e2f7fdaba6964c39285f317d23e26623ae25d",
    ("CartPole-v1", 2): "e6515b219beaec7340ec2535941a02d5967e719e3594fb39692beecd90c3c457",
    ("CartPole-v1", 3): "f749e28719da8e0ecb4b3e5638de3a4ff3076a27b226ab98ae366377b12d1443",
    ("CartPole-v1", 4): "3414d0151af3bfb8eef988b974162f90d66b038600cf01d6953399e9d4a41db8",
    ("CartPole-v1", 5): "955fef42f130c142aac6d9acdfb9546a2377dd81c8bbc557a2b765cbcd55d0d4",
    ("CartPole-v1", 6): "7d71fb8af7104179c045dde85b5603d5fb1ecf6fb234a3fda21d5d95d474de1a",
    ("Pendulum-v1", 0): "cf4e546e9d70b48ce908ac01526367b32d5064b3db11271397edae32902f6a1b",
    ("Pendulum-v1", 1): "eb2699aa92afedffa166fd729b4397a4e55baf5cd7a6f9c9cbc5d0845b299d1d",
    ("Pendulum-v1", 2): "8707de09982d5f1700900d940a5023d5d6598d406a409c94dac0192986227e47",
    ("Pendulum-v1", 3): "b4b0798261e91e611dc565accd9f58461bbf0b28c43388d05b6801112d7e99dd",
    ("Pendulum-v1", 4): "9c646e26bdae01309bd4d1b399021db4789679d0c0f0dcb8f5de53b7dfa9312c",
    ("Pendulum-v1", 5): "d7aebba522b69dee7884ec314b8edd9839d96cc9a45028ea9fe54b761dab9d32",
    ("Pendulum-v1", 6): "38e6f844f278d1b2de7d9aa2c3f2b602238c953f380b41f2404223e2d963ef87",
}


def step_golden_configs() -> list[RunConfig]:
    """CartPole and Pendulum × 7 (baseline, returns, normalize, β, clipping) combinations, seed = position."""
    # value_iters = 5, eval_greedy = True: the defaults when these hashes were recorded (1 and False since)
    cp = RunConfig(env_id="CartPole-v1", total_steps=3000, eval_episodes=2, hidden=(16, 16), episodes_per_update=4,
                   value_iters=5, eval_greedy=True)
    pe = RunConfig(env_id="Pendulum-v1", total_steps=2400, eval_episodes=1, hidden=(16, 16), episodes_per_update=4,
                   value_iters=5, eval_greedy=True)
    levels = [("none", "full", "none", 0.0, None), ("mean", "rtg", "returns", 0.01, None),
              ("loo", "full", "advantages", 0.0, 1.0), ("value", "rtg", "none", 0.05, None),
              ("value", "full", "returns", 0.0, 0.5), ("loo", "rtg", "none", 0.0, None),
              ("none", "rtg", "advantages", 0.01, None)]
    return [base.replace(seed=s, baseline=b, returns=rt, normalize=n, entropy_coef=e, max_grad_norm=clip,
                         aggregate="step")
            for base in (cp, pe) for s, (b, rt, n, e, clip) in enumerate(levels)]


def training_digest(res, run_id: str) -> str:
    import hashlib
    import json

    curves = [{k: v for k, v in c.items() if k != "run_id"} for c in res.curves if c["run_id"] == run_id]
    run = rows_of(res, run_id)[1]
    outcome = {k: run[k] for k in ("status", "error", "env_steps", "updates", "final_return", "eval_return")}
    h = hashlib.sha256(json.dumps([curves, outcome], sort_keys=True, default=repr).encode())
    for p in res.policies[run_id]:
        h.update(np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


def test_aggregate_step_reproduces_the_pre_axis_training_rows_bit_for_bit():
    from ablations.study.machine import class_key, current_machine

    if class_key(current_machine()) != STEP_CLASS:
        pytest.skip(f"golden hashes recorded on machine class {STEP_CLASS}; bits are promised per machine class")
    configs = step_golden_configs()
    res = train_cohort(configs[:7])  # one cohort per env (invariant 1: the same bits as alone)
    res2 = train_cohort(configs[7:])
    for cfg in configs:
        got = training_digest(res if cfg.env_id == "CartPole-v1" else res2, cfg.run_id)
        assert got == STEP_GOLDEN[(cfg.env_id, cfg.seed)], (cfg.env_id, cfg.seed)
    episode = train_cohort([configs[0].replace(aggregate="episode")])  # the new default trains differently
    assert training_digest(episode, episode.runs[0]["run_id"]) != STEP_GOLDEN[("CartPole-v1", 0)]


def test_probes_without_a_hook_are_refused_and_the_hook_sees_each_checkpoint_once():
    cfg = BASE.replace(total_steps=1500, hidden=(8,), eval_episodes=0, episodes_per_update=2, probe_batches=2)
    with pytest.raises(ValueError, match="probe hook"):
        train_cohort([cfg.replace(probe_every=2)])
    calls = []

    def hook(view, runs, update):
        cp = view.checkpoints[runs[0]]
        calls.append((tuple(runs), update, cp.env_steps, tuple(cp.pool.mask.shape[:2])))
        return [{"run_id": view.configs[r].run_id, "update": update} for r in runs]

    plain = train_cohort([cfg, cfg.replace(seed=9)])  # no probed run: no hook needed
    probed = cfg.replace(seed=9, probe_every=2)
    res = train_cohort([cfg, probed], probe=hook)
    assert same(plain.curves[0], res.curves[0]) and len(res.probes) == len(calls) > 1
    updates = [u for _, u, _, _ in calls]
    assert all(runs == (1,) for runs, _, _, _ in calls) and updates == sorted(updates) and updates[0] == 0
    assert all(u % 2 == 0 for u in updates) and all(shape == (1, 4) for *_, shape in calls)  # one [1, K·N] pool
    curves = {c["update"]: c["env_steps"] for c in res.curves if c["run_id"] == probed.run_id}
    assert all(steps == curves.get(u, 0) for _, u, steps, _ in calls)  # env steps at the checkpoint


@pytest.mark.parametrize("value_iters", [1, 3])
def test_a_value_run_is_bit_identical_alone_and_next_to_a_diverging_value_run(value_iters):
    """The critic fit's first step reuses the update's forward pass unless a value run of the update diverged (then
    a fresh pass): either way a run's rows are those it trains alone."""
    cfg = BASE.replace(value_iters=value_iters, total_steps=2500, hidden=(16, 16))
    bad = cfg.replace(seed=11, policy_lr=1e38, normalize="none", returns="full", max_grad_norm=None)
    other = cfg.replace(seed=12, returns="full")
    alone = train_cohort([cfg])
    cohort = train_cohort([bad, cfg, other])
    assert rows_of(cohort, bad.run_id)[1]["status"] == "diverged"
    assert all(same(x, y) for x, y in zip(alone.curves, rows_of(cohort, cfg.run_id)[0]))
    assert same(alone.runs[0], rows_of(cohort, cfg.run_id)[1])
