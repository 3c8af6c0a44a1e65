"""`study.contrasts`: the contrasts a sequential study decides, as weights over its configs — the main effects equal
the report's (`report.effects`, seed-paired) also with excluded cells, interactions are differences of differences,
each config is compared with the reference within its env, and a family with no contrast is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.report import effects as fx
from ablations.report.load import level_label
from ablations.study import sequential as sq
from ablations.study.contrasts import contrasts
from ablations.study.design import StudyError, grid, parse_study


def study(families=("main",), exclude=(), factors=None, reference=None):
    factors = factors or {"baseline": ["none", "mean", "value"], "normalize": ["none", "advantages"],
                          "entropy_coef": [0.0, 0.01]}
    reference = reference or {"baseline": "none", "normalize": "none", "entropy_coef": 0.0}
    return parse_study({"name": "c", "seeds": 10, "fixed": {"total_steps": 400}, "factors": factors,
                        "exclude": list(exclude), "sequential": {"min": 5, "families": list(families)},
                        "report": {"reference": reference}}, where="c.toml")


@pytest.mark.parametrize("exclude", [(), ({"baseline": "mean", "normalize": "advantages"},)])
def test_main_effects_equal_the_reports(exclude):
    """The per-seed mean of each main contrast equals `report.effects.factor_effects`' estimate, and its t-interval
    (fixed-n, 95%) the report's seed-paired CI, on complete data and with an excluded cell."""
    st = study(exclude=exclude)
    points = grid(st)
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(10, len(points))) * 5 + rng.normal(size=(1, len(points))) * 20
    cs = sq.study_contrasts(st)
    D = sq.per_seed(Y, sq.weights(cs, len(points)))
    long = pd.DataFrame([{**{f: str(p[f]) for f in st.factors}, "seed": s, "value": Y[s, i]}
                         for i, p in enumerate(points) for s in range(10)])
    levels = {f: [str(v) for v in vs] for f, vs in st.factors.items()}
    effects, _ = fx.factor_effects(long, list(st.factors), levels, metric="m", n_resamples=10)
    main = effects[effects["kind"] == "main"].reset_index(drop=True)
    assert len(main) == len(cs) == 4
    for k, c in enumerate(cs):
        row = main.iloc[k]
        assert c.label == f"{row['factor']}={level_label(row['level'])} vs {level_label(row['vs'])}"
        assert D[:, k].mean() == pytest.approx(row["estimate"], rel=1e-12, abs=1e-12)
        low, high = sq.fixed_interval(D[:, k].mean(), D[:, k].std(ddof=1), 10, 0.05)
        assert (low, high) == pytest.approx((row["ci_low"], row["ci_high"]), rel=1e-10)


def test_interactions_are_differences_of_differences():
    st = study(families=("interactions",))
    points = grid(st)
    cs = sq.study_contrasts(st)
    assert [c.label for c in cs] == [
        "baseline=mean vs none × normalize=advantages vs none", "baseline=value vs none × normalize=advantages vs none",
        "baseline=mean vs none × entropy_coef=0.01 vs 0", "baseline=value vs none × entropy_coef=0.01 vs 0",
        "normalize=advantages vs none × entropy_coef=0.01 vs 0"]
    w = cs[0].weights
    key = {(p["baseline"], p["normalize"], p["entropy_coef"]): i for i, p in enumerate(points)}
    for e in (0.0, 0.01):  # averaged over entropy_coef's two levels
        assert w[key[("mean", "advantages", e)]] == w[key[("none", "none", e)]] == 0.5
        assert w[key[("none", "advantages", e)]] == w[key[("mean", "none", e)]] == -0.5
    assert sum(w.values()) == 0 and len(cs[0].cells) == 8


def test_each_config_is_compared_with_the_reference_within_its_env():
    st = study(families=("configs",), factors={"env_id": ["CartPole-v1", "Acrobot-v1"], "baseline": ["none", "value"],
                                               "normalize": ["none", "advantages"]},
               reference={"baseline": "none", "normalize": "none"})
    cs = sq.study_contrasts(st)
    assert [(c.env, c.label) for c in cs] == [
        (env, f"{b}/{n} vs none/none") for env in ("CartPole-v1", "Acrobot-v1")
        for b, n in (("none", "advantages"), ("value", "none"), ("value", "advantages"))]
    points = grid(st)
    for c in cs:
        assert {points[i]["env_id"] for i in c.cells} == {c.env} and sorted(c.weights.values()) == [-1.0, 1.0]
    assert list(sq.family_alphas(cs)) == [0.05 / 3] * 6  # Bonferroni per env


def test_a_family_without_contrasts_is_refused():
    with pytest.raises(StudyError, match=r"\[sequential\] families \['interactions'\] have no contrast"):
        study(families=("interactions",), factors={"baseline": ["none", "value"]}, reference={"baseline": "none"})
    assert contrasts([{"baseline": "none"}], {"baseline": ("none",)}, ["main"]) == []
