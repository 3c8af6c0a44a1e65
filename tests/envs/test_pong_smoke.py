"""Pong from pixels through the same engine: studies/pong.toml loads, and its first config trains a few updates
on a tiny budget (ALE/Pong-v5, the 'pong' preprocessor, a Bernoulli policy over UP/DOWN, rally returns, RMSprop).
Needs the 'atari' extra."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("ale_py", reason="ale-py is not installed: pip install '.[atari]' to run the Pong smoke test")

from ablations.train.engine import train_cohort
from ablations.envs.registry import describe
from ablations.evaluate.episodes import evaluate_policy
from ablations.study.design import expand, load_study

STUDY = Path(__file__).resolve().parents[2] / "studies" / "pong.toml"


def test_pong_study_trains_a_few_updates():
    configs = expand(load_study(STUDY))  # imports ale_py and describes ALE/Pong-v5 with the preprocessor
    assert len(configs) == 12 and {c.env_id for c in configs} == {"ALE/Pong-v5"}
    spec = describe("ALE/Pong-v5", "pong")
    assert (spec.obs_dim, spec.kind, spec.act_dim, spec.action_map) == (6400, "bernoulli", 1, (2, 3))

    torch.set_num_threads(1)
    # The tutorial's config (rally returns, RMSprop), one episode per update (a random policy loses 0:21 in
    # ~800-1100 steps).
    cfg = next(c for c in configs if c.returns == "rally" and c.optimizer == "rmsprop" and c.seed == 0)
    assert (cfg.policy_lr, cfg.rmsprop_decay, cfg.optimizer_eps, cfg.gamma) == (1e-4, 0.99, 1e-5, 0.99)
    cfg = cfg.replace(total_steps=2_000, episodes_per_update=1, eval_episodes=0)
    res = train_cohort([cfg])
    run = res.runs[0]
    assert run["status"] == "done", run["error"]
    assert run["updates"] >= 2 and run["env_steps"] >= 2_000
    for c in res.curves:
        assert -21 <= c["return_mean"] <= 21 and c["length_mean"] > 100
        assert 0 < c["entropy"] <= math.log(2) + 1e-6 and math.isfinite(c["grad_norm"]) and c["grad_norm"] > 0
    params = res.policies[cfg.run_id]
    assert [tuple(p.shape) for p in params] == [(6400, 200), (200,), (200, 1), (1,)]
    ev = evaluate_policy(cfg, params, episodes=1, seed=0)
    assert ev.greedy.shape == (1,) and np.all(np.abs(ev.greedy) <= 21)


def test_int8_frames_train_bit_identically_to_float32_frames(monkeypatch):
    """The rollout keeps Pong's frame differences as int8 (spec.obs_dtype); the same run with them stored as float32
    (the spec forced to float32, so the env converts every frame) must give the same bits: curves and policy."""
    import dataclasses

    from ablations.train import engine

    spec = describe("ALE/Pong-v5", "pong")
    assert spec.obs_dtype == "int8" and describe("CartPole-v1").obs_dtype == "float32"
    cfg = next(c for c in expand(load_study(STUDY)) if c.returns == "rally" and c.optimizer == "rmsprop")
    cfgs = [cfg.replace(seed=s, total_steps=1_500, episodes_per_update=2, eval_episodes=0) for s in (0, 1)]
    torch.set_num_threads(1)
    as_int8 = train_cohort(cfgs)
    monkeypatch.setattr(engine, "describe", lambda *a: dataclasses.replace(describe(*a), obs_dtype="float32"))
    as_float = train_cohort(cfgs)
    assert as_int8.curves == as_float.curves and len(as_int8.curves) >= 2
    for c in cfgs:
        for a, b in zip(as_int8.policies[c.run_id], as_float.policies[c.run_id], strict=True):
            assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
