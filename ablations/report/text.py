"""Words and numbers as the report prints them: the names of factor levels and metrics in sentences, numbers with
significant figures, p-values, an effect as a sentence, and a DataFrame as a markdown table. Pure string functions,
shared by every module that writes text (`markdown`, `markdown_across`, `markdown_tuning`, `questions`) and by the
figures' legends (`plots`).

`LEVEL_NAMES` holds the words for the levels of the string axes of `config.AXES` (a test checks that every key is an
axis level there); a level without words prints as "factor = level".
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd


LEVEL_NAMES: dict[str, dict[str, str]] = {
    "returns": {"full": "full returns", "rtg": "reward-to-go", "gae": "GAE(λ) advantages",
                "gae_gpomdp": "γ^t-weighted GAE(λ) advantages"},
    "baseline": {"none": "no baseline", "mean": "the batch-mean baseline", "loo": "the leave-one-out baseline",
                 "value": "a learned value baseline"},
    "normalize": {"none": "no normalization", "returns": "return normalization",
                  "advantages": "advantage normalization"},
}


METRIC_NAMES = {"final_return": "final return", "auc": "the area under the learning curve",
                "steps_to_threshold": "the env steps to reach the threshold", "eval_return": "evaluation return"}


#: The aggregate statistics of `pooled.AGG_METRICS` as headers and figure titles name them.
AGGREGATE_TITLES = {"iqm": "IQM", "mean": "mean", "median": "median", "optimality_gap": "optimality gap"}


def level_name(factor: str, level: str) -> str:
    if factor in LEVEL_NAMES and level in LEVEL_NAMES[factor]:
        return LEVEL_NAMES[factor][level]
    if factor == "entropy_coef":
        return "no entropy bonus" if float(level) == 0 else f"an entropy bonus of β = {level}"
    if factor == "bootstrap_truncated" and level in ("True", "False"):
        return "bootstrapping truncated episodes with V(s_T)" if level == "True" else "truncation as termination"
    return f"{factor} = {level}"


def format_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def fmt(x: float, digits: int = 3) -> str:
    """A number with `digits` significant figures (at least one decimal for |x| < 1000)."""
    if x is None or not np.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    mag = int(np.floor(np.log10(abs(x))))
    decimals = max(1 if abs(x) < 1000 else 0, min(6, digits - 1 - mag))
    return f"{x:,.{decimals}f}"


def effect_sentence(row: pd.Series) -> str:
    """One sentence from a row of `factor_effects` (main or interaction)."""
    metric = METRIC_NAMES.get(row["metric"], row["metric"])
    verb = "raises" if row["estimate"] > 0 else "lowers"
    low, high = (row["ci_low"], row["ci_high"]) if row["estimate"] > 0 else (-row["ci_high"], -row["ci_low"])
    nums = (f"{fmt(abs(row['estimate']))} [{fmt(low)}, {fmt(high)}] "
            f"(p_holm {format_p(row['p_holm'])}, g = {fmt(row['hedges_g'], 2)})")
    if row["kind"] == "main":
        subject = f"Using {level_name(row['factor'], row['level'])} instead of {level_name(row['factor'], row['vs'])}"
        return f"{subject} {verb} {metric} by {nums}."
    return (f"The effect of {level_name(row['factor'], row['level'])} (vs {level_name(row['factor'], row['vs'])}) "
            f"on {metric} changes by {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}] "
            f"(p_holm {format_p(row['p_holm'])}) when {level_name(row['factor2'], row['level2'])} replaces "
            f"{level_name(row['factor2'], row['vs2'])}.")


def md_table(df: pd.DataFrame, columns: dict[str, str], formats: dict[str, Callable[[Any], str]] | None = None,
             max_rows: int | None = None) -> str:
    """A markdown table of `columns` (name → header), each cell formatted by `formats[name]` (default `fmt`)."""
    formats = formats or {}
    if df.empty:
        return "_(none)_\n"
    shown = df if max_rows is None else df.head(max_rows)
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in shown.iterrows():
        cells = [formats.get(c, _cell)(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells).replace("\n", " ") + " |")
    if max_rows is not None and len(df) > max_rows:
        lines.append(f"\n_{len(df) - max_rows} more rows in the CSV._")
    return "\n".join(lines) + "\n"


def _cell(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        return fmt(float(x))
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    return str(x).replace("|", "\\|")
