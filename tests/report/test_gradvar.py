"""gradvar: per-estimator means across runs with CIs, and paired variance ratios to vanilla."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.report import gradvar as gv


def _probes(runs: int = 12, scale: float = 0.25, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(runs):
        run_level = rng.lognormal(0, 1)  # large between-run variation that pairing removes
        for update in (0, 10):
            for label, (r, b), factor in (("full/none/none/0", ("full", "none"), 1.0),
                                          ("rtg/value/none/0", ("rtg", "value"), scale)):
                var = run_level * factor * rng.lognormal(0, 0.05)
                rows.append(dict(run_id=f"r{i}", update=update, env_steps=1000 * update + i, estimator=label,
                                 returns=r, baseline=b, normalize="none", entropy_coef="0", total_var=var,
                                 snr=1 / var, cos_to_reference=0.9, bias_sq_norm=np.nan if b == "value" else 0.0))
    return pd.DataFrame(rows)


def test_vanilla_estimator_found() -> None:
    assert gv.vanilla_estimator(_probes()) == "full/none/none/0"
    assert gv.vanilla_estimator(_probes().query("returns == 'rtg'")) is None


def test_summary_means_and_columns() -> None:
    p = _probes()
    out = gv.gradvar_summary(p, n_resamples=1_000)
    assert list(out.columns) == gv.GRADVAR_COLUMNS
    row = out[(out["estimator"] == "full/none/none/0") & (out["update"] == 10) & (out["metric"] == "total_var")]
    expected = p[(p["estimator"] == "full/none/none/0") & (p["update"] == 10)]["total_var"].mean()
    assert row["mean"].item() == pytest.approx(expected)
    assert row["ci_low"].item() < expected < row["ci_high"].item()
    assert row["env_steps"].item() == pytest.approx(np.median(10_000 + np.arange(12)))
    nan_metric = out[(out["estimator"] == "rtg/value/none/0") & (out["metric"] == "bias_sq_norm")]
    assert (nan_metric["n"] == 0).all() and nan_metric["mean"].isna().all()


def test_variance_ratio_is_paired() -> None:
    out = gv.variance_ratios(_probes(scale=0.25), n_resamples=2_000)
    overall = out[(out["update"] == -1)].set_index("estimator")
    assert overall.loc["full/none/none/0", "ratio"] == pytest.approx(1.0)
    r = overall.loc["rtg/value/none/0"]
    # pairing cancels the lognormal(0, 1) run effect: the CI is tight around 0.25
    assert r["ratio"] == pytest.approx(0.25, rel=0.05)
    assert 0.22 < r["ci_low"] < 0.25 < r["ci_high"] < 0.28
    assert gv.variance_ratios(_probes().query("returns == 'rtg'")).empty


def test_step_form_bias_is_relative_to_the_rescaled_reference() -> None:
    """A step-form row's bias_sq_norm is measured by the probes against c·U (c = `reference_scale` = N/L̄), so its
    relative bias divides by ‖c·ū‖², not ‖ū‖²: here ‖bias‖ = 0.2‖c·ū‖ exactly; the reference itself reads 0, and the
    reference is the probes' `reference` column even when its step twin comes first."""
    rows = []
    for i in range(6):
        for update in (0, 10):
            ref_sq = 100.0 * (i + 1)
            for label, agg, c, bias in (("full/loo/none/0/step", "step", 0.1, 0.04 * 0.01 * ref_sq),
                                        ("full/loo/none/0", "episode", 1.0, 0.0),
                                        ("full/none/none/0/step", "step", 0.1, 0.04 * 0.01 * ref_sq)):
                rows.append(dict(run_id=f"r{i}", update=update, env_steps=update, estimator=label, returns="full",
                                 baseline=label.split("/")[1], normalize="none", entropy_coef="0", aggregate=agg,
                                 total_var=1.0, snr=1.0, cos_to_reference=0.9, bias_sq_norm=bias,
                                 mean_sq_norm=ref_sq * (c ** 2 if agg == "step" else 1.0), reference_scale=c,
                                 reference="full/loo/none/0"))
    q = gv.gradient_quality(pd.DataFrame(rows), n_resamples=200)
    rb = q[q["metric"] == "rel_bias"].set_index("estimator")
    assert rb.loc["full/none/none/0/step", "mean"] == pytest.approx(0.2)
    assert rb.loc["full/loo/none/0/step", "mean"] == pytest.approx(0.2)
    assert rb.loc["full/loo/none/0", ["mean", "ci_low", "ci_high"]].tolist() == [0.0, 0.0, 0.0]


