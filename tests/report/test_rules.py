"""rules: the report's decision rules, defined once."""

from __future__ import annotations

from ablations.report import comparisons, effects, power, pooled, rules


def test_one_alpha_power_and_margin() -> None:
    assert (rules.ALPHA, rules.POWER, rules.EQUIVALENCE_SD) == (0.05, 0.8, 0.25)
    from ablations.report import equivalence
    from ablations.study import margin
    assert equivalence.DEFAULT_MARGIN is margin.DEFAULT_MARGIN and margin.DEFAULT_MARGIN.value == rules.EQUIVALENCE_SD
    for module in (comparisons, effects, power, pooled):  # imported, not redefined
        assert getattr(module, "ALPHA", rules.ALPHA) is rules.ALPHA
