"""checkpoint: the probe hook through the engine: probes on or off leave training bit-identical, a run's rows do not
depend on its batch-mates, rows have probes.csv's columns in order, and no shipped study's configs give NaN."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ablations.config import RunConfig
from ablations.envs.registry import make_cohort_env
from ablations.probes.checkpoint import probe_checkpoint
from ablations.probes.grid import OPTIMAL, estimator_grid
from ablations.probes.rows import PROBE_COLUMNS
from ablations.train.engine import Trainer
from ablations.train.engine import train_cohort as engine_train_cohort


SMALL = RunConfig(total_steps=1200, hidden=(16, 16), episodes_per_update=4, probe_batches=3, eval_episodes=2,
                  policy_lr=1e-2)
MIX = [SMALL.replace(seed=1, baseline="value", entropy_coef=0.01),
       SMALL.replace(seed=2, returns="full", baseline="loo", normalize="none")]

DESIGN_COLUMNS = ["run_id", "update", "env_steps", "estimator", "returns", "baseline", "normalize", "entropy_coef",
                  "n_episodes", "k_batches", "total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos",
                  "bias_sq_norm", "is_trained_estimator"]


def train_cohort(configs):
    """The engine with this package's hook, as the study's worker wires it."""
    return engine_train_cohort(configs, probe=probe_checkpoint)


def without_id(rows):
    return [{k: v for k, v in r.items() if k != "run_id"} for r in rows]


def same_rows(a, b):
    return len(a) == len(b) and all(x.keys() == y.keys() and all(
        x[c] == y[c] or (isinstance(x[c], float) and math.isnan(x[c]) and math.isnan(y[c])) for c in x)
        for x, y in zip(a, b))


@pytest.mark.parametrize("backend", ["native", "gymnasium"])
def test_probes_on_leave_training_rows_bit_identical_and_probe_rows_do_not_depend_on_batch_mates(backend):
    off = train_cohort([c.replace(env_backend=backend) for c in MIX])
    on_cfgs = [c.replace(env_backend=backend, probe_every=2) for c in MIX]
    on = train_cohort(on_cfgs)
    assert same_rows(without_id(off.curves), without_id(on.curves))
    assert [r["eval_return"] for r in off.runs] == [r["eval_return"] for r in on.runs]
    # a run's probe rows are the same alone as inside the cohort
    alone = train_cohort([on_cfgs[1]])
    mine = [r for r in on.probes if r["run_id"] == on_cfgs[1].run_id]
    assert mine and same_rows(alone.probes, mine)


def test_probe_rows_have_the_design_columns_in_a_deterministic_order():
    cfg = MIX[0].replace(probe_every=2)
    res = train_cohort([cfg])
    rows = res.probes
    assert all(list(r)[: len(DESIGN_COLUMNS)] == DESIGN_COLUMNS and list(r) == PROBE_COLUMNS for r in rows)
    updates = sorted({r["update"] for r in rows})
    assert updates[0] == 0 and all(u % 2 == 0 for u in updates)
    per_checkpoint = [r for r in rows if r["update"] == 0]
    labels = [r["estimator"] for r in per_checkpoint]
    assert labels == [e.label for e in estimator_grid([0.0, 0.01], SMALL.episodes_per_update)]
    # β × aggregate × [returns × (baselines × normalizations + optimal) + GAE levels × λ × normalizations]
    assert len(labels) == 2 * 2 * (3 * (3 * 4 + 1) + 2 * 6 * 2)
    assert len(set(labels)) == len(labels)
    assert [r["estimator"] for r in per_checkpoint if r["is_trained_estimator"]] == ["rtg/value/advantages/0.01"]
    assert {r["critic"] for r in per_checkpoint if r["baseline"] == "value" and r["normalize"] != "returns"
            and r["returns"] in ("rtg", "gae", "gae_gpomdp")} == {"run"}  # the GAE rows use the critic fitted to G_t
    assert {r["gae_lambda"] for r in per_checkpoint if r["returns"].startswith("gae")} == {0.0, 0.5, 0.9, 0.95, 0.97,
                                                                                            1.0}
    assert {r["gae_lambda"] for r in per_checkpoint if not r["returns"].startswith("gae")} == {1.0}
    for r in rows:
        for c in ["total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos", "bias_sq_norm",
                  "entropy_coef", "rel_bias"]:
            assert type(r[c]) is float and not math.isnan(r[c])
        assert r["reference"] == "full/loo/none/0" and r["aggregate"] in ("episode", "step")
        assert r["estimator"].endswith("/step") == (r["aggregate"] == "step")
        assert r["n_episodes"] == 4 and r["k_batches"] == 3
        assert r["total_var"] >= 0
    assert OPTIMAL in {r["baseline"] for r in rows}


def test_the_hook_reads_the_view_only_and_leaves_the_trainer_untouched():
    """probe_checkpoint called on a view changes neither the cohort's parameters nor any training stream; called
    twice on equal checkpoints (same probes-stream state) it gives the same rows."""
    from ablations.train.cohort import Checkpoint, CohortView
    from ablations.train.rollout import collect
    from ablations.train.seeding import draw_seed, run_streams

    cfg = MIX[0].replace(probe_every=2)
    trainer = Trainer([cfg], probe_checkpoint)
    try:
        co = trainer.cohort
        params = [p.clone() for p in (*co.policy, *co.value)]
        streams = {k: getattr(co.runs[0].streams, k).bit_generator.state for k in ("env", "actions", "eval")}
        rows = []
        for _ in range(2):
            gen = run_streams(cfg.seed).probes
            env = make_cohort_env([cfg], num_envs=cfg.probe_batches * cfg.episodes_per_update)
            pool = collect(env, np.array([0]), [draw_seed(gen)], co.policy, co.activation, co.head, [gen])
            env.close()
            cp = Checkpoint(0, pool.run(0), tuple(p[0] for p in co.policy), tuple(p[0] for p in co.value), gen)
            rows.append(probe_checkpoint(CohortView.of(co, {0: cp}), [0], 0))
        assert rows[0] == rows[1] and len(rows[0]) == len(estimator_grid([0.0, 0.01], SMALL.episodes_per_update))
        assert all(torch.equal(a, b) for a, b in zip(params, (*co.policy, *co.value)))
        assert streams == {k: getattr(co.runs[0].streams, k).bit_generator.state for k in streams}
    finally:
        trainer.close()


# ---- no NaN in probes.csv for any shipped study ---------------------------------------------------------------------
STUDY_FILES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))


@pytest.mark.slow
@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_every_shipped_studys_configs_give_probe_rows_without_nan(path):
    """Each distinct config of the study (first seed), a tiny budget, probes at updates 0 and 1."""
    from ablations.study.design import expand, load_study  # a test may read a study file

    configs = {c.replace(seed=0).run_id: c for c in expand(load_study(path))}
    try:
        describe_env = __import__("ablations.envs.registry", fromlist=["describe"]).describe
        first = next(iter(configs.values()))
        spec = describe_env(first.env_id, first.preprocess)
    except Exception as exc:  # noqa: BLE001 - an extra (atari, box2d) not installed
        pytest.skip(f"{path.stem}: {exc}")
    if first.env_id.startswith("ALE/"):  # pong.toml, pong_curve.toml
        pytest.skip(f"{path.stem}: one Pong probe pool is ~30 games of thousands of frames (and rally returns are "
                    "not probed); its estimators are CartPole's")
    budget = (spec.max_episode_steps or 500) * first.episodes_per_update + 1  # two updates: probes at updates 0 and 1

    def tiny(c):  # the study's own budget unit (short_corridor counts episodes): two updates
        if c.total_episodes is not None:
            return {"total_episodes": 2 * c.episodes_per_update}
        return {"total_steps": budget}

    runs = [c.replace(**tiny(c), probe_every=1, probe_batches=3, eval_episodes=0)
            for c in list(configs.values())[:48]]
    by_key: dict = {}
    for c in runs:
        by_key.setdefault(c.cohort_key(), []).append(c)
    for group in by_key.values():
        res = train_cohort(group)
        assert res.probes
        for row in res.probes:
            bad = [k for k, v in row.items() if isinstance(v, float) and math.isnan(v)]
            assert not bad, (path.stem, row["estimator"], bad)


def test_a_gae_runs_probes_leave_its_training_bit_identical_and_do_not_depend_on_batch_mates():
    gae = [SMALL.replace(seed=1, returns="gae", gae_lambda=0.8, bootstrap_truncated=True),
           SMALL.replace(seed=2, returns="gae_gpomdp", gae_lambda=0.95, normalize="none")]
    off = train_cohort(gae + MIX)
    on_cfgs = [c.replace(probe_every=2) for c in gae]
    on = train_cohort(on_cfgs + MIX)
    assert same_rows(without_id(off.curves), without_id(on.curves))
    for cfg in on_cfgs:
        alone = train_cohort([cfg])
        mine = [r for r in on.probes if r["run_id"] == cfg.run_id]
        assert mine and same_rows(alone.probes, mine)
    rows = [r for r in on.probes if r["run_id"] == on_cfgs[1].run_id and r["update"] == 0]
    assert [r["estimator"] for r in rows if r["is_trained_estimator"]] == ["gae_gpomdp(0.95)/value/none/0"]
    own = [r for r in on.probes if r["run_id"] == on_cfgs[0].run_id and r["update"] == 0]
    assert not any(r["is_trained_estimator"] for r in own)  # a bootstrapped run: the probes do not bootstrap
    assert {r["gae_lambda"] for r in own if r["returns"] == "gae"} == {0.0, 0.5, 0.8, 0.9, 0.95, 0.97, 1.0}
    assert not any(isinstance(v, float) and math.isnan(v) for r in on.probes for v in r.values())
