"""context_plots: the forest draws one point per context, coloured by class, with the margin band."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ablations.report import context_plots as cp
from ablations.report import plots


def test_context_forest_draws_the_given_contexts(tmp_path: Path) -> None:
    c = pd.DataFrame({"factor": "a", "level": "a1", "vs": "a0", "context": ["b=b0", "b=b1", "b=b2"],
                      "estimate": [5.0, -4.0, 0.1], "ci_low": [3.0, -6.0, -0.5], "ci_high": [7.0, -2.0, 0.7],
                      "margin": 1.0, "verdict": ["helps", "hurts", "equivalent"]})
    fig = cp.context_forest(c, "a", "a1", xlabel="final return")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b=b0", "b=b1", "b=b2"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"helps", "hurts", "equivalent"}
    assert [p.suffix for p in plots.save(fig, tmp_path, "ctx")] == [".png", ".svg"]
