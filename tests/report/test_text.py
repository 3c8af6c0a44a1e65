"""text: table formatting, number rounding, p-values, level and metric names, effect sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations.config import AXES
from ablations.report.text import LEVEL_NAMES, fmt, format_p, level_name, md_table


def test_md_table() -> None:
    df = pd.DataFrame({"config": ["a|b", "c"], "n": [3, 4], "mean": [123.456, np.nan]})
    text = md_table(df, {"config": "config", "n": "n", "mean": "mean"}, {"n": str})
    assert text.splitlines() == ["| config | n | mean |", "|---|---|---|", "| a\\|b | 3 | 123.5 |", "| c | 4 | n/a |"]
    assert md_table(df.iloc[:0], {"config": "config"}) == "_(none)_\n"
    assert "1 more rows" in md_table(df, {"config": "config"}, max_rows=1)


def test_md_table_cells_booleans_and_newlines() -> None:
    df = pd.DataFrame({"ok": [True, False], "note": ["two\nlines", "x"]})
    assert md_table(df, {"ok": "ok", "note": "note"}).splitlines()[2:] == ["| yes | two lines |", "| no | x |"]


def test_fmt_rounding() -> None:
    assert [fmt(x) for x in (85.123, 107.94, 0.01234, 4.0, 20000.0, 0.0, -3.456, float("inf"))] == \
        ["85.1", "107.9", "0.0123", "4.00", "20,000", "0", "-3.46", "n/a"]


def test_format_p() -> None:
    assert [format_p(p) for p in (0.0004, 0.001, 0.04567, 1.0, float("nan"))] == \
        ["< 0.001", "= 0.001", "= 0.046", "= 1.000", "n/a"]


def test_level_names() -> None:
    assert level_name("returns", "rtg") == "reward-to-go"
    assert level_name("baseline", "loo") == "the leave-one-out baseline"
    assert level_name("entropy_coef", "0") == "no entropy bonus"
    assert level_name("entropy_coef", "0.01") == "an entropy bonus of β = 0.01"
    assert level_name("policy_lr", "0.001") == "policy_lr = 0.001"
    assert level_name("returns", "gpomdp") == "returns = gpomdp"  # a level without words
    assert level_name("returns", "gae") == "GAE(λ) advantages" and level_name("gae_lambda", "0.9") == "gae_lambda = 0.9"
    assert level_name("bootstrap_truncated", "True") == "bootstrapping truncated episodes with V(s_T)"
    assert level_name("bootstrap_truncated", "False") == "truncation as termination"


def test_level_names_are_axis_levels() -> None:
    """The words are for levels of `config.AXES`: one axes table, no level named that the package lacks."""
    for axis, names in LEVEL_NAMES.items():
        assert set(names) <= set(AXES[axis]), axis
