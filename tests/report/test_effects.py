"""effects: planted main effect found, absent interaction covered, contrast weights, ANOVA, sentences."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ablations.report import effects as fx
from ablations.report import verdicts as vd
from ablations.report.text import effect_sentence

LEVELS = {"returns": ["full", "rtg"], "baseline": ["none", "mean", "value"]}


def _data(seed: int = 0, n: int = 20, interaction: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r, b in itertools.product(*LEVELS.values()):
        mu = 100 + 50 * (r == "rtg") + 10 * (b == "value") + interaction * (r == "rtg") * (b == "value")
        rows += [dict(returns=r, baseline=b, value=v) for v in rng.normal(mu, 15, n)]
    return pd.DataFrame(rows)


def test_planted_main_effect_found_and_no_interaction() -> None:
    effects, margins = fx.factor_effects(_data(), list(LEVELS), LEVELS, metric="m", n_resamples=4_000)
    assert list(effects.columns) == fx.EFFECT_COLUMNS
    main = effects[effects["kind"] == "main"].set_index(["factor", "level"])
    rtg = main.loc[("returns", "rtg")]
    assert rtg["ci_low"] > 0 and rtg["p_holm"] < 0.001 and rtg["estimate"] == pytest.approx(50, abs=8)
    assert main.loc[("baseline", "mean")]["ci_low"] < 0 < main.loc[("baseline", "mean")]["ci_high"]
    inter = effects[effects["kind"] == "interaction"]
    assert len(inter) == 2
    assert ((inter["ci_low"] < 0) & (inter["ci_high"] > 0)).all()
    assert set(margins["factor2"]) == {"", "baseline"}


def test_planted_interaction_found() -> None:
    effects, _ = fx.factor_effects(_data(interaction=40), list(LEVELS), LEVELS, metric="m", n_resamples=4_000)
    row = effects[(effects["kind"] == "interaction") & (effects["level2"] == "value")].iloc[0]
    assert row["ci_low"] > 0 and row["estimate"] == pytest.approx(40, abs=15)


def test_contrasts_are_exact_averages_of_cell_means() -> None:
    df = pd.DataFrame({"a": ["x", "x", "y", "y", "x", "y"], "b": ["p", "q", "p", "q", "p", "q"],
                       "value": [1.0, 2.0, 4.0, 8.0, 3.0, 6.0]})
    cells = fx.Cells.from_frame(df, ["a", "b"])
    # cell means: (x,p)=2, (x,q)=2, (y,p)=4, (y,q)=7 → main a: ((4-2)+(7-2))/2 = 3.5; interaction (7-2)-(4-2) = 3
    specs = fx.effect_specs(cells, {"a": ["x", "y"], "b": ["p", "q"]})
    est = {(s["kind"], s["factor"]): cells.means @ s["w"] for s in specs}
    assert est[("main", "a")] == pytest.approx(3.5)
    assert est[("main", "b")] == pytest.approx(1.5)
    assert est[("interaction", "a")] == pytest.approx(3.0)


def test_missing_cells_are_skipped_in_the_average() -> None:
    df = _data(n=5)
    df = df[~((df["returns"] == "rtg") & (df["baseline"] == "mean"))]  # an excluded cell
    effects, _ = fx.factor_effects(df, list(LEVELS), LEVELS, metric="m", n_resamples=500)
    rtg = effects[(effects["kind"] == "main") & (effects["factor"] == "returns")].iloc[0]
    assert rtg["n_cells"] == 2
    bad = effects[(effects["kind"] == "interaction") & (effects["level2"] == "mean")].iloc[0]
    assert bad["n_cells"] == 0 and np.isnan(bad["estimate"])


def test_anova_type2_and_partial_eta() -> None:
    table = fx.anova(_data(), list(LEVELS), metric="m")
    assert list(table.columns) == fx.ANOVA_COLUMNS
    terms = table.set_index("term")
    assert {"returns", "baseline", "returns:baseline", "Residual"} <= set(terms.index)
    assert terms.loc["returns", "p"] < 1e-6 and terms.loc["returns:baseline", "p"] > 0.01
    resid = terms.loc["Residual", "sum_sq"]
    ss = terms.loc["returns", "sum_sq"]
    assert terms.loc["returns", "partial_eta_sq"] == pytest.approx(ss / (ss + resid))
    assert fx.anova(_data().assign(value=1.0), list(LEVELS), metric="m").empty


def test_effect_sentence() -> None:
    row = pd.Series(dict(metric="final_return", kind="main", factor="returns", level="rtg", vs="full",
                         estimate=85.1, ci_low=62.3, ci_high=107.9, p_holm=1e-5, hedges_g=1.9))
    assert effect_sentence(row) == ("Using reward-to-go instead of full returns raises final return by 85.1 "
                                       "[62.3, 107.9] (p_holm < 0.001, g = 1.9).")
    neg = row.copy()
    neg[["estimate", "ci_low", "ci_high", "p_holm", "hedges_g"]] = [-12.0, -20.0, -4.0, 0.0123, -0.6]
    neg[["factor", "level", "vs"]] = ["entropy_coef", "0.01", "0"]
    assert effect_sentence(neg) == ("Using an entropy bonus of β = 0.01 instead of no entropy bonus lowers final "
                                       "return by 12.0 [4.00, 20.0] (p_holm = 0.012, g = -0.60).")


# ------------------------------------------------------------------------------------ the seed-blocked design
BLOCK_LEVELS = {"returns": ["full", "rtg"], "normalize": ["none", "returns"], "entropy_coef": ["0", "0.01"]}


def blocked_data(seed: int = 0, n: int = 20, crossover: float = 0.0, seed_sd: float = 10.0, noise: float = 5.0,
                 slope_sd: float = 0.0) -> pd.DataFrame:
    """Long data of a 2×2×2 factorial in which seed s shares a random effect across every config (common random
    numbers); `slope_sd` adds a per-seed random effect of returns (a seed × treatment interaction)."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(0, seed_sd, n), rng.normal(0, slope_sd, n)
    rows = []
    for r, z, e in itertools.product(*BLOCK_LEVELS.values()):
        rtg = r == "rtg"
        mu = 100 + crossover * rtg * (1 if z == "none" else -1)
        y = mu + u + v * rtg + rng.normal(0, noise, n)
        rows += [dict(returns=r, normalize=z, entropy_coef=e, seed=s, value=y[s]) for s in range(n)]
    return pd.DataFrame(rows)


