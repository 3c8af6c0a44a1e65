"""loss: the chunked update of a whole group equals the plain per-run statement of the same math (`run_update`)."""

import numpy as np
import pytest
import torch

from ablations.config import RunConfig
from ablations.train import estimators as est
from ablations.train.engine import Trainer
from ablations.train.loss import per_run_norms, policy_gradient, run_update
from ablations.train.rollout import collect
from ablations.train.seeding import draw_seed

BASE = RunConfig(seed=3, total_steps=4000, eval_episodes=0, max_grad_norm=1.0, hidden=(32, 32))
MIXED = [BASE.replace(seed=s, baseline=b, returns=rt, normalize=n, entropy_coef=e, gamma=g, aggregate=a)
         for s, (b, rt, n, e, g, a) in enumerate([
             ("none", "full", "none", 0.0, 0.99, "step"), ("mean", "rtg", "returns", 0.01, 0.95, "episode"),
             ("loo", "full", "advantages", 0.0, 0.99, "step"), ("value", "rtg", "none", 0.1, 0.9, "step"),
             ("value", "gpomdp", "returns", 0.0, 0.99, "episode"), ("loo", "rally", "returns", 0.0, 0.9, "episode")])]


PENDULUM = RunConfig(env_id="Pendulum-v1", seed=5, total_steps=4000, eval_episodes=0, hidden=(16,),
                     episodes_per_update=4)
GAE_MIXED = [PENDULUM.replace(seed=s, **kw) for s, kw in enumerate([  # Pendulum: every episode truncated at 200 steps
    dict(returns="gae", gae_lambda=0.9), dict(returns="gae_gpomdp", gae_lambda=0.5, normalize="none",
                                              bootstrap_truncated=True),
    dict(returns="rtg", normalize="none", bootstrap_truncated=True), dict(returns="rtg"),
    dict(returns="gae", gae_lambda=0.0, normalize="none", bootstrap_truncated=True, aggregate="step"),
    dict(returns="full", baseline="loo", normalize="none")])]


@pytest.mark.parametrize("configs", [MIXED, GAE_MIXED], ids=["mixed", "gae"])
def test_chunked_update_matches_the_per_run_reference(configs):
    trainer = Trainer(configs)
    co = trainer.cohort
    for _ in range(3):  # a few updates so the critic and the policy are not at their initial values
        trainer.update(trainer.active())
    active = trainer.active()
    batch = collect(co.env, np.asarray(active), [draw_seed(co.runs[r].streams.env) for r in active], co.policy,
                    co.activation, co.head, [co.runs[r].streams.actions for r in active])
    step = policy_gradient(co, active, batch)
    trainer.close()
    for j, r in enumerate(active):
        pol = [p[r].detach().clone().requires_grad_(True) for p in co.policy]
        val = [p[r] for p in co.value]
        mine = batch.run(j)
        rtg = est.reward_to_go(mine.rewards, mine.mask, co.configs[r].gamma, co.configs[r].returns == "rally")
        ref = run_update(co.configs[r], co.head, co.activation, pol, val, mine, rtg)
        ref.loss.backward()
        for p, g in zip(pol, step.grads):
            assert torch.allclose(p.grad, g[r], rtol=1e-4, atol=1e-6)
        assert step.policy_loss[j] == pytest.approx(ref.policy_loss, rel=1e-4, abs=1e-6)
        assert step.entropy[j] == pytest.approx(ref.entropy, rel=1e-5)


def test_per_run_norms_by_hand_and_independent_of_the_other_rows():
    grads = [torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 0.0]]), torch.tensor([[4.0], [1.0], [2.0]])]
    assert per_run_norms(grads, [0, 1, 2]).tolist() == pytest.approx([5.0, 3 ** 0.5, 2.0])
    assert per_run_norms(grads, [2]).tolist() == per_run_norms(grads, [0, 2]).tolist()[1:]


