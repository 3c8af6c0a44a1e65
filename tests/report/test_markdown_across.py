"""markdown_across: the multi-env README's sentences and tables, from small hand-made tables."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from ablations.report import markdown_across as ma


def _rep(**tables: pd.DataFrame) -> SimpleNamespace:
    return SimpleNamespace(tables=tables)


ROW = dict(term="baseline[mean]", kind="main", factor="baseline", level="mean", vs="none", factor2="", level2="",
           vs2="", estimate=0.25, ci_low=0.1, ci_high=0.4, p_holm=0.002, verdict="consistent")


def test_findings_without_factors() -> None:
    assert ma.findings(_rep()) == ["_(no factors besides env_id)_"]


def test_finding_of_a_significant_effect_with_its_mdd() -> None:
    effects = pd.DataFrame({"term": ["baseline[mean]"], "mdd": [0.12]})
    lines = ma.findings(_rep(consistency=pd.DataFrame([ROW]), aggregate_effects=effects))
    assert lines == ["- Using the batch-mean baseline instead of no baseline raises the mean normalized score by 0.250 "
                     "[0.100, 0.400] (p_holm = 0.002): **consistent**."]


def test_finding_not_significant_names_the_detectable_effect() -> None:
    row = {**ROW, "estimate": -0.05, "ci_low": -0.2, "ci_high": 0.1, "p_holm": 0.6, "verdict": "no evidence"}
    effects = pd.DataFrame({"term": ["baseline[mean]"], "mdd": [0.3]})
    lines = ma.findings(_rep(consistency=pd.DataFrame([row]), aggregate_effects=effects))
    assert lines == ["- Using the batch-mean baseline instead of no baseline changes the mean normalized score by "
                     "−0.0500 [-0.200, 0.100] (p_holm = 0.600, not significant; the smallest effect it could detect, "
                     "MDD at 80% power: 0.300): **no evidence**."]


def test_consistency_and_tuned_lines_absent_without_their_tables() -> None:
    assert ma._consistency_lines(_rep(), ["A-v0"]) == []
    assert ma._tuned_lines(SimpleNamespace(tables={}, results=None), {"A-v0": "envs/A-v0/README.md"}) == []


def test_consistency_table_has_a_column_per_env() -> None:
    cons = pd.DataFrame([{**ROW, "n_same_sign": 2, "reverses_on": "", "q_p": 0.5, "i_squared": 0.0}])
    by_env = pd.DataFrame({"term": ["baseline[mean]"] * 2, "env_id": ["A-v0", "B-v0"], "estimate": [0.2, 0.3],
                           "ci_low": [0.0, 0.1], "ci_high": [0.4, 0.5]})
    text = "\n".join(ma._consistency_lines(_rep(consistency=cons, effects_by_env=by_env), ["A-v0", "B-v0"]))
    assert "| effect | aggregate | 95% CI | A-v0 | B-v0 | same sign |" in text
    assert "| baseline[mean] | 0.250 | [0.100, 0.400] | 0.200 [0, 0.400] | 0.300 [0.100, 0.500] | 2/2 |" in text
