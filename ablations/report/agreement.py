"""Do two results directories of the same study agree statistically? (`ablations reproduce` across machine classes.)

On a machine of another class (other SIMD paths, libraries or libm: `ablations.study.machine`) a rerun is not
bit-identical:
floats differ in the last bit and training amplifies it, so every run is a fresh draw from its config's distribution.
The results agree when all three hold:

1. **No config differs**: per config, the published and fresh `metric` values (one per seed) by a two-sided
   Mann–Whitney U test (`scipy.stats.mannwhitneyu`), Holm-corrected over configs (`statsmodels`); Welch's t-test is
   shown beside it. A config differs when its Holm-adjusted p < α.
2. **No overall shift** (equivalence, TOST): the seed-blocked shift — per seed, the mean over configs of
   fresh − published (a config's runs paired by seed, so seed-shared streams pair up; not by run_id, which differs
   where a tuned study's rerun chose another value for a config) — has a (1 − 2α) t-interval inside ±margin × the
   published pooled within-config SD.
3. **The report's verdicts agree**: `effects.factor_effects` on both; a main effect or interaction significant in
   opposite directions is a reversal. Effects significant in one and not the other are listed, not failed: with
   finite seeds that happens by chance near the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from ablations.report import effects as fx
from ablations.report.load import Results
from ablations.report.rules import ALPHA

CONFIG_COLUMNS = ["config", "n_published", "n_fresh", "mean_published", "mean_fresh", "difference",
                  "p_mannwhitney", "p_welch", "p_holm", "differs"]
VERDICT_COLUMNS = ["kind", "contrast", "factor", "level", "vs", "factor2", "level2", "vs2", "estimate_published",
                   "estimate_fresh", "verdict_published", "verdict_fresh", "reversed"]


@dataclass
class Agreement:
    """The three checks of the module docstring and the overall verdict."""

    metric: str
    alpha: float
    margin: float
    configs: pd.DataFrame
    shift: dict[str, float]
    verdicts: pd.DataFrame
    problems: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return not self.problems


def _values(results: Results, metric: str) -> pd.DataFrame:
    runs = results.runs
    out = runs.loc[runs["status"].isin(["done", "diverged"]), ["run_id", "config", "seed", metric]].copy()
    out[metric] = pd.to_numeric(out[metric], errors="coerce")
    return out[np.isfinite(out[metric].to_numpy(float))]


def _two_sample(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Mann–Whitney p, Welch p), two-sided; identical constant samples → 1."""
    if len(a) < 2 or len(b) < 2:
        return np.nan, np.nan
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0, 1.0
    p_mw = float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    p_w = float(sps.ttest_ind(a, b, equal_var=False).pvalue) if (np.var(a) + np.var(b)) > 0 else 1.0
    return p_mw, p_w


def config_table(pub: pd.DataFrame, new: pd.DataFrame, metric: str, alpha: float) -> pd.DataFrame:
    """Check 1: one row per config present in both."""
    rows = []
    for config in sorted(set(pub["config"]) & set(new["config"])):
        a = pub.loc[pub["config"] == config, metric].to_numpy(float)
        b = new.loc[new["config"] == config, metric].to_numpy(float)
        p_mw, p_w = _two_sample(a, b)
        rows.append(dict(config=config, n_published=len(a), n_fresh=len(b), mean_published=a.mean(),
                         mean_fresh=b.mean(), difference=b.mean() - a.mean(), p_mannwhitney=p_mw, p_welch=p_w))
    out = pd.DataFrame(rows, columns=CONFIG_COLUMNS[:-2])
    p = out["p_mannwhitney"].to_numpy(float)
    ok = np.isfinite(p)
    p_holm = np.full(len(out), np.nan)
    if ok.any():
        p_holm[ok] = multipletests(p[ok], method="holm")[1]
    out["p_holm"] = p_holm
    out["differs"] = p_holm < alpha
    return out[CONFIG_COLUMNS]