def crossover_data() -> pd.DataFrame:
    return blocked_data(crossover=30.0)


def test_crossover_interaction_gives_simple_effect_verdicts() -> None:
    df = crossover_data()
    e, _ = fx.factor_effects(df, list(BLOCK_LEVELS), BLOCK_LEVELS, metric="m", n_resamples=200)
    assert ("returns", "normalize") in fx.interacting_pairs(e)
    simple = fx.simple_effects(df, list(BLOCK_LEVELS), BLOCK_LEVELS, fx.interacting_pairs(e), metric="m")
    s = simple[(simple["factor"] == "returns") & (simple["by"] == "normalize")].set_index("by_level")
    assert s.loc["none", "ci_low"] > 0 and s.loc["returns", "ci_high"] < 0  # opposite signs
    v, _ = vd.verdicts(e, df, list(BLOCK_LEVELS), BLOCK_LEVELS, metric="m", margin=1.0)
    v = v.set_index("factor")
    assert v.loc["returns", "verdict"] == "depends" and v.loc["returns", "partners"] == "normalize"
    main = e[(e["kind"] == "main") & (e["factor"] == "returns")].iloc[0]
    assert abs(main["estimate"]) < 5  # the average over normalize hides the crossover


def test_three_way_terms_are_estimated() -> None:
    e, _ = fx.factor_effects(blocked_data(), list(BLOCK_LEVELS), BLOCK_LEVELS, metric="m", n_resamples=200)
    assert (e["order"] == 3).sum() == 1
    table = fx.anova(blocked_data(), list(BLOCK_LEVELS), metric="m")
    assert "returns:normalize:entropy_coef" in set(table["term"]) and "seed (block)" in set(table["term"])


