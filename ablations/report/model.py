"""The `Report` record: what `build.compute` fills (settings, tables, figure paths) and `markdown.render` reads.

Kept apart from `build` so that `markdown`, which `build` calls, can name it without importing `build` back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ablations.report.load import Results


@dataclass
class Report:
    """Everything the markdown needs: the loaded results, the settings, the tables and the figure paths."""

    results: Results
    seed: int
    n_resamples: int
    level: float
    all_pairs: bool
    budget: float
    grid: np.ndarray
    threshold: float
    threshold_source: str
    metrics: list[str]
    n_seeds: int
    primary: str = "final_return"
    budget_unit: str = "env_steps"  # the budget's and every x-axis's unit: env_steps or episodes (total_episodes)
    margin: float = float("nan")  # equivalence margin on the primary metric (metric units)
    margin_rule: Any = None  # the `equivalence.Margin` it was resolved from (`[report] margin`, else the default)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)  # name → relative PNG path
    notes: list[str] = field(default_factory=list)