def test_a_run_whose_reference_is_zero_has_no_relative_bias() -> None:
    """Equal returns make the leave-one-out reference exactly 0: that run's relative bias is undefined (left out),
    not inf, and the other runs still give the value."""
    rows = []
    for i in range(4):
        ref_sq = 0.0 if i == 0 else 100.0
        for label, bias in (("full/loo/none/0", 0.0), ("full/none/none/0", 0.0 if i == 0 else 4.0)):
            rows.append(dict(run_id=f"r{i}", update=0, env_steps=0, estimator=label, returns="full",
                             baseline=label.split("/")[1], normalize="none", entropy_coef="0", total_var=1.0, snr=1.0,
                             cos_to_reference=0.0, bias_sq_norm=bias, mean_sq_norm=ref_sq, reference_scale=1.0,
                             reference="full/loo/none/0"))
    q = gv.gradient_quality(pd.DataFrame(rows), n_resamples=200)
    rb = q[q["metric"] == "rel_bias"].set_index("estimator")
    assert rb.loc["full/none/none/0", "n"] == 3 and rb.loc["full/none/none/0", "mean"] == pytest.approx(0.2)


def _bias_rows(ref_sq: list[float], bias_sq: list[float]) -> pd.DataFrame:
    """One checkpoint per run: the reference full/loo/none/0 reads ref_sq, full/mean/none/0 has bias bias_sq."""
    rows = []
    for i, (r, b) in enumerate(zip(ref_sq, bias_sq)):
        for label, bias in (("full/loo/none/0", 0.0), ("full/mean/none/0", b)):
            rows.append(dict(run_id=f"r{i}", update=0, env_steps=0, estimator=label, returns="full",
                             baseline=label.split("/")[1], normalize="none", entropy_coef="0", total_var=1.0, snr=1.0,
                             cos_to_reference=0.5, bias_sq_norm=bias, mean_sq_norm=r, reference_scale=1.0,
                             reference="full/loo/none/0"))
    return pd.DataFrame(rows)


def test_relative_bias_is_a_ratio_of_means_over_runs() -> None:
    """Each run's ‖E ĝ_ref‖² estimate is unbiased but noisy, negative where the gradient is small next to its noise.
    By hand: ref 100, 100, −20 and bias 1, 1, 1 → (3/3) / (180/3) = 1/60, rel_bias √(1/60) = 0.129; the mean of the
    per-run ratios would be (0.01 + 0.01 − 0.05)/3 < 0, shown as 0. The bootstrap CI contains the ratio."""
    q = gv.gradient_quality(_bias_rows([100.0, 100.0, -20.0], [1.0, 1.0, 1.0]), n_resamples=2_000)
    rb2 = q[q["metric"] == "rel_bias_sq"].set_index("estimator").loc["full/mean/none/0"]
    assert rb2["n"] == 3 and rb2["mean"] == pytest.approx(1 / 60)
    rb = q[q["metric"] == "rel_bias"].set_index("estimator").loc["full/mean/none/0"]
    assert rb["mean"] == pytest.approx(np.sqrt(1 / 60))
    # resamples that draw the −20 run twice or thrice have a positive pooled denominator, but all-(−20) does not:
    # with 3 runs that is 1/27 of resamples, so the upper end is +∞ at 95%: a reference not resolved in every resample
    assert 0 < rb["ci_low"] < rb["mean"] and np.isposinf(rb["ci_high"])


def test_relative_bias_with_an_unresolved_reference_is_nan() -> None:
    """A pooled ‖E ĝ_ref‖² that is not positive (the reference gradient is within its noise) gives no ratio."""
    q = gv.gradient_quality(_bias_rows([10.0, -30.0], [1.0, 1.0]), n_resamples=500)
    rb = q[q["metric"] == "rel_bias"].set_index("estimator").loc["full/mean/none/0"]
    assert np.isnan(rb["mean"]) and np.isnan(rb["ci_low"]) and np.isnan(rb["ci_high"])


def test_relative_bias_ci_is_tight_when_every_run_resolves_the_reference() -> None:
    """Bias exactly 1/64 of each run's (positive, varying) reference: ratio 1/64, rel_bias 1/8 with a zero-width CI."""
    ref = [50.0, 80.0, 120.0, 200.0, 90.0]
    q = gv.gradient_quality(_bias_rows(ref, [r / 64 for r in ref]), n_resamples=1_000)
    rb = q[q["metric"] == "rel_bias"].set_index("estimator").loc["full/mean/none/0"]
    assert rb[["mean", "ci_low", "ci_high"]].tolist() == pytest.approx([0.125, 0.125, 0.125])


