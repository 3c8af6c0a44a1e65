"""The figure of context-wise effects: a forest of one factor level's effect in each of its contexts (rows of
`contexts.context_effects`), each point with its 95% CI, coloured by its class, the ±margin band shaded and 0 marked.
Draws what it is given (no resampling); to be merged into `plots` when the report is wired.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ablations.report.text import level_name  # noqa: E402
from ablations.report.plots import STYLE, _suptitle, palette  # noqa: E402

#: Colour per class (colour-blind palette) — the legend names each.
CLASS_COLOURS = dict(zip(("helps", "hurts", "equivalent", "undecided"), palette(8)[:3] + [(0.55, 0.55, 0.55)]))


def context_forest(contexts: pd.DataFrame, factor: str, level: str, *, xlabel: str) -> plt.Figure:
    """Forest of `factor` = `level` (vs its reference) in every context of `contexts` (one metric), top to bottom in
    the table's order; the y tick labels are the contexts, the x axis the effect in metric units."""
    c = contexts[(contexts["factor"] == factor) & (contexts["level"] == str(level))].reset_index(drop=True)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.28 * max(len(c), 1)), layout="constrained")
        y = np.arange(len(c))[::-1]
        margin = float(c["margin"].iloc[0]) if len(c) else np.nan
        if np.isfinite(margin):
            ax.axvspan(-margin, margin, color="0.9", zorder=0, label=f"±margin ({margin:.3g})")
        ax.axvline(0, color="0.3", lw=0.8)
        for cls, colour in CLASS_COLOURS.items():
            sel = (c["verdict"] == cls).to_numpy()
            if sel.any():
                est = c.loc[sel, "estimate"].to_numpy(float)
                low, high = c.loc[sel, "ci_low"].to_numpy(float), c.loc[sel, "ci_high"].to_numpy(float)
                err = np.vstack([est - low, high - est])
                ax.errorbar(est, y[sel], xerr=err, fmt="o", color=colour, ms=4, capsize=2, label=cls)
        ax.set_yticks(y, c["context"].tolist())
        ax.set_xlabel(xlabel)
        ax.legend(loc="best", fontsize=7)
        vs = c["vs"].iloc[0] if len(c) else ""
        _suptitle(fig, f"{level_name(factor, str(level))} vs {level_name(factor, str(vs))} in each context "
                       "(95% CI; Holm over the factor's contexts)")
    return fig
