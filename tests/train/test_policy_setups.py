"""Issue 34's knobs in the engine: a linear policy (`hidden = ()`), an initial policy (`init_logits` / `init_log_std`),
the critic's own layers and optimizer (`value_hidden`, `value_optimizer`), a budget in episodes (`total_episodes`) and
both evaluation modes; each keeps invariant 1, and at their neutral values the engine trains the bits it trained before
they existed."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from ablations.config import ConfigError, RunConfig
from ablations.envs.registry import describe
from ablations.envs.spec import EnvSpec
from ablations.train.engine import Trainer, train_cohort
from ablations.train.nets import forward_single, initial_bias
from ablations.train.scores import final_return

SC = "ablations/ShortCorridor-v0"
LINEAR = RunConfig(env_id="CartPole-v1", seed=4, hidden=(), total_steps=2000, episodes_per_update=4, eval_episodes=2)


def rows_of(res, run_id):
    return [c for c in res.curves if c["run_id"] == run_id], [r for r in res.runs if r["run_id"] == run_id][0]


def same(a, b):
    """Bit-identical dicts (NaN equals NaN)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def assert_same_run(x, y, run_id):
    (xc, xr), (yc, yr) = rows_of(x, run_id), rows_of(y, run_id)
    assert len(xc) == len(yc) > 2 and all(same(a, b) for a, b in zip(xc, yc))
    assert same(xr, yr)
    for p, q in zip(x.policies[run_id], y.policies[run_id]):
        assert np.array_equal(p, q)


# ---- neutral values: the bits from before the fields existed ----------------------------------------------------
#: Recorded at commit 41efc74 (before total_episodes, value_hidden, value_optimizer, init_logits, init_log_std and the
#: second evaluation mode existed; eval_greedy then defaulted to True) on machine class NEUTRAL_CLASS: sha256 of each
#: run's curves (without run_id), outcome columns and final policy bytes, as tests/train/test_engine.training_digest.
NEUTRAL_CLASS = "0efeff659dd0"
NEUTRAL_GOLDEN = {
    ("CartPole-v1", 0): "f5e2d5a160d8026c95e3abad2f2ff9e8c439c8570d610488660a96a3425d4a5c",
    ("CartPole-v1", 1): "6367ba3ca51e9862e8a02f07c1d62af86e299d3cc360328eb7abbc34b7da6418",
    ("CartPole-v1", 2): "bbbfedb4a9f8c02297d67a746f8965e1057440a5f18e5579c75e47909389c4d7",
    ("Pendulum-v1", 0): "fbf2fa6751d2b82a5762f865d21fd67c6cff7354a2e8f1f5efa70b7c6b6a6dbd",
    ("Pendulum-v1", 1): "969f8b445b1ce89316c664a71831363c138e920f71af544dd277b075f245e90a",
}


def neutral_configs() -> list[RunConfig]:
    cp = RunConfig(env_id="CartPole-v1", total_steps=3000, eval_episodes=3, hidden=(16, 16), episodes_per_update=4,
                   value_iters=2, eval_greedy=True)
    pe = RunConfig(env_id="Pendulum-v1", total_steps=2400, eval_episodes=2, hidden=(16,), episodes_per_update=4,
                   eval_greedy=True)
    return [cp.replace(seed=0), cp.replace(seed=1, optimizer="rmsprop", baseline="none"),
            cp.replace(seed=2, eval_greedy=False, returns="gpomdp"), pe.replace(seed=0),
            pe.replace(seed=1, eval_greedy=False)]


def digest(res, run_id: str) -> str:
    curves = [{k: v for k, v in c.items() if k != "run_id"} for c in res.curves if c["run_id"] == run_id]
    run = rows_of(res, run_id)[1]
    outcome = {k: run[k] for k in ("status", "error", "env_steps", "updates", "final_return", "eval_return")}
    h = hashlib.sha256(json.dumps([curves, outcome], sort_keys=True, default=repr).encode())
    for p in res.policies[run_id]:
        h.update(np.ascontiguousarray(p).tobytes())
    return h.hexdigest()