def test_blocked_se_matches_paired_t_and_statsmodels_cluster() -> None:
    from scipy import stats as sps
    import statsmodels.formula.api as smf

    df = blocked_data(slope_sd=4.0)
    e, _ = fx.factor_effects(df, list(BLOCK_LEVELS), BLOCK_LEVELS, metric="m", n_resamples=200)
    main = e[(e["kind"] == "main") & (e["factor"] == "returns")].iloc[0]
    wide = df.pivot_table(index="seed", columns="returns", values="value")  # per-seed mean over the other cells
    ref = sps.ttest_1samp(wide["rtg"] - wide["full"], 0.0)
    assert main["p"] == pytest.approx(ref.pvalue) and main["ci_low"] == pytest.approx(ref.confidence_interval().low)
    # with missing runs: the seed-clustered sandwich of the cell-means OLS, without statsmodels' (N−1)/(N−K) factor
    gone = df.drop(index=np.random.default_rng(1).choice(len(df), 17, replace=False))
    e2, _ = fx.factor_effects(gone, list(BLOCK_LEVELS), BLOCK_LEVELS, metric="m", n_resamples=200)
    cells = fx.Cells.from_frame(gone, list(BLOCK_LEVELS))
    w = fx.effect_specs(cells, BLOCK_LEVELS)[0]["w"]
    gone = gone.assign(cell=gone["returns"] + "/" + gone["normalize"] + "/" + gone["entropy_coef"])
    fit = smf.ols("value ~ 0 + C(cell)", gone).fit(cov_type="cluster", cov_kwds={"groups": gone["seed"].to_numpy()})
    weights = pd.Series(w, index=[f"C(cell)[{'/'.join(k)}]" for k in cells.keys]).reindex(fit.params.index)
    tt = fit.t_test(weights.to_numpy())
    n, k = len(gone), len(cells.keys)
    assert e2.iloc[0]["estimate"] == pytest.approx(float(np.squeeze(tt.effect)))
    assert e2.iloc[0]["se"] == pytest.approx(float(np.squeeze(tt.sd)) * np.sqrt((n - k) / (n - 1)))


def test_constant_metric_yields_no_test() -> None:
    df = blocked_data().assign(value=20_000.0)
    e, _ = fx.factor_effects(df, list(BLOCK_LEVELS), BLOCK_LEVELS, metric="m", n_resamples=200)
    assert e["p"].isna().all() and e["p_holm"].isna().all() and (e["estimate"] == 0).all()
    assert fx.significant(e).empty
    assert fx.anova(df, list(BLOCK_LEVELS), metric="m").empty


def _old_independent_ci(df: pd.DataFrame) -> tuple[float, float]:
    """The interval the report used before: pooled within-cell variance, cells treated as independent."""
    from scipy import stats as sps

    cells = fx.Cells.from_frame(df, list(BLOCK_LEVELS))
    w = fx.effect_specs(cells, BLOCK_LEVELS)[0]["w"]
    s2, dof = cells.pooled_variance()
    se = np.sqrt(s2 * np.sum(w ** 2 / cells.n))
    est = cells.means @ w
    q = sps.t.ppf(0.975, dof)
    return est - q * se, est + q * se


def coverage(n_sims: int, slope_sd: float, seed_sd: float = 10.0) -> tuple[float, float]:
    """(blocked, independent) coverage of the returns main effect (true value 0) under shared seeds."""
    hit_b = hit_i = 0
    for i in range(n_sims):
        df = blocked_data(seed=1000 + i, n=10, seed_sd=seed_sd, slope_sd=slope_sd)
        e, _ = fx.factor_effects(df, list(BLOCK_LEVELS), BLOCK_LEVELS, metric="m", n_resamples=10)
        row = e[(e["kind"] == "main") & (e["factor"] == "returns")].iloc[0]
        hit_b += row["ci_low"] <= 0 <= row["ci_high"]
        lo, hi = _old_independent_ci(df)
        hit_i += lo <= 0 <= hi
    return hit_b / n_sims, hit_i / n_sims


@pytest.mark.slow
def test_blocked_cis_keep_coverage_where_independent_ones_do_not() -> None:
    # shared seed intercept (sd 10) and a per-seed effect of returns (sd 6), noise 5, 10 seeds, 2,000 studies
    blocked, independent = coverage(2_000, slope_sd=6.0)
    assert abs(blocked - 0.95) <= 0.02
    assert abs(independent - 0.95) > 0.02
