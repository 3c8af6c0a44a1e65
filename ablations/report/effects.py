"""Factor effects on per-seed scores: main effects, two-way interactions, marginal means, and a factorial ANOVA.

Owns: contrasts as weight vectors over cells (a cell = one config), their seed-level bootstrap (seeds resampled
within each cell, the same draws for every contrast), t-tests against the pooled within-cell variance, Holm
correction per family, and the ANOVA table (statsmodels `ols` + `anova_lm`, Type II, main effects and all two-way
interactions) with partial η². Also the plain-language sentence for each significant effect.

A main effect of factor F at level l is the mean over the other factors' level combinations o of
(cell mean at F=l, o) − (cell mean at F=l₀, o), with l₀ the first level, using only the o where both cells exist.
A two-way interaction A(a vs a₀) × B(b vs b₀) is the mean over o of the difference of differences
[(a,b) − (a₀,b)] − [(a,b₀) − (a₀,b₀)], again over the o where all four cells exist.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from ablations.report.stats import derive_rng, holm, percentile_ci, small_sample_factor

EFFECT_COLUMNS = ["metric", "kind", "factor", "level", "vs", "factor2", "level2", "vs2", "n_cells", "estimate",
                  "ci_low", "ci_high", "ci_level", "ci_method", "se", "df", "t", "p", "p_holm", "hedges_g"]
MARGINAL_COLUMNS = ["metric", "factor", "level", "factor2", "level2", "n_cells", "mean", "ci_low", "ci_high",
                    "ci_level", "ci_method"]
ANOVA_COLUMNS = ["metric", "term", "df", "sum_sq", "F", "p", "partial_eta_sq", "anova_type"]


@dataclass
class Cells:
    """Per-seed values grouped by cell. `keys[i]` is the cell's level tuple (in `factors` order)."""

    factors: list[str]
    keys: list[tuple[str, ...]]
    values: list[np.ndarray]

    @classmethod
    def from_frame(cls, df: pd.DataFrame, factors: list[str], value: str = "value") -> "Cells":
        keys, values = [], []
        for key, g in df.groupby(factors, sort=True):
            x = g[value].dropna().to_numpy(float)
            if x.size:
                keys.append(tuple(map(str, key if isinstance(key, tuple) else (key,))))
                values.append(x)
        return cls(list(factors), keys, values)

    @property
    def index(self) -> dict[tuple[str, ...], int]:
        return {k: i for i, k in enumerate(self.keys)}

    @property
    def n(self) -> np.ndarray:
        return np.array([len(v) for v in self.values], float)

    @property
    def means(self) -> np.ndarray:
        return np.array([v.mean() for v in self.values])

    def pooled_variance(self) -> tuple[float, float]:
        """(σ², df): the within-cell variance pooled over cells, with df = N − C."""
        df = float(sum(len(v) - 1 for v in self.values))
        ss = float(sum(((v - v.mean()) ** 2).sum() for v in self.values))
        return (ss / df if df > 0 else np.nan), df

    def bootstrap_means(self, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
        """[B, C] cell means with each cell's seeds resampled with replacement, independently per cell."""
        out = np.empty((n_resamples, len(self.values)))
        for j, v in enumerate(self.values):
            out[:, j] = v[rng.integers(0, len(v), size=(n_resamples, len(v)))].mean(axis=1)
        return out


def _position(factors: list[str], name: str) -> int:
    return factors.index(name)


def _others(cells: Cells, fixed: Sequence[str]) -> list[tuple[str, ...]]:
    """Distinct level combinations of the factors not in `fixed`, as present among the cells."""
    pos = [i for i, f in enumerate(cells.factors) if f not in fixed]
    return sorted({tuple(k[i] for i in pos) for k in cells.keys})


def _key(cells: Cells, assign: dict[str, str], other: tuple[str, ...], fixed: Sequence[str]) -> tuple[str, ...]:
    it = iter(other)
    return tuple(assign[f] if f in fixed else next(it) for f in cells.factors)


def contrast_weights(cells: Cells, terms: dict[tuple[str, ...], float], fixed: Sequence[str]) -> tuple[np.ndarray, int]:
    """Weights over cells for Σ_terms sign · cell(assign, o), averaged over the other-factor combos o where every
    term's cell exists. `terms` maps a level tuple for `fixed` to its sign. Returns (w [C], number of combos)."""
    idx = cells.index
    w = np.zeros(len(cells.keys))
    used = 0
    for other in _others(cells, fixed):
        ks = [_key(cells, dict(zip(fixed, levels)), other, fixed) for levels in terms]
        if all(k in idx for k in ks):
            used += 1
            for k, sign in zip(ks, terms.values()):
                w[idx[k]] += sign
    return (w / used if used else w), used


def effect_specs(cells: Cells, levels: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Every main-effect contrast (level vs first level) and every two-way interaction contrast."""
    specs = []
    factors = [f for f in cells.factors if len(levels[f]) > 1]
    for f in factors:
        base = levels[f][0]
        for lv in levels[f][1:]:
            w, k = contrast_weights(cells, {(lv,): 1.0, (base,): -1.0}, [f])
            specs.append(dict(kind="main", factor=f, level=lv, vs=base, factor2="", level2="", vs2="", w=w, k=k))
    for fa, fb in itertools.combinations(factors, 2):
        a0, b0 = levels[fa][0], levels[fb][0]
        for a, b in itertools.product(levels[fa][1:], levels[fb][1:]):
            terms = {(a, b): 1.0, (a0, b): -1.0, (a, b0): -1.0, (a0, b0): 1.0}
            w, k = contrast_weights(cells, terms, [fa, fb])
            specs.append(dict(kind="interaction", factor=fa, level=a, vs=a0, factor2=fb, level2=b, vs2=b0, w=w, k=k))
    return specs


def factor_effects(df: pd.DataFrame, factors: list[str], levels: dict[str, list[str]], *, metric: str,
                   seed: int = 0, n_resamples: int = 10_000, level: float = 0.95
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(effects, marginal means) of one metric from long `df` (factor columns + value). See the module docstring.

    CIs: percentile intervals of the seed-level bootstrap, expanded with r and df from the contrast's variance.
    p: two-sided t-test of the contrast against the pooled within-cell variance (df = N − C); Holm per family
    (main effects; interactions) within the metric. hedges_g = estimate / pooled SD × J(df).
    """
    cells = Cells.from_frame(df, factors)
    if not cells.keys:
        return pd.DataFrame(columns=EFFECT_COLUMNS), pd.DataFrame(columns=MARGINAL_COLUMNS)
    boot = cells.bootstrap_means(derive_rng(seed, "effects", metric), n_resamples)
    sigma2, dof = cells.pooled_variance()
    effects = _effect_rows(cells, effect_specs(cells, levels), boot, sigma2, dof, metric, level)
    margins = _marginal_rows(cells, levels, boot, metric, level)
    return effects, margins


def _variance_terms(cells: Cells, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unbiased, plug-in) variance of each contrast column of W from the per-cell sample variances."""
    s2 = np.array([np.var(v, ddof=1) if len(v) > 1 else 0.0 for v in cells.values])
    n = cells.n
    return (W ** 2).T @ (s2 / n), (W ** 2).T @ (s2 * (n - 1) / n ** 2)


def _expansion(cells: Cells, W: np.ndarray, dof: float) -> tuple[np.ndarray, np.ndarray]:
    unbiased, plug = _variance_terms(cells, W)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(plug > 0, np.sqrt(unbiased / np.where(plug > 0, plug, 1)), 1.0)
    return r, np.full(W.shape[1], dof)


def _effect_rows(cells: Cells, specs: list[dict[str, Any]], boot: np.ndarray, sigma2: float, dof: float,
                 metric: str, level: float) -> pd.DataFrame:
    if not specs:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    W = np.stack([s["w"] for s in specs], axis=1)  # [C, E]
    est = cells.means @ W
    # a contrast of identical cells (aliased configs) is 0 up to the dot product's rounding, which depends on the
    # BLAS kernel the CPU gets: within that bound it is 0 on every machine
    est = np.where(np.abs(est) <= 64 * np.finfo(float).eps * (np.abs(cells.means) @ np.abs(W)), 0.0, est)
    low, high = percentile_ci(boot @ W, level, _expansion(cells, W, dof))
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(sigma2 * ((W ** 2).T @ (1 / cells.n)))
        t = est / se
        p = np.where(np.isfinite(t), 2 * sps.t.sf(np.abs(t), dof), np.where(est == 0, 1.0, 0.0)) if dof > 0 \
            else np.full_like(est, np.nan)
        g = est / np.sqrt(sigma2) * small_sample_factor(dof) if dof > 2 and sigma2 > 0 else np.full_like(est, np.nan)
    out = pd.DataFrame([{k: v for k, v in s.items() if k not in ("w", "k")} for s in specs])
    out.insert(0, "metric", metric)
    out["n_cells"] = [s["k"] for s in specs]
    empty = out["n_cells"].to_numpy() == 0
    out["estimate"] = np.where(empty, np.nan, est)
    out["ci_low"], out["ci_high"] = np.where(empty, np.nan, low), np.where(empty, np.nan, high)
    out["ci_level"], out["ci_method"] = level, "percentile-expanded"
    out["se"], out["df"], out["t"] = se, dof, t
    out["p"] = np.where(empty, np.nan, p)
    out["p_holm"] = np.nan
    for kind in ("main", "interaction"):
        sel = (out["kind"] == kind).to_numpy()
        out.loc[sel, "p_holm"] = holm(out.loc[sel, "p"].to_numpy(float))
    out["hedges_g"] = np.where(empty, np.nan, g)
    return out[EFFECT_COLUMNS]


def _marginal_rows(cells: Cells, levels: dict[str, list[str]], boot: np.ndarray, metric: str,
                   level: float) -> pd.DataFrame:
    specs = []
    factors = [f for f in cells.factors if len(levels[f]) > 1]
    for f in factors:
        for lv in levels[f]:
            w, k = contrast_weights(cells, {(lv,): 1.0}, [f])
            specs.append(dict(factor=f, level=lv, factor2="", level2="", w=w, k=k))
    for fa, fb in itertools.combinations(factors, 2):
        for a, b in itertools.product(levels[fa], levels[fb]):
            w, k = contrast_weights(cells, {(a, b): 1.0}, [fa, fb])
            specs.append(dict(factor=fa, level=a, factor2=fb, level2=b, w=w, k=k))
    specs = [s for s in specs if s["k"] > 0]
    if not specs:
        return pd.DataFrame(columns=MARGINAL_COLUMNS)
    W = np.stack([s["w"] for s in specs], axis=1)
    _, dof = cells.pooled_variance()
    low, high = percentile_ci(boot @ W, level, _expansion(cells, W, dof))
    out = pd.DataFrame([{k: v for k, v in s.items() if k not in ("w", "k")} for s in specs])
    out.insert(0, "metric", metric)
    out["n_cells"] = [s["k"] for s in specs]
    out["mean"] = cells.means @ W
    out["ci_low"], out["ci_high"], out["ci_level"], out["ci_method"] = low, high, level, "percentile-expanded"
    return out[MARGINAL_COLUMNS]


def anova(df: pd.DataFrame, factors: list[str], *, metric: str) -> pd.DataFrame:
    """Type II ANOVA of value ~ all main effects + all two-way interactions (statsmodels), with partial η².

    Returns an empty table when the model cannot be fitted (one level only, no residual df, or a rank-deficient
    design from excluded cells).
    """
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    used = [f for f in factors if df[f].nunique() > 1]
    data = df[used + ["value"]].dropna()
    if not used or len(data) <= 1 or np.ptp(data["value"].to_numpy(float)) == 0:
        return pd.DataFrame(columns=ANOVA_COLUMNS)
    names = {f"f{i}": f for i, f in enumerate(used)}
    data = data.rename(columns={f: k for k, f in names.items()}).astype({k: str for k in names})
    mains = " + ".join(f"C({k})" for k in names)
    formula = f"value ~ ({mains})" + ("**2" if len(names) > 1 else "")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            model = smf.ols(formula, data=data).fit()
            if model.df_resid <= 0 or model.model.exog.shape[1] > np.linalg.matrix_rank(model.model.exog):
                return pd.DataFrame(columns=ANOVA_COLUMNS)
            table = anova_lm(model, typ=2)
    except (ValueError, np.linalg.LinAlgError):
        return pd.DataFrame(columns=ANOVA_COLUMNS)
    resid = float(table.loc["Residual", "sum_sq"])
    rows = []
    for term, row in table.iterrows():
        label = str(term)
        for k, f in names.items():
            label = label.replace(f"C({k})", f)
        ss = float(row["sum_sq"])
        with np.errstate(all="ignore"):
            eta = ss / (ss + resid) if term != "Residual" and ss + resid > 0 else np.nan
        rows.append(dict(metric=metric, term=label, df=float(row["df"]), sum_sq=ss,
                         F=float(row["F"]) if pd.notna(row["F"]) else np.nan,
                         p=float(row["PR(>F)"]) if pd.notna(row["PR(>F)"]) else np.nan,
                         partial_eta_sq=eta, anova_type=2))
    return pd.DataFrame(rows, columns=ANOVA_COLUMNS)


# ---------------------------------------------------------------------------------------------------- sentences
LEVEL_NAMES: dict[str, dict[str, str]] = {
    "returns": {"full": "full returns", "rtg": "reward-to-go"},
    "baseline": {"none": "no baseline", "mean": "the batch-mean baseline", "loo": "the leave-one-out baseline",
                 "value": "a learned value baseline"},
    "normalize": {"none": "no normalization", "returns": "return normalization",
                  "advantages": "advantage normalization"},
}
METRIC_NAMES = {"final_return": "final return", "auc": "the area under the learning curve",
                "steps_to_threshold": "the env steps to reach the threshold", "eval_return": "evaluation return"}


def level_name(factor: str, level: str) -> str:
    if factor in LEVEL_NAMES and level in LEVEL_NAMES[factor]:
        return LEVEL_NAMES[factor][level]
    if factor == "entropy_coef":
        return "no entropy bonus" if float(level) == 0 else f"an entropy bonus of β = {level}"
    return f"{factor} = {level}"


def format_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def fmt(x: float, digits: int = 3) -> str:
    """A number with `digits` significant figures (at least one decimal for |x| < 1000)."""
    if x is None or not np.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    mag = int(np.floor(np.log10(abs(x))))
    decimals = max(1 if abs(x) < 1000 else 0, min(6, digits - 1 - mag))
    return f"{x:,.{decimals}f}"


def effect_sentence(row: pd.Series) -> str:
    """One sentence from a row of `factor_effects` (main or interaction)."""
    metric = METRIC_NAMES.get(row["metric"], row["metric"])
    verb = "raises" if row["estimate"] > 0 else "lowers"
    low, high = (row["ci_low"], row["ci_high"]) if row["estimate"] > 0 else (-row["ci_high"], -row["ci_low"])
    nums = (f"{fmt(abs(row['estimate']))} [{fmt(low)}, {fmt(high)}] "
            f"(p_holm {format_p(row['p_holm'])}, g = {fmt(row['hedges_g'], 2)})")
    if row["kind"] == "main":
        subject = f"Using {level_name(row['factor'], row['level'])} instead of {level_name(row['factor'], row['vs'])}"
        return f"{subject} {verb} {metric} by {nums}."
    return (f"The effect of {level_name(row['factor'], row['level'])} (vs {level_name(row['factor'], row['vs'])}) "
            f"on {metric} changes by {fmt(row['estimate'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}] "
            f"(p_holm {format_p(row['p_holm'])}) when {level_name(row['factor2'], row['level2'])} replaces "
            f"{level_name(row['factor2'], row['vs2'])}.")


def significant(effects: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Rows with p_holm < alpha whose CI excludes 0."""
    excl = (effects["ci_low"] > 0) | (effects["ci_high"] < 0)
    return effects[(effects["p_holm"] < alpha) & excl]