def overall_shift(pub: pd.DataFrame, new: pd.DataFrame, metric: str, alpha: float, margin: float) -> dict[str, float]:
    """Check 2: the seed-blocked mean shift (fresh − published) with its (1 − 2α) t-interval, against the margin.
    Runs pair by config and seed (the factor levels and the seed), not by run_id: a tuned field that differs between
    the two (another choice) changes the run id, not the pairing."""
    paired = pub.merge(new[["config", "seed", metric]], on=["config", "seed"], suffixes=("_published", "_fresh"))
    paired["d"] = paired[f"{metric}_fresh"] - paired[f"{metric}_published"]
    per_seed = paired.groupby("seed")["d"].mean().to_numpy(float)
    groups = [g.to_numpy(float) for _, g in pub.groupby("config")[metric] if len(g) > 1]
    dof = sum(len(g) - 1 for g in groups)
    sd = float(np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof)) if dof else np.nan
    out = dict(estimate=float(per_seed.mean()) if len(per_seed) else np.nan, ci_low=np.nan, ci_high=np.nan,
               ci_level=1 - 2 * alpha, n_seeds=len(per_seed), n_pairs=len(paired), sd_within=sd,
               margin=margin * sd if np.isfinite(sd) else np.nan)
    if len(per_seed) >= 2 and np.ptp(per_seed) > 0:
        ci = sps.ttest_1samp(per_seed, 0.0).confidence_interval(1 - 2 * alpha)
        out["ci_low"], out["ci_high"] = float(ci.low), float(ci.high)
    elif len(per_seed) >= 1:
        out["ci_low"] = out["ci_high"] = float(per_seed.mean())
    out["equivalent"] = bool(np.isfinite(out["margin"]) and -out["margin"] < out["ci_low"]
                             and out["ci_high"] < out["margin"])
    return out


def _verdict(effects: pd.DataFrame, alpha: float) -> pd.Series:
    sig = effects.index.isin(fx.significant(effects, alpha).index)
    return pd.Series(np.where(sig, np.where(effects["estimate"] > 0, "raises", "lowers"), "no evidence"),
                     index=effects.index)


def verdict_table(pub: Results, new: Results, metric: str, alpha: float, seed: int = 0) -> pd.DataFrame:
    """Check 3: the report's main effects and interactions on `metric`, verdict by verdict."""
    keys = ["kind", "contrast", "factor", "level", "vs", "factor2", "level2", "vs2"]
    tables = []
    for res in (pub, new):
        long = _values(res, metric).merge(res.runs[["run_id", *res.factors]], on="run_id")
        e, _ = fx.factor_effects(long.rename(columns={metric: "value"}), list(res.factors), res.levels,
                                 metric=metric, seed=seed)
        tables.append(e.assign(verdict=_verdict(e, alpha))[keys + ["estimate", "verdict"]])
    out = tables[0].merge(tables[1], on=keys, suffixes=("_published", "_fresh"))
    out["reversed"] = ((out["verdict_published"] != "no evidence") & (out["verdict_fresh"] != "no evidence")
                       & (out["verdict_published"] != out["verdict_fresh"]))
    return out[VERDICT_COLUMNS]


def agreement(published: Results, fresh: Results, *, metric: str = "final_return", alpha: float = ALPHA,
              margin: float = 0.5, seed: int = 0) -> Agreement:
    """All three checks; `problems` says, one sentence each, what failed (empty: the results agree)."""
    if list(published.factors) != list(fresh.factors):
        raise ValueError(f"the studies' factors differ: {published.factors} vs {fresh.factors}")
    pub, new = _values(published, metric), _values(fresh, metric)
    configs = config_table(pub, new, metric, alpha)
    shift = overall_shift(pub, new, metric, alpha, margin)
    verdicts = verdict_table(published, fresh, metric, alpha, seed) if published.factors else \
        pd.DataFrame(columns=VERDICT_COLUMNS)
    problems = []
    for row in configs[configs["differs"]].itertuples():
        problems.append(f"config {row.config}: {metric} {row.mean_fresh:.4g} vs published {row.mean_published:.4g} "
                        f"(Mann–Whitney p_holm {row.p_holm:.3g} < {alpha})")
    if not shift["equivalent"]:
        problems.append(f"overall shift {shift['estimate']:.4g} [{shift['ci_low']:.4g}, {shift['ci_high']:.4g}] "
                        f"({shift['ci_level']:.0%} CI over {shift['n_seeds']} seeds) is not inside "
                        f"±{shift['margin']:.4g} (= {margin} × the within-config SD {shift['sd_within']:.4g})")
    for row in verdicts[verdicts["reversed"]].itertuples():
        what = row.contrast
        problems.append(f"verdict reversed for {what}: published {row.verdict_published}, fresh {row.verdict_fresh}")
    return Agreement(metric, alpha, margin, configs, shift, verdicts, problems)
