"""rules: the report's decision rules, defined once."""

from __future__ import annotations

from ablations.report import comparisons, effects, power, pooled, rules


def test_one_alpha_power_and_margin() -> None:
    assert (rules.ALPHA, rules.POWER, rules.EQUIVALENCE_SD) == (0.05, 0.8, 0.25)
    for module in (comparisons, effects, power, pooled):  # imported, not redefined
        assert getattr(module, "ALPHA", rules.ALPHA) is rules.ALPHA
