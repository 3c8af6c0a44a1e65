"""effects: planted main effect found, absent interaction covered, contrast weights, ANOVA, sentences."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ablations.report import effects as fx

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
    assert fx.effect_sentence(row) == ("Using reward-to-go instead of full returns raises final return by 85.1 "
                                       "[62.3, 107.9] (p_holm < 0.001, g = 1.9).")
    neg = row.copy()
    neg[["estimate", "ci_low", "ci_high", "p_holm", "hedges_g"]] = [-12.0, -20.0, -4.0, 0.0123, -0.6]
    neg[["factor", "level", "vs"]] = ["entropy_coef", "0.01", "0"]
    assert fx.effect_sentence(neg) == ("Using an entropy bonus of β = 0.01 instead of no entropy bonus lowers final "
                                       "return by 12.0 [4.00, 20.0] (p_holm = 0.012, g = -0.60).")