@pytest.mark.parametrize("ok_all", [True, False])
def test_the_critic_fits_first_step_on_the_updates_forward_pass_equals_a_fresh_pass_bit_for_bit(ok_all):
    """`fit_values` reuses `policy_gradient`'s critic forward pass (`ValueFit.first`) for its first step: the critic's
    parameters, optimizer state and reported losses are the bits of a fresh forward pass (the pre-reuse code)."""
    import copy

    from ablations.train.loss import ValueFit, fit_values

    trainer = Trainer([c.replace(value_iters=2) for c in MIXED])
    co = trainer.cohort
    for _ in range(2):
        trainer.update(trainer.active())
    active = trainer.active()
    batch = collect(co.env, np.asarray(active), [draw_seed(co.runs[r].streams.env) for r in active], co.policy,
                    co.activation, co.head, [co.runs[r].streams.actions for r in active])
    trainer.close()
    step = policy_gradient(co, active, batch)
    assert step.fit.first is not None and len(step.fit.runs) == 2
    ok = np.ones(len(MIXED), dtype=bool)
    if not ok_all:
        ok[step.fit.runs[0][0]] = False  # a diverged value run: the fit falls back to a fresh pass
    value0, vopt0 = [p.clone() for p in co.value], copy.deepcopy(trainer.vopt)
    reused = fit_values(co, step.fit, ok, trainer.vopt)
    after_reuse, vopt_reuse = [p.clone() for p in co.value], trainer.vopt
    for p, q in zip(co.value, value0):
        p.copy_(q)
    fresh = fit_values(co, ValueFit(step.fit.rows_obs, step.fit.runs, None), ok, vopt0)
    assert reused == fresh and len(fresh) == (2 if ok_all else 1)
    for a, b in zip(after_reuse, co.value):
        assert torch.equal(a, b)
    for a, b in zip(vopt_reuse.m + vopt_reuse.v, vopt0.m + vopt0.v):
        assert torch.equal(a, b)
    assert not torch.equal(after_reuse[0], value0[0])  # the fit did step the critic


def test_all_finite_is_the_finiteness_of_the_per_run_norms():
    from ablations.train.loss import all_finite

    inf, nan = float("inf"), float("nan")
    grads = [torch.tensor([[3.0, 0.0], [1.0, inf], [0.0, 0.0], [1e30, 1e30]]),
             torch.tensor([[4.0], [1.0], [nan], [3e38]])]
    assert all_finite(grads, [0, 1, 2, 3]).tolist() == [True, False, False, True]
    assert all_finite(grads, [0, 1, 2, 3]).tolist() == np.isfinite(per_run_norms(grads, [0, 1, 2, 3]).numpy()).tolist()
    assert all_finite(grads, [3, 0]).tolist() == [True, True]


def test_the_critic_regresses_on_g_t_bootstrapped_by_its_own_value_of_the_final_observation():
    """The value target of every value run is G_t (the GAE levels' too, whatever λ); with bootstrap_truncated, G_t of
    a truncated episode continues by γ^{T−t} V(s_T), V the run's critic before the update on `Batch.final_obs`."""
    from ablations.train.nets import forward_single

    trainer = Trainer(GAE_MIXED)
    co = trainer.cohort
    trainer.update(trainer.active())
    active = trainer.active()
    batch = collect(co.env, np.asarray(active), [draw_seed(co.runs[r].streams.env) for r in active], co.policy,
                    co.activation, co.head, [co.runs[r].streams.actions for r in active])
    trainer.close()
    assert bool(batch.truncated.all()) and batch.final_obs is not None
    step = policy_gradient(co, active, batch)
    for r, _, _, target in step.fit.runs:
        cfg, j = co.configs[r], active.index(r)
        mine = batch.run(j)
        g = est.reward_to_go(mine.rewards, mine.mask, cfg.gamma)[mine.mask]
        if cfg.bootstrap_truncated:
            v_end = forward_single([p[r] for p in co.value], mine.final_obs[0], co.activation)[:, 0].detach()
            t_end = mine.lengths[0][:, None] - torch.arange(mine.mask.shape[2])[None]  # T − t
            g = g + (cfg.gamma ** t_end.double() * v_end[:, None].double())[mine.mask[0]].float()
        assert torch.allclose(target, g, rtol=1e-5, atol=1e-4), cfg
    assert {co.configs[f[0]].bootstrap_truncated for f in step.fit.runs} == {True, False}
