"""Across environments: normalization by hand, the stratified seed-block bootstrap keeps env strata, our aggregates
equal rliable's on the same score matrix, and an effect planted to flip sign on one env is reported as inconsistent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ablations.report import perenv
from ablations.report import pooled as ag


def test_normalization_by_hand() -> None:
    rs = pd.DataFrame({"env_id": ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"], "random_score": [20.0, -500.0, -1200.0],
                       "episodes": [10, 10, 10]})
    norm = ag.normalization_table(["CartPole-v1", "Acrobot-v1", "Pendulum-v1"], rs, {"Acrobot-v1": -100.0},
                                  {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "Pendulum-v1": None},
                                  {"CartPole-v1": 300.0, "Acrobot-v1": -90.0, "Pendulum-v1": -200.0},
                                  random_source="measured")
    assert list(norm["reference"]) == [475.0, -100.0, -200.0]
    assert norm["reference_source"].str.contains("reward_threshold|study file|best config").all()
    scores = pd.DataFrame({"env_id": ["CartPole-v1", "CartPole-v1", "Acrobot-v1", "Pendulum-v1"],
                           "value": [247.5, 20.0, -200.0, -700.0]})
    z = ag.normalize_scores(scores, norm)
    # (247.5 − 20)/(475 − 20) = 0.5; random → 0; (−200 + 500)/(−100 + 500) = 0.75; (−700 + 1200)/(−200 + 1200) = 0.5
    assert z["value"].tolist() == [0.5, 0.0, 0.75, 0.5]
    assert z["raw"].tolist() == [247.5, 20.0, -200.0, -700.0]
    with pytest.raises(ValueError, match="not above the random"):
        ag.normalization_table(["CartPole-v1"], rs, {"CartPole-v1": 10.0}, {}, {}, random_source="measured")


def test_stratified_bootstrap_keeps_env_strata_and_seed_blocks() -> None:
    S, E, B = 6, 3, 500
    x = np.array([[1000 * e + s for e in range(E)] for s in range(S)], float)  # env e, seed s → 1000e + s
    idx = ag.stratified_indices(S, E, np.random.default_rng(0), B)
    assert idx.shape == (B, S, E)
    boot = ag.resample(np.stack([x, x + 0.5]), idx)  # two configs share the draws
    assert boot.shape == (B, 2, S, E)
    for e in range(E):  # every resample holds S scores of env e in column e, and only env e's
        col = boot[:, 0, :, e]
        assert np.all((col >= 1000 * e) & (col < 1000 * e + S))
    assert np.array_equal(boot[:, 1] - boot[:, 0], np.full((B, S, E), 0.5))  # same seeds for every config
    # the strata are drawn independently: the seeds drawn for env 0 and env 1 differ in most resamples
    assert (idx[:, :, 0] != idx[:, :, 1]).any(axis=1).mean() > 0.9


def test_iqm_ignores_missing_runs() -> None:
    x = np.arange(12, dtype=float).reshape(4, 3)
    x[1, 2] = np.nan
    assert ag.agg_iqm(x) == pytest.approx(sps.trim_mean(x[~np.isnan(x)], 0.25))


def test_aggregates_equal_rliable() -> None:
    metrics = pytest.importorskip("rliable.metrics", reason="rliable is not installed (pip install rliable)")
    rng = np.random.default_rng(7)
    for S, E in ((5, 3), (10, 4), (3, 7)):
        x, y = rng.normal(0.6, 0.4, (S, E)), rng.normal(0.5, 0.4, (S, E))
        x[0, 0] = y[1, 0]  # a tie
        assert ag.agg_iqm(x) == pytest.approx(metrics.aggregate_iqm(x), rel=1e-12)
        assert ag.agg_mean(x) == pytest.approx(metrics.aggregate_mean(x), rel=1e-12)
        assert ag.agg_median(x) == pytest.approx(metrics.aggregate_median(x), rel=1e-12)
        assert ag.agg_optimality_gap(x) == pytest.approx(metrics.aggregate_optimality_gap(x), rel=1e-12)
        assert ag.probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y),
                                                                    rel=1e-12)
        # batched over resamples, each resample equals the function on its own matrix
        batch = ag.resample(x, ag.stratified_indices(S, E, rng, 4))
        assert ag.agg_iqm(batch) == pytest.approx([metrics.aggregate_iqm(b) for b in batch], rel=1e-12)


ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3"]


def planted(effects: dict[str, float], seeds: int = 12) -> pd.DataFrame:
    """Normalized scores of a 2 × 2 design (baseline × returns) on four envs: baseline=mean adds effects[env]."""
    rng = np.random.default_rng(1)
    rows = []
    for env in ENVS:
        for s in range(seeds):
            block = rng.normal(0, 0.05)
            for b in ("none", "mean"):
                for r in ("full", "rtg"):
                    v = 0.4 + block + (effects[env] if b == "mean" else 0.0) + (0.1 if r == "rtg" else 0.0)
                    rows.append({"env_id": env, "seed": s, "baseline": b, "returns": r, "config": f"{b}/{r}",
                                 "value": v + rng.normal(0, 0.03)})
    return pd.DataFrame(rows)


def test_effect_that_flips_on_one_env_is_reported_inconsistent() -> None:
    df = planted({"CartPole-v1": 0.3, "Acrobot-v1": -0.3, "MountainCar-v0": 0.3, "LunarLander-v3": 0.3})
    levels = {"baseline": ["none", "mean"], "returns": ["full", "rtg"]}
    configs = ["none/full", "none/rtg", "mean/full", "mean/rtg"]
    t = ag.across_envs(df, ["baseline", "returns"], levels, ENVS, configs, "none/full", metric="final_return",
                       n_resamples=300)
    c = t["consistency"]
    base = c[(c["kind"] == "main") & (c["factor"] == "baseline")].iloc[0]
    assert base["holds_on_all"] == "" and base["hurts"] == 1 and base["helps"] == 3
    assert base["claim"] == ("not the same on every env: helps on CartPole-v1, MountainCar-v0, LunarLander-v3; "
                             "hurts on Acrobot-v1")
    assert base["q_p"] < 1e-6 and base["heterogeneity"].startswith("its size differs across envs")
    ret = c[(c["kind"] == "main") & (c["factor"] == "returns")].iloc[0]
    assert ret["holds_on_all"] == "helps" and ret["claim"].startswith("helps on all 4 envs")
    labels = t["env_labels"]
    assert set(labels["env_id"]) == set(ENVS) and labels["p_holm"].notna().all()
    by_env = t["effects_by_env"]
    assert set(by_env["env_id"]) == set(ENVS)
    agg = t["aggregate"].set_index(["config", "statistic"])
    assert agg.loc[("mean/rtg", "mean"), "estimate"] == pytest.approx(0.4 + 0.15 + 0.1, abs=0.03)
    assert (agg["ci_low"] <= agg["estimate"]).all() and (agg["estimate"] <= agg["ci_high"]).all()
    assert set(t["aggregate_profile"]["factor"]) == {"baseline", "returns"}


def test_consistent_effect_is_reported_consistent() -> None:
    df = planted({e: 0.2 for e in ENVS})
    levels = {"baseline": ["none", "mean"], "returns": ["full", "rtg"]}
    t = ag.across_envs(df, ["baseline", "returns"], levels, ENVS, ["none/full", "none/rtg", "mean/full", "mean/rtg"],
                       "none/full", metric="final_return", n_resamples=200)
    main = t["consistency"][t["consistency"]["kind"] == "main"]
    assert (main["holds_on_all"] == "helps").all() and (main["helps"] == 4).all()
    assert main["heterogeneity"].str.contains("not evidence that the effect is the same").all()


def test_cochran_q_by_hand() -> None:
    q, df, p, i2 = perenv.cochran_q(np.array([1.0, 3.0]), np.array([1.0, 1.0]))
    assert (q, df) == (2.0, 1) and p == pytest.approx(sps.chi2.sf(2.0, 1)) and i2 == pytest.approx(0.5)
    assert np.isnan(perenv.cochran_q(np.array([1.0, 2.0]), np.array([0.0, 1.0]))[0])


def test_a_crossing_interaction_gives_aggregate_contexts_by_hand() -> None:
    """returns helps without a baseline and hurts with one (planted, identical on every env): the aggregate verdict
    reads returns per baseline level, each the seed-paired difference of the env means."""
    rng = np.random.default_rng(3)
    levels = {"baseline": ["none", "mean"], "returns": ["full", "rtg"]}
    effect = {("none", "full"): 0.0, ("none", "rtg"): 0.3, ("mean", "full"): 0.2, ("mean", "rtg"): 0.0}
    rows = [dict(env_id=e, config=f"{b}/{r}", seed=s, baseline=b, returns=r,
                 value=0.4 + effect[(b, r)] + 0.02 * rng.standard_normal())
            for e in ENVS for b in levels["baseline"] for r in levels["returns"] for s in range(12)]
    df = pd.DataFrame(rows)
    t = ag.across_envs(df, ["baseline", "returns"], levels, ENVS, [f"{b}/{r}" for b in levels["baseline"]
                                                                   for r in levels["returns"]],
                       "none/full", metric="final_return", n_resamples=200)
    v, ctx = t["aggregate_verdicts"], t["aggregate_contexts"]
    assert v.set_index("factor").loc["returns", "verdict"] == "depends"
    ret = ctx[ctx["factor"] == "returns"].set_index("baseline")
    mean = df.groupby(["config", "seed"])["value"].mean()
    for b, want in (("none", 0.3), ("mean", -0.2)):
        diff = mean[f"{b}/rtg"].to_numpy() - mean[f"{b}/full"].to_numpy()
        assert ret.loc[b, "estimate"] == pytest.approx(diff.mean(), abs=1e-12)
        assert ret.loc[b, "estimate"] == pytest.approx(want, abs=0.02)
        lo, hi = sps.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=sps.sem(diff))
        assert (ret.loc[b, "ci_low"], ret.loc[b, "ci_high"]) == pytest.approx((lo, hi), rel=1e-9)
    assert ret.loc["none", "verdict"] == "helps" and ret.loc["mean", "verdict"] == "hurts"
