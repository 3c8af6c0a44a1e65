"""Power at the family-wise α: the minimum detectable difference of a paired t-test, and per metric the tests'
α/m, the detectable effect and the seeds needed per effect size (`statsmodels.stats.power.TTestPower`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ablations.report.rules import ALPHA, POWER


def paired_mdd(sd: float, n: int, alpha: float, power: float = POWER) -> float:
    """Minimum detectable mean difference of a two-sided paired t-test with n pairs and SD of differences `sd`
    (`statsmodels.stats.power.TTestPower`)."""
    from statsmodels.stats.power import TTestPower

    if not (n >= 3 and np.isfinite(sd) and sd > 0):
        return np.nan
    return float(TTestPower().solve_power(effect_size=None, nobs=int(n), alpha=alpha, power=power)) * sd


def power_tables(comparisons: pd.DataFrame, *, effect_sizes: Sequence[float] = (0.5, 0.8, 1.0, 1.5),
                 alpha: float = ALPHA, power: float = POWER) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Power at the family-wise α of the comparisons (α/m per test, Holm's first step, m tests of a metric).

    `power`: per metric, the number of tests m, α/m, the paired-t MDD in SD units at the median number of pairs,
    and the median, min and max over comparisons of each comparison's own MDD (its SD of differences).
    `seeds_needed`: per effect size d (in units of a comparison's SD of differences) and metric, the seeds needed
    by a paired t-test at α/m (`statsmodels.stats.power.TTestPower`).
    """
    from statsmodels.stats.power import TTestPower

    analysis = TTestPower()
    rows, need = [], []
    for metric, g in comparisons.groupby("metric", sort=False):
        m = max(int(np.isfinite(g["p"].to_numpy(float)).sum()), 1)
        a = alpha / m
        n = int(np.median(g["n_pairs"])) if len(g) else 0
        d = float(analysis.solve_power(effect_size=None, nobs=n, alpha=a, power=power)) if n >= 3 else np.nan
        mdds = g["mdd"].to_numpy(float)
        mdds = mdds[np.isfinite(mdds)]
        rows.append(dict(metric=metric, n_tests=m, alpha=alpha, alpha_per_test=a, power=power, n_pairs=n,
                         mdd_sd=d, mdd_median=float(np.median(mdds)) if mdds.size else np.nan,
                         mdd_min=float(mdds.min()) if mdds.size else np.nan,
                         mdd_max=float(mdds.max()) if mdds.size else np.nan))
        for es in effect_sizes:
            need.append(dict(metric=metric, effect_size=float(es), alpha_per_test=a, power=power,
                             n_seeds_needed=int(np.ceil(analysis.solve_power(effect_size=es, nobs=None, alpha=a,
                                                                             power=power)))))
    return pd.DataFrame(rows), pd.DataFrame(need)
