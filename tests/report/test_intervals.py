"""intervals: the t-interval of a config mean, by hand and by a coverage simulation at 5 seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.report import intervals as iv


def test_mean_interval_by_hand() -> None:
    # x = [1, 2, 3, 4, 5]: mean 3, s = √2.5, t_{4, .975} = 2.776445 → 3 ± 2.776445·√0.5
    out = iv.mean_interval(np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan]))
    assert out["n"] == 5 and out["mean"] == 3.0 and out["ci_method"] == "t"
    assert out["ci_high"] - 3 == pytest.approx(2.776445 * np.sqrt(0.5), rel=1e-6)
    assert iv.mean_interval(np.array([1.0]))["ci_method"] == "none"


def test_config_intervals_columns() -> None:
    df = pd.DataFrame({"config": ["a"] * 3 + ["b"] * 3, "value": [1.0, 2.0, 3.0, 5.0, 5.0, 5.0]})
    out = iv.config_intervals(df, ["config"])
    assert list(out.columns) == ["config"] + iv.INTERVAL_COLUMNS
    b = out.set_index("config").loc["b"]
    assert b["ci_low"] == b["ci_high"] == 5.0


def test_t_interval_covers_95_percent_at_5_seeds() -> None:
    # 4,000 simulated 5-seed configs of normal scores: binomial SD of the coverage ≈ 0.0034, band ± 0.015
    rng = np.random.default_rng(20260929)

    def interval(x: np.ndarray) -> tuple[float, float]:
        out = iv.mean_interval(x)
        return out["ci_low"], out["ci_high"]

    cov = iv.coverage(interval, lambda r: r.normal(3.0, 2.0, 5), 3.0, 4_000, rng)
    assert 0.935 <= cov <= 0.965
