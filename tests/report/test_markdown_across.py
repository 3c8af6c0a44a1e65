"""markdown_across: the multi-env README's sentences and tables, from small hand-made tables."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from ablations.report import markdown_across as ma


def _rep(**tables: pd.DataFrame) -> SimpleNamespace:
    return SimpleNamespace(tables=tables)


ROW = dict(term="baseline", contrast="baseline=mean vs none", kind="interaction", factor="baseline", level="mean",
           vs="none", factor2="", level2="", vs2="", estimate=0.25, ci_low=0.1, ci_high=0.4, p_holm=0.002, mdd=0.12,
           aggregate_verdict="helps", margin=0.05, ci90_low=0.13, ci90_high=0.37, claim="helps on all 2 envs (each "
           "significant under its env's Holm)", heterogeneity="no heterogeneity detected (…)", q_p=0.5, i_squared=0.0)


def test_findings_without_factors() -> None:
    assert ma.findings(_rep()) == ["_(no factors besides env_id)_"]


def test_finding_states_the_class_the_per_env_claim_and_heterogeneity() -> None:
    lines = ma.findings(_rep(consistency=pd.DataFrame([ROW])))
    assert lines == ["- The interaction baseline (baseline=mean vs none): +0.250 [0.100, 0.400] on the mean normalized "
                     "score (p_holm = 0.002): it helps in aggregate. **Per env** (each env's own Holm): helps on all 2 "
                     "envs (each significant under its env's Holm); no heterogeneity detected (…)."]


def test_an_undecided_finding_names_its_90_ci_and_mdd() -> None:
    row = {**ROW, "estimate": -0.05, "ci_low": -0.2, "ci_high": 0.1, "p_holm": 0.6, "aggregate_verdict": "undecided",
           "ci90_low": -0.17, "ci90_high": 0.07}
    line = ma.findings(_rep(consistency=pd.DataFrame([row])))[0]
    assert "−0.0500 [−0.200, 0.100]" in line
    assert "undecided in aggregate (90% CI [−0.170, 0.0700] not inside ±0.0500, " \
        "MDD at 80% power 0.120)" in line


def test_consistency_and_tuned_lines_absent_without_their_tables() -> None:
    assert ma._consistency_lines(_rep(), ["A-v0"]) == []
    assert ma._tuned_lines(SimpleNamespace(tables={}, results=None), {"A-v0": "envs/A-v0/README.md"}) == []


def test_consistency_table_has_a_column_per_env_and_no_double_p_sign() -> None:
    cons = pd.DataFrame([{**ROW, "q_p": 0.0001}])
    labels = pd.DataFrame({"contrast": ["baseline=mean vs none"] * 2, "env_id": ["A-v0", "B-v0"],
                           "estimate": [0.2, 0.3], "ci_low": [0.0, 0.1], "ci_high": [0.4, 0.5],
                           "verdict": ["undecided", "helps"]})
    text = "\n".join(ma._consistency_lines(_rep(consistency=cons, env_labels=labels), ["A-v0", "B-v0"]))
    assert "| effect | aggregate | 95% CI | aggregate class | A-v0 | B-v0 | Q p | I² | per env |" in text
    assert ("| baseline=mean vs none | 0.250 | [0.100, 0.400] | helps | 0.200 [0, 0.400] undecided | "
            "0.300 [0.100, 0.500] helps | < 0.001 |") in text
