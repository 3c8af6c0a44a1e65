"""power: MDD and seeds needed at the family-wise α."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.report import power as pw


def test_power_tables_use_the_familywise_alpha() -> None:
    comparisons = pd.DataFrame({"metric": ["m"] * 47, "p": [0.5] * 47, "n_pairs": [30] * 47,
                                "mdd": [pw.paired_mdd(10.0, 30, 0.05 / 47)] * 47})
    power, need = pw.power_tables(comparisons, effect_sizes=(0.5,))
    from statsmodels.stats.power import TTestPower
    d = TTestPower().solve_power(effect_size=None, nobs=30, alpha=0.05 / 47, power=0.8)
    assert power.loc[0, "mdd_sd"] == pytest.approx(d)
    assert d == pytest.approx(0.828, abs=1e-3)  # at α/47; at α = 0.05 it would be 0.529
    assert TTestPower().solve_power(effect_size=None, nobs=30, alpha=0.05, power=0.8) == pytest.approx(0.529, abs=1e-3)
    assert power.loc[0, "mdd_median"] == pytest.approx(10 * d)
    assert need.loc[0, "n_seeds_needed"] == int(np.ceil(TTestPower().solve_power(0.5, nobs=None, alpha=0.05 / 47,
                                                                                 power=0.8)))