def test_neutral_values_train_the_bits_recorded_before_the_fields_existed():
    """config.ID_NEUTRAL's promise for issue 34's fields: at total_episodes = None, value_hidden = None,
    value_optimizer = "adam", init_logits = init_log_std = None the engine trains exactly what commit 41efc74 trained
    (the same init draws, critic steps, budget check, and eval_return from the same eval-stream draws)."""
    from ablations.study.machine import class_key, current_machine

    if class_key(current_machine()) != NEUTRAL_CLASS:
        pytest.skip(f"golden hashes recorded on machine class {NEUTRAL_CLASS}; bits are promised per machine class")
    for cfg in neutral_configs():
        assert digest(train_cohort([cfg]), cfg.run_id) == NEUTRAL_GOLDEN[(cfg.env_id, cfg.seed)], (cfg.env_id, cfg.seed)


# ---- a linear policy ------------------------------------------------------------------------------------------
def test_a_linear_policy_is_one_affine_layer_on_the_observation():
    tr = Trainer([LINEAR])
    try:
        w, b = tr.cohort.policy
        assert w.shape == (1, 4, 2) and b.shape == (1, 2)  # [R, obs, actions]
        x = torch.randn(5, 4)
        assert torch.equal(forward_single([w[0], b[0]], x, "tanh"), x @ w[0] + b[0])  # no activation
        assert [tuple(p.shape) for p in tr.cohort.value] == [(1, 4, 1), (1, 1)]  # the critic follows `hidden`
    finally:
        tr.close()


@pytest.mark.parametrize("backend", ["native", "gymnasium"])
def test_invariant_1_a_linear_policy_alone_equals_inside_a_mixed_cohort_and_reruns(backend):
    """Mixed in budget unit, baseline, optimizer, learning rate and initial policy: the run's rows and final policy do
    not depend on its batch-mates, and a rerun gives the same bits."""
    base = LINEAR.replace(env_backend=backend)
    mates = [base.replace(seed=1, baseline="none", optimizer="sgd", policy_lr=0.05),
             base.replace(seed=2, total_steps=None, total_episodes=40, init_logits=(0.5, -0.5)),
             base.replace(seed=3, baseline="mean", normalize="returns", value_optimizer="sgd"),
             base.replace(seed=4, policy_lr=1e-2, init_logits=(0.0, 0.0))]
    alone = train_cohort([base])
    cohort = train_cohort(mates[:2] + [base] + mates[2:])
    assert_same_run(alone, cohort, base.run_id)
    assert_same_run(alone, train_cohort([base]), base.run_id)
    for cfg in mates[1:2]:  # an episode-budget, initial-policy run too
        assert_same_run(train_cohort([cfg]), cohort, cfg.run_id)
    assert {r["status"] for r in cohort.runs} == {"done"}


# ---- the initial policy ---------------------------------------------------------------------------------------
def test_init_logits_start_every_observation_at_exactly_that_policy_with_the_same_draws():
    """Output weights 0 and bias = init_logits: softmax(init_logits) at any observation. The hidden layers and the
    critic are the draws a run without an initial policy gets (the same init stream, drawn the same way)."""
    plain = RunConfig(env_id="CartPole-v1", seed=7, hidden=(8,))
    logits = (0.3, -1.2)
    tr, ref = Trainer([plain, plain.replace(seed=7, init_logits=logits)]), Trainer([plain])
    try:
        pol = [p[1] for p in tr.cohort.policy]
        assert torch.equal(pol[-2], torch.zeros(8, 2)) and pol[-1].tolist() == pytest.approx(list(logits))
        x = torch.randn(50, 4) * 3
        probs = torch.softmax(forward_single(pol, x, "tanh"), -1)
        assert torch.equal(probs, torch.softmax(torch.tensor(logits), -1).expand(50, 2))
        for got, want in zip(tr.cohort.policy[:2] + tr.cohort.value, ref.cohort.policy[:2] + ref.cohort.value):
            assert torch.equal(got[1], want[0]) and torch.equal(got[0], want[0])
        assert torch.equal(tr.cohort.policy[-2][0], ref.cohort.policy[-2][0])  # the plain run keeps its draw
    finally:
        tr.close()
        ref.close()


