"""build_report end to end on small synthetic results: files, figures, determinism, missing data, planted effects."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from ablations.report import ReportError, build_report

FIGURES = ["learning_curves", "final_return_by_config", "main_effects", "interactions", "gradient_variance",
           "performance_profile"]


def test_builds_readme_tables_and_every_figure(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = make_results(probe_every=5, failed=1, diverged=1)
    readme = build_report(results, tmp_path / "out", n_resamples=500)
    assert readme == tmp_path / "out" / "README.md"
    text = readme.read_text()
    for name in FIGURES:
        assert (tmp_path / "out" / "figures" / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / "out" / "figures" / f"{name}.svg").exists()
        assert f"(figures/{name}.png)" in text
    for section in ("## Summary", "## Methods", "## Missing data", "Holm", "Type II", "TTestPower", "BCa",
                    "blocked by seed"):
        assert section in text
    for table in ("summary", "comparisons", "effects", "anova", "power", "gradvar", "variance_ratio", "missing"):
        assert (tmp_path / "out" / "tables" / f"{table}.csv").exists()
    missing = pd.read_csv(tmp_path / "out" / "tables" / "missing.csv")
    assert sorted(missing["status"]) == ["diverged", "failed"]
    assert "synthetic failure" in text


def test_same_seed_is_byte_identical(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = make_results()
    a = build_report(results, tmp_path / "a", n_resamples=500, seed=5, figures=False)
    b = build_report(results, tmp_path / "b", n_resamples=500, seed=5, figures=False)
    build_report(results, tmp_path / "c", n_resamples=500, seed=6, figures=False)
    assert a.read_bytes() == b.read_bytes()
    for table in sorted((tmp_path / "a" / "tables").glob("*.csv")):
        assert table.read_bytes() == (tmp_path / "b" / "tables" / table.name).read_bytes()
    assert (tmp_path / "a" / "tables" / "marginal_means.csv").read_bytes() != \
        (tmp_path / "c" / "tables" / "marginal_means.csv").read_bytes()  # bootstraps follow the seed
    assert (tmp_path / "a" / "tables" / "summary.csv").read_bytes() == \
        (tmp_path / "c" / "tables" / "summary.csv").read_bytes()  # t-intervals do not resample


def test_planted_main_effect_and_no_interaction(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = make_results(seeds=15, main={("returns", "rtg"): 60.0}, noise=20.0, rng_seed=3)
    build_report(results, tmp_path / "out", n_resamples=2_000, figures=False)
    effects = pd.read_csv(tmp_path / "out" / "tables" / "effects.csv", keep_default_na=False, na_values=[""])
    fr = effects[effects["metric"] == "final_return"]
    rtg = fr[(fr["kind"] == "main") & (fr["factor"] == "returns")].iloc[0]
    assert rtg["ci_low"] > 0 and rtg["p_holm"] < 0.05
    inter = fr[fr["kind"] == "interaction"].iloc[0]
    assert inter["ci_low"] < 0 < inter["ci_high"]
    text = (tmp_path / "out" / "README.md").read_text()
    assert "Using reward-to-go instead of full returns helps final return" in text


def test_bad_inputs_give_clear_errors(make_results: Callable[..., Path], tmp_path: Path) -> None:
    results = make_results()
    pd.read_csv(results / "runs.csv").drop(columns=["status"]).to_csv(results / "runs.csv", index=False)
    with pytest.raises(ReportError, match=r"runs.csv.*status"):
        build_report(results, tmp_path / "out")
    with pytest.raises(ReportError, match="not found"):
        build_report(tmp_path / "nowhere", tmp_path / "out")


def test_default_out_dir_and_threshold_option(make_results: Callable[..., Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    results = make_results(name="mystudy")
    monkeypatch.chdir(tmp_path)
    readme = build_report(results, n_resamples=300, threshold=100.0, figures=False)
    assert readme.resolve() == (tmp_path / "report" / "mystudy" / "README.md").resolve()
    threshold = pd.read_csv(tmp_path / "report" / "mystudy" / "tables" / "threshold.csv")
    assert threshold["frac_reached"].max() > 0
    assert "from the --threshold option" in readme.read_text()


def test_all_pairs(make_results: Callable[..., Path], tmp_path: Path) -> None:
    readme = build_report(make_results(), tmp_path / "out", n_resamples=300, all_pairs=True, figures=False)
    comparisons = pd.read_csv(tmp_path / "out" / "tables" / "comparisons.csv")
    assert len(comparisons[comparisons["metric"] == "final_return"]) == 6  # 4 configs → 6 pairs
    assert "### All pairs: final return" in readme.read_text()


def test_a_planted_three_way_crossover_through_the_whole_report(make_results: Callable[..., Path],
                                                                 tmp_path: Path) -> None:
    """reward-to-go helps by 60 where baseline and normalize 'agree' (none/none, value/advantages) and hurts by 60
    where they do not: no two-way term of returns carries it, so only the three-way interaction does. The verdict
    must name both partners and give each context's sign (never the averaged ≈ 0)."""
    factors = {"returns": ["full", "rtg"], "baseline": ["none", "value"], "normalize": ["none", "advantages"]}

    def crossover(cfg: dict) -> float:
        agree = (cfg["baseline"] == "none") == (cfg["normalize"] == "none")
        return (60.0 if agree else -60.0) * (cfg["returns"] == "rtg")

    results = make_results(factors=factors, main={}, effect=crossover, seeds=10, noise=10.0, rng_seed=5)
    build_report(results, tmp_path / "out", n_resamples=300, figures=True)
    v = pd.read_csv(tmp_path / "out" / "tables" / "verdicts.csv", keep_default_na=False).set_index("factor")
    assert v.loc["returns", "verdict"] == "depends" and v.loc["returns", "partners"] == "baseline, normalize"
    assert "returns × baseline × normalize" in v.loc["returns", "terms"]
    ctx = pd.read_csv(tmp_path / "out" / "tables" / "verdict_contexts.csv", keep_default_na=False)
    ret = ctx[ctx["factor"] == "returns"].set_index(["baseline", "normalize"])["verdict"]
    assert ret[("none", "none")] == ret[("value", "advantages")] == "helps"
    assert ret[("none", "advantages")] == ret[("value", "none")] == "hurts"
    text = (tmp_path / "out" / "README.md").read_text()
    assert "The effect of reward-to-go (vs full returns) on final return depends on baseline and normalize" in text
    assert "it helps in 2 (with no baseline and no normalization, +" in text
    assert "it hurts in 2 (" in text and "figures/contexts_returns_rtg.png" in text
    full = pd.read_csv(tmp_path / "out" / "tables" / "context_summary.csv").set_index(["factor", "level"])
    assert full.loc[("returns", "rtg"), "k"] == 4


