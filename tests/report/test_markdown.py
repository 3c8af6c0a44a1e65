"""markdown: the single-env README's table subsections, from small hand-made tables (a namespace stands in for the
`Report`: the writers read only what they are given)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from ablations.report import markdown as md


def _rep(**tables: pd.DataFrame) -> SimpleNamespace:
    return SimpleNamespace(tables=tables, metrics=["final_return"], primary="final_return", all_pairs=False,
                           results=SimpleNamespace(reference_label="full/none"), threshold=100.0)


def test_alias_lines_list_groups_once() -> None:
    al = pd.DataFrame({"config": ["a", "b", "c"], "alias_of": ["a", "a", "c"], "group": ["a ≡ b", "a ≡ b", "c"],
                       "n_members": [2, 2, 1]})
    lines = md._alias_lines(_rep(aliases=al))
    assert lines[0] == "### Aliased configs" and lines[-2:] == ["- a ≡ b", ""]
    assert md._alias_lines(_rep(aliases=al.iloc[2:])) == []


def test_per_config_lines_merge_aliases_into_one_row() -> None:
    summary = pd.DataFrame({"metric": "final_return", "config": ["a", "b", "c"], "alias_of": ["a", "a", "c"],
                            "n": [3, 3, 3], "mean": [10.0, 10.0, 20.0], "ci_low": [8.0, 8.0, 18.0],
                            "ci_high": [12.0, 12.0, 22.0], "iqm": [10.0, 10.0, 20.0], "median": [10.0, 10.0, 20.0],
                            "std": [1.0, 1.0, 2.0]})
    lines = md._per_config_lines(_rep(summary=summary))
    table = [ln for ln in "\n".join(lines).splitlines() if ln.startswith("| ")]
    assert table == ["| config | n | mean | 95% CI | IQM | median | SD |",
                     "| a ≡ b | 3 | 10.0 | [8.00, 12.0] | 10.0 | 10.0 | 1.00 |",
                     "| c | 3 | 20.0 | [18.0, 22.0] | 20.0 | 20.0 | 2.00 |"]


def test_comparison_lines_only_the_primary_metric() -> None:
    c = pd.DataFrame({"metric": ["final_return", "auc"], "config": ["rtg/none", "rtg/none"],
                      "reference": ["full/none"] * 2, "n_pairs": [5, 5], "diff": [3.0, 1.0], "ci_low": [1.0, 0.0],
                      "ci_high": [5.0, 2.0], "p_holm": [0.0004, 0.5], "p_rank_holm": [0.06, 0.5], "mdd": [2.0, 1.0],
                      "prob_improvement": [0.9, 0.5]})
    lines = md._comparison_lines(_rep(comparisons=c))
    assert lines[0] == "### Each config vs the reference `full/none`: final return (paired by seed)"
    assert "| rtg/none | full/none | 5 | 3.00 | [1.00, 5.00] | <0.001 | 0.060 | 2.00 | 0.900 |" in lines[2]
    assert "auc" not in lines[2]
    assert md._comparison_lines(_rep(comparisons=c.iloc[:0])) == []


def test_variance_lines_overall_checkpoint_sorted_by_ratio() -> None:
    vr = pd.DataFrame({"estimator": ["x", "y", "z"], "update": [-1, -1, 5], "n": [4, 4, 4],
                       "ratio": [0.5, 0.25, 0.1], "ci_low": [0.4, 0.2, 0.05], "ci_high": [0.6, 0.3, 0.2]})
    rows = [ln for ln in md._variance_lines(_rep(variance_ratio=vr))[-2].splitlines() if ln.startswith("| ")]
    assert rows[1:] == ["| y | 4 | 0.250 | [0.200, 0.300] |", "| x | 4 | 0.500 | [0.400, 0.600] |"]
    assert md._variance_lines(_rep()) == []


def test_power_lines_absent_without_comparisons() -> None:
    assert md._power_lines(_rep(power=pd.DataFrame())) == []
    power = pd.DataFrame({"metric": ["final_return"], "n_tests": [3], "alpha_per_test": [0.05 / 3], "n_pairs": [10],
                          "mdd_sd": [1.2], "mdd_median": [5.0], "mdd_min": [4.0], "mdd_max": [np.nan]})
    need = pd.DataFrame({"metric": ["final_return"], "effect_size": [0.5], "n_seeds_needed": [40]})
    text = "\n".join(md._power_lines(_rep(power=power, seeds_needed=need)))
    assert "| final_return | 3 | 0.017 | 10 | 1.20 | 5.00 | 4.00 | n/a |" in text
    assert "| final_return | 0.500 | 40 |" in text and "power 0.8," in text