def _gae_probes() -> pd.DataFrame:
    """Three runs, two checkpoints: the reference full/loo/none/0 (‖E ĝ‖² 4, 2, 6 and total_var 1, 2, 4 at update 0;
    doubled at update 5) and gae at λ = 0 and 1 (bias 1, 0.5, 3 and 0, 0, 0; variances 0.5 and 2 × the reference's),
    plus rows the curve leaves out: a normalized and a step-form GAE row, and an rtg row."""
    rows = []
    base = dict(baseline="value", entropy_coef=0.0, reference="full/loo/none/0", reference_scale=1.0)
    for i, run in enumerate(["a", "b", "c"]):
        for update, k in ((0, 1.0), (5, 2.0)):
            ref_sq, ref_var, bias = k * [4.0, 2.0, 6.0][i], k * [1.0, 2.0, 4.0][i], k * [1.0, 0.5, 3.0][i]
            common = dict(run_id=run, update=update, env_steps=100 * update + i, snr=1.0, cos_to_reference=0.9)
            rows.append({**base, **common, "estimator": "full/loo/none/0", "returns": "full", "baseline": "loo",
                         "normalize": "none", "aggregate": "episode", "gae_lambda": 1.0, "mean_sq_norm": ref_sq,
                         "total_var": ref_var, "bias_sq_norm": 0.0})
            for lam, b, v in ((0.0, bias, 0.5), (1.0, 0.0, 2.0)):
                rows.append({**base, **common, "estimator": f"gae({lam:g})/value/none/0", "returns": "gae",
                             "normalize": "none", "aggregate": "episode", "gae_lambda": lam, "mean_sq_norm": 1.0,
                             "total_var": v * ref_var, "bias_sq_norm": b})
            for label, extra in (("gae(0)/value/advantages/0", dict(normalize="advantages", aggregate="episode")),
                                 ("gae(0)/value/none/0/step", dict(normalize="none", aggregate="step")),
                                 ("rtg/value/none/0", dict(normalize="none", aggregate="episode", returns="rtg"))):
                rows.append({**base, **common, "returns": "gae", **extra, "estimator": label, "gae_lambda": 0.0,
                             "mean_sq_norm": 1.0, "total_var": 9.0, "bias_sq_norm": 9.0})
    return pd.DataFrame(rows)


def test_the_lambda_curve_by_hand() -> None:
    """rel_bias = √(Σ bias / Σ ‖ū‖²) over the runs at each checkpoint: √((1 + 0.5 + 3)/(4 + 2 + 6)) = √0.375 at λ = 0
    (both checkpoints: the factor 2 cancels) and 0 at λ = 1; var_ratio = the geometric mean of the per-run ratios:
    0.5 and 2; only the unnormalized episode-form GAE rows. A resample of runs has a ratio between the runs' own
    (0.25 for a and b, 0.5 for c), so the CI lies within [√0.25, √0.5]."""
    out = gv.lambda_curve(_gae_probes(), n_resamples=2_000)
    assert list(out.columns) == gv.LAMBDA_COLUMNS
    assert set(out["returns"]) == {"gae"} and set(out["gae_lambda"]) == {0.0, 1.0} and set(out["update"]) == {0, 5}
    got = out.set_index(["metric", "gae_lambda", "update"])
    for update in (0, 5):
        assert got.loc[("rel_bias", 0.0, update), "mean"] == pytest.approx(np.sqrt(0.375))
        assert got.loc[("rel_bias", 1.0, update), "mean"] == 0.0
        assert got.loc[("var_ratio", 0.0, update), "mean"] == pytest.approx(0.5)
        assert got.loc[("var_ratio", 1.0, update), "mean"] == pytest.approx(2.0)
    row = got.loc[("rel_bias", 0.0, 0)]
    assert row["n"] == 3 and 0.5 - 1e-12 <= row["ci_low"] < np.sqrt(0.375) < row["ci_high"] <= np.sqrt(0.5) + 1e-12
    assert got.loc[("var_ratio", 1.0, 5), "ci_low"] == pytest.approx(2.0)  # every run's ratio is 2: no spread
    assert got.loc[("rel_bias", 0.0, 0), "env_steps"] == 1.0 and got.loc[("rel_bias", 0.0, 5), "env_steps"] == 501.0
    assert gv.lambda_curve(_gae_probes().query("returns != 'gae'")).empty
    assert gv.lambda_curve(_probes()).empty  # probes without GAE rows (or their column)