def test_probes_with_gae_rows_give_the_lambda_table_figure_and_methods(make_results: Callable[..., Path],
                                                                       tmp_path: Path) -> None:
    """GAE rows in probes.csv (here: gae at λ = 0, 0.5, 1 next to the synthetic grid, which holds the reference
    full/loo/none/0) → table gae_lambda_curve, figure gae_lambda (drawn and linked) and its Methods entry; the
    gradient-variance figure leaves them out."""
    results = make_results(probe_every=5)
    probes = pd.read_csv(results / "probes.csv")
    ref = probes[probes["estimator"] == "full/loo/none/0"]
    gae = [ref.assign(estimator=f"gae({lam:g})/value/none/0", returns="gae", baseline="value", gae_lambda=lam,
                      bias_sq_norm=(1 - lam) * ref["mean_sq_norm"], total_var=ref["total_var"] * (0.5 + lam))
           for lam in (0.0, 0.5, 1.0)]
    pd.concat([probes.assign(gae_lambda=1.0), *gae], ignore_index=True).to_csv(results / "probes.csv", index=False)
    readme = build_report(results, tmp_path / "out", n_resamples=500)
    text = readme.read_text()
    assert (tmp_path / "out" / "figures" / "gae_lambda.png").stat().st_size > 1000
    assert "(figures/gae_lambda.png)" in text and "**GAE(λ).**" in text
    curve = pd.read_csv(tmp_path / "out" / "tables" / "gae_lambda_curve.csv")
    assert sorted(curve["gae_lambda"].unique()) == [0.0, 0.5, 1.0] and set(curve["metric"]) == {"rel_bias",
                                                                                                "var_ratio"}
    assert (curve.loc[curve["metric"] == "var_ratio", "mean"].round(6).isin([0.5, 1.0, 1.5])).all()
