"""`report.agreement`: the statistical comparison `ablations reproduce` falls back to on another machine class."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ablations.report.agreement import agreement, config_table, overall_shift
from ablations.report.load import Results

LEVELS = {"baseline": ["none", "mean"], "returns": ["full", "rtg"]}


def _results(values: dict[tuple[str, str], np.ndarray]) -> Results:
    rows = []
    for (b, r), x in values.items():
        for seed, v in enumerate(x):
            rows.append(dict(run_id=f"{b}-{r}-{seed}", config=f"{b}/{r}", seed=seed, status="done", baseline=b,
                             returns=r, final_return=float(v)))
    return Results(path=Path("."), study="s", runs=pd.DataFrame(rows), curves=pd.DataFrame(), probes=None,
                   timings=None, manifest={}, factors=list(LEVELS), levels=LEVELS, reference={}, reference_note="")


def _draw(rng: np.random.Generator, means: dict[tuple[str, str], float], seeds: int = 40) -> dict:
    """With 4 configs × 40 seeds the equivalence test (margin 0.5 SD) passes 99% of same-distribution draws."""
    return {k: rng.normal(m, 10.0, seeds) for k, m in means.items()}


MEANS = {("none", "full"): 100.0, ("none", "rtg"): 150.0, ("mean", "full"): 120.0, ("mean", "rtg"): 170.0}


def test_two_draws_of_the_same_study_agree():
    rng = np.random.default_rng(0)
    agr = agreement(_results(_draw(rng, MEANS)), _results(_draw(rng, MEANS)))
    assert agr.agree, agr.problems
    assert not agr.configs["differs"].any() and agr.shift["equivalent"] and not agr.verdicts["reversed"].any()
    # the study's big effects are found in both
    main = agr.verdicts[agr.verdicts["kind"] == "main"].set_index("factor")
    assert main.loc["returns", "verdict_published"] == main.loc["returns", "verdict_fresh"] == "raises"


def test_a_shifted_config_is_caught():
    rng = np.random.default_rng(1)
    shifted = {**MEANS, ("mean", "rtg"): 230.0}
    agr = agreement(_results(_draw(rng, MEANS)), _results(_draw(rng, shifted)))
    assert not agr.agree
    assert agr.configs.set_index("config").loc["mean/rtg", "differs"]
    assert agr.configs["differs"].sum() == 1
    assert any("mean/rtg" in p for p in agr.problems)


def test_a_reversed_verdict_is_caught():
    rng = np.random.default_rng(2)
    flipped = {("none", "full"): 100.0, ("none", "rtg"): 60.0, ("mean", "full"): 120.0, ("mean", "rtg"): 80.0}
    agr = agreement(_results(_draw(rng, MEANS)), _results(_draw(rng, flipped)))
    rev = agr.verdicts[agr.verdicts["reversed"]]
    assert ("main", "returns") in set(zip(rev["kind"], rev["factor"]))
    assert any("verdict reversed for returns=rtg vs full" in p for p in agr.problems)


def test_config_table_matches_scipy_and_holm_by_hand():
    pub = pd.DataFrame({"config": ["a"] * 4 + ["b"] * 4 + ["c"] * 4, "final_return": [1, 2, 3, 4] * 3})
    new = pd.DataFrame({"config": ["a"] * 4 + ["b"] * 4 + ["c"] * 4,
                        "final_return": [5, 6, 7, 8, 1, 2, 3, 5, 2, 3, 4, 5]})
    t = config_table(pub, new, "final_return", 0.05).set_index("config")
    for c in "abc":
        want = sps.mannwhitneyu(pub.loc[pub.config == c, "final_return"], new.loc[new.config == c, "final_return"],
                                alternative="two-sided").pvalue
        assert t.loc[c, "p_mannwhitney"] == pytest.approx(want)
    p = t["p_mannwhitney"].to_numpy()
    order = np.argsort(p)  # Holm by hand: m·p(1), max(that, (m−1)·p(2)), …
    adj = np.minimum(np.maximum.accumulate(np.array([3, 2, 1]) * p[order]), 1)
    assert t["p_holm"].to_numpy()[order] == pytest.approx(adj)


def test_overall_shift_is_the_seed_blocked_t_interval():
    pub = pd.DataFrame({"run_id": ["a0", "a1", "a2", "b0", "b1", "b2"], "config": list("aaabbb"),
                        "seed": [0, 1, 2] * 2, "final_return": [10.0, 12.0, 14.0, 20.0, 21.0, 25.0]})
    new = pub.assign(final_return=[11.0, 12.0, 13.0, 22.0, 20.0, 26.0])
    s = overall_shift(pub, new, "final_return", 0.05, 0.5)
    per_seed = np.array([(1 + 2) / 2, (0 - 1) / 2, (-1 + 1) / 2])
    ci = sps.ttest_1samp(per_seed, 0).confidence_interval(0.90)
    assert s["estimate"] == pytest.approx(per_seed.mean())
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((ci.low, ci.high))
    sd = np.sqrt((np.var([10, 12, 14], ddof=1) + np.var([20, 21, 25], ddof=1)) / 2)
    assert s["sd_within"] == pytest.approx(sd) and s["margin"] == pytest.approx(0.5 * sd)
    assert s["equivalent"] == (-0.5 * sd < ci.low and ci.high < 0.5 * sd)


def test_runs_pair_by_config_and_seed_not_run_id():
    """A tuned study's fresh rerun may choose another value of the tuned field (here policy_lr) for a config: its
    stage-2 run ids then differ from the published ones, but the runs of a config on one seed still pair up."""
    rng = np.random.default_rng(3)
    draw = _draw(rng, MEANS, seeds=8)
    pub = _results(draw)
    pub.runs["policy_lr"] = 0.01
    new = _results({k: v + rng.normal(0, 1.0, len(v)) for k, v in draw.items()})
    tuned_again = new.runs["config"] == "none/full"
    new.runs.loc[tuned_again, "policy_lr"] = 0.03
    new.runs.loc[tuned_again, "run_id"] = "x" + new.runs.loc[tuned_again, "run_id"]  # the choice is in the run id
    new.runs.loc[~tuned_again, "policy_lr"] = 0.01
    agr = agreement(pub, new)
    assert agr.shift["n_pairs"] == 32 and agr.shift["n_seeds"] == 8, agr.shift
    assert len(agr.configs) == 4 and (agr.configs["n_fresh"] == 8).all()
    assert agr.agree, agr.problems
