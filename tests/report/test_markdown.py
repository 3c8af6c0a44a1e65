"""markdown: table formatting and number rounding."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations.report.text import fmt
from ablations.report.text import md_table


def test_md_table() -> None:
    df = pd.DataFrame({"config": ["a|b", "c"], "n": [3, 4], "mean": [123.456, np.nan]})
    text = md_table(df, {"config": "config", "n": "n", "mean": "mean"}, {"n": str})
    assert text.splitlines() == ["| config | n | mean |", "|---|---|---|", "| a\\|b | 3 | 123.5 |", "| c | 4 | n/a |"]
    assert md_table(df.iloc[:0], {"config": "config"}) == "_(none)_\n"
    assert "1 more rows" in md_table(df, {"config": "config"}, max_rows=1)


def test_fmt_rounding() -> None:
    assert [fmt(x) for x in (85.123, 107.94, 0.01234, 4.0, 20000.0, 0.0, -3.456, float("inf"))] == \
        ["85.1", "107.9", "0.0123", "4.00", "20,000", "0", "-3.46", "n/a"]