def test_init_log_std_starts_a_gaussian_policy_at_mean_0_and_that_std():
    cfg = RunConfig(env_id="Pendulum-v1", hidden=(), init_log_std=(-1.0,))
    tr = Trainer([cfg])
    try:
        out = forward_single([p[0] for p in tr.cohort.policy], torch.randn(20, 3), "tanh")
        dist = tr.cohort.head.distribution(out)
        assert torch.equal(dist["mean_0"], torch.zeros(20))
        assert torch.allclose(dist["std_0"], torch.full((20,), math.exp(-1)))
    finally:
        tr.close()


def test_initial_bias_of_each_policy_kind():
    bern = EnvSpec("b", 3, "bernoulli", 2, None)
    gauss = EnvSpec("g", 3, "gaussian", 2, None, (-1.0, -1.0), (1.0, 1.0))
    assert initial_bias(bern, RunConfig(init_logits=(1.0, -2.0))).tolist() == [1.0, -2.0]
    assert initial_bias(gauss, RunConfig(init_log_std=(-0.5, 0.5))).tolist() == [0.0, 0.0, -0.5, 0.5]
    assert initial_bias(gauss, RunConfig()) is None


@pytest.mark.parametrize("env_id,field,value,message", [
    ("CartPole-v1", "init_logits", (0.0, 0.0, 0.0), "init_logits=[0.0, 0.0, 0.0] has 3 value(s) but "
                                                   "env_id='CartPole-v1' has 2 actions"),
    ("CartPole-v1", "init_log_std", (0.0,), "init_log_std=[0.0] does not fit env_id='CartPole-v1': its policy is "
                                            "Categorical; allowed: None, or init_logits"),
    ("Pendulum-v1", "init_logits", (0.0,), "init_logits=[0.0] does not fit env_id='Pendulum-v1': its policy is "
                                           "Gaussian; allowed: None, or init_log_std"),
    ("Pendulum-v1", "init_log_std", (0.0, 1.0), "has 2 value(s) but env_id='Pendulum-v1' has 1 action dimensions"),
])
def test_an_initial_policy_that_does_not_fit_the_env_is_refused_before_training(env_id, field, value, message):
    with pytest.raises(ConfigError) as exc:
        Trainer([RunConfig(env_id=env_id, **{field: value})])
    assert message in str(exc.value)


# ---- the critic -----------------------------------------------------------------------------------------------
def test_value_hidden_shapes_the_critic_only_and_is_part_of_the_cohort_key():
    cfg = RunConfig(env_id="CartPole-v1", hidden=(8,), value_hidden=(5, 3))
    tr = Trainer([cfg])
    try:
        assert [tuple(p.shape) for p in tr.cohort.policy] == [(1, 4, 8), (1, 8), (1, 8, 2), (1, 2)]
        assert [tuple(p.shape[1:]) for p in tr.cohort.value] == [(4, 5), (5,), (5, 3), (3,), (3, 1), (1,)]
    finally:
        tr.close()
    assert cfg.replace(value_hidden=None).cohort_key() == cfg.replace(value_hidden=(8,)).cohort_key()
    with pytest.raises(ValueError, match="cohort keys differ"):
        Trainer([cfg, cfg.replace(value_hidden=())])


def test_the_critics_optimizer_is_per_run():
    """value_optimizer = sgd trains another critic (so other policy steps) than adam, and a run of each trains the
    same bits alone as together (the optimizer kind is per run)."""
    base = RunConfig(env_id="CartPole-v1", seed=2, hidden=(8,), total_steps=1500, episodes_per_update=4,
                     eval_episodes=0, value_lr=0.05)
    sgd = base.replace(value_optimizer="sgd")
    together = train_cohort([base, sgd])
    for cfg in (base, sgd):
        assert_same_run(train_cohort([cfg]), together, cfg.run_id)
    a, b = rows_of(together, base.run_id)[0], rows_of(together, sgd.run_id)[0]
    assert a[0]["value_loss"] == b[0]["value_loss"]  # the same critic before its first step
    assert a[1]["value_loss"] != b[1]["value_loss"]


