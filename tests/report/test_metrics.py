"""metrics: the default threshold per env."""

from __future__ import annotations

import numpy as np

from ablations.report import metrics as mt


def test_default_threshold() -> None:
    assert mt.default_threshold("CartPole-v1", np.array([1.0]))[0] == 475.0
    value, why = mt.default_threshold("Acrobot-v1", np.arange(101.0))
    assert value == 75.0 and "75th percentile" in why