# ---- a budget in episodes ---------------------------------------------------------------------------------------
def test_an_episode_budget_stops_after_exactly_its_episodes():
    cfg = RunConfig(env_id="CartPole-v1", seed=1, hidden=(8,), total_steps=None, total_episodes=40,
                    episodes_per_update=4, eval_episodes=0)
    res = train_cohort([cfg])
    curves, run = rows_of(res, cfg.run_id)
    assert run["status"] == "done" and run["updates"] == 10 == len(curves)
    assert [c["episodes"] for c in curves] == list(range(4, 44, 4))
    assert run["env_steps"] == curves[-1]["env_steps"] == round(sum(4 * c["length_mean"] for c in curves))
    # final return: the updates ending after 90% of the budget's episodes (36): the last one only
    assert run["final_return"] == curves[-1]["return_mean"] == final_return(curves, 40, "episodes")
    assert run["total_episodes"] == 40 and run["total_steps"] is None


# ---- evaluation in both modes -----------------------------------------------------------------------------------
def test_both_evaluation_returns_are_measured_whatever_eval_greedy_says():
    """From the same start states and draws: greedy and stochastic returns do not depend on which one eval_return
    is; eval_return is the one eval_greedy picks. On the short corridor the greedy policy never reaches G."""
    import ablations.envs.short_corridor as sc

    cfg = RunConfig(env_id=SC, seed=3, hidden=(), episodes_per_update=1, total_steps=None, total_episodes=20,
                    optimizer="sgd", policy_lr=2**-12, baseline="none", normalize="none", gamma=1.0,
                    init_logits=(0.0, math.log(0.05 / 0.95)), eval_episodes=5)
    stoch, greedy = (rows_of(train_cohort([c]), c.run_id)[1] for c in (cfg, cfg.replace(eval_greedy=True)))
    for key in ("eval_return_greedy", "eval_return_stochastic", "final_return"):
        assert stoch[key] == greedy[key]
    assert stoch["eval_return"] == stoch["eval_return_stochastic"] > -sc.MAX_STEPS
    assert greedy["eval_return"] == greedy["eval_return_greedy"] == -sc.MAX_STEPS


def test_a_linear_short_corridor_policy_steps_like_the_books_reinforce():
    """One update of the linear policy with plain SGD is θ ← θ + α Σ_t G_t ∇ln π(A_t) (the book's update, summed over
    the episode at the episode's θ): the bias moves by α Σ_t G_t (e_{A_t} − π)."""
    cfg = RunConfig(env_id=SC, seed=5, hidden=(), episodes_per_update=1, total_steps=None, total_episodes=1,
                    optimizer="sgd", policy_lr=2**-13, baseline="none", normalize="none", gamma=1.0, returns="rtg",
                    init_logits=(0.0, math.log(0.05 / 0.95)), eval_episodes=0)
    tr = Trainer([cfg])
    try:
        before = tr.cohort.policy[1][0].clone().double()
        batch_actions = []
        orig = tr._apply

        def spy(active, batch):
            batch_actions.append(batch.actions[0, 0, : int(batch.lengths[0, 0])].numpy().copy())
            return orig(active, batch)

        tr._apply = spy
        tr.train()
        after = tr.cohort.policy[1][0].double()
    finally:
        tr.close()
    a = batch_actions[0]
    T = len(a)
    G = -np.arange(T, 0, -1, dtype=float)  # G_t = −(T − t)
    pi = torch.softmax(before, -1).numpy()
    want = before.numpy() + cfg.policy_lr * sum(G[t] * (np.eye(2)[a[t]] - pi) for t in range(T))
    assert after.numpy() == pytest.approx(want, abs=1e-5)
    assert describe(SC).obs_dim == 1 and tr.cohort.policy[0].abs().max() == 0  # obs 0: W gets no gradient
