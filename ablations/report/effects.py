"""Factor effects on per-seed scores under the seed-blocked design: every contrast of the full factorial, simple
effects, marginal means, and a factorial ANOVA with seed as a block.

Seed s of every config shares its random streams (common random numbers), so the design is blocked by seed and the
unit of resampling is the seed, not the run. Owns:

- contrasts as weight vectors over cells (a cell = one config): main effects, and interactions of every order (two-way
  up to all factors) as differences of differences against each factor's first level;
- their standard errors from the seed-cluster (paired) model: with Y[s, c] the score of seed s in cell c, a contrast
  θ = Σ_c w_c ȳ_c has influence ψ_s = Σ_c w_c (Y[s,c] − ȳ_c)·S/n_c per seed, and var θ̂ = Σ_s ψ_s² / (S(S − 1)). In a
  complete design this is exactly the one-sample t-test of the per-seed contrasts d_s = Σ_c w_c Y[s, c] (what
  `scipy.stats.ttest_1samp` gives); with missing runs it is the seed-clustered sandwich of the cell-means OLS
  (statsmodels' `cov_type="cluster"` up to its (N − 1)/(N − K) factor). Hand-written because statsmodels computes it
  per fitted model, one matrix solve per metric, and we need the influence rows for the bootstrap too;
- the CI and the p-value of each contrast from that same model: t-interval and t-test with S − 1 df (so p < α ⇔ the
  CI excludes 0), Holm per family (main effects; interactions; simple effects) within a metric, and the minimum
  detectable difference at the family-wise α (`mdd`);
- simple effects: a factor's effect at each level of a factor it interacts with (averaged over the rest);
- marginal means with a seed-block bootstrap (seed indices resampled jointly across cells);
- the ANOVA table (statsmodels `ols` + `anova_lm`, Type II, seed as a block plus every interaction of the factors).

A main effect of factor F at level l is the mean over the other factors' level combinations o of
(cell mean at F=l, o) − (cell mean at F=l₀, o), with l₀ the first level, using only the o where both cells exist.
An interaction of factors T (levels t vs t₀ each) is the mean over o of Σ_{ε ⊆ T} (−1)^{|T|−|ε|} cell(ε, o), the
cell taking level t for the factors in ε and t₀ for the others: for two factors the difference of differences
[(a,b) − (a₀,b)] − [(a,b₀) − (a₀,b₀)].
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from ablations.report.bootstrap import derive_rng, percentile_ci
from ablations.report.comparisons import holm, small_sample_factor
from ablations.report.rules import ALPHA, POWER

EFFECT_COLUMNS = ["metric", "kind", "order", "term", "contrast", "factor", "level", "vs", "factor2", "level2", "vs2",
                  "n_cells", "n_seeds", "estimate", "ci_low", "ci_high", "ci_level", "ci_method", "se", "df", "t", "p",
                  "p_holm", "mdd", "hedges_g"]
SIMPLE_COLUMNS = ["metric", "factor", "level", "vs", "by", "by_level", "n_cells", "n_seeds", "estimate", "ci_low",
                  "ci_high", "ci_level", "ci_method", "se", "df", "t", "p", "p_holm", "mdd"]
MARGINAL_COLUMNS = ["metric", "factor", "level", "factor2", "level2", "n_cells", "mean", "ci_low", "ci_high",
                    "ci_level", "ci_method"]
ANOVA_COLUMNS = ["metric", "term", "df", "sum_sq", "F", "p", "partial_eta_sq", "anova_type"]


@dataclass
class Cells:
    """Per-seed values: `Y[s, c]` is seed `seeds[s]`'s score in cell `keys[c]` (NaN where that run is missing)."""

    factors: list[str]
    keys: list[tuple[str, ...]]
    seeds: list[Any]
    Y: np.ndarray  # [S, C]

    @classmethod
    def from_frame(cls, df: pd.DataFrame, factors: list[str], value: str = "value", seed: str = "seed") -> "Cells":
        """Cells from long `df` (factor columns, `seed`, `value`); without a seed column every run is its own block."""
        d = df.dropna(subset=[value]).copy()
        if seed not in d.columns:
            d[seed] = np.arange(len(d))
        for f in factors:
            d[f] = d[f].astype(str)
        wide = d.pivot_table(index=seed, columns=list(factors), values=value, aggfunc="mean", sort=True)
        keys = [tuple(map(str, k if isinstance(k, tuple) else (k,))) for k in wide.columns]
        return cls(list(factors), keys, list(wide.index), wide.to_numpy(float))

    @property
    def index(self) -> dict[tuple[str, ...], int]:
        return {k: i for i, k in enumerate(self.keys)}

    @property
    def n(self) -> np.ndarray:
        return (~np.isnan(self.Y)).sum(axis=0).astype(float)

    @property
    def means(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.nanmean(self.Y, axis=0) if self.Y.size else np.zeros(0)

    @property
    def values(self) -> list[np.ndarray]:
        return [col[~np.isnan(col)] for col in self.Y.T]

    def pooled_variance(self) -> tuple[float, float]:
        """(σ², df): the within-cell variance pooled over cells, with df = N − C (descriptive: Hedges' g)."""
        vals = self.values
        df = float(sum(len(v) - 1 for v in vals))
        ss = float(sum(((v - v.mean()) ** 2).sum() for v in vals))
        return (ss / df if df > 0 else np.nan), df

    def influence(self, W: np.ndarray) -> np.ndarray:
        """[S, K] per-seed influence ψ_s of each contrast column of W (see the module docstring)."""
        S = len(self.seeds)
        present = ~np.isnan(self.Y)
        centred = np.where(present, self.Y - self.means[None, :], 0.0) * (S / np.maximum(self.n, 1))[None, :]
        return centred @ W

    def contrasts(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(estimate [K], se [K], n_seeds [K]) of each contrast column of W under the seed-cluster model."""
        used = (np.abs(W) > 0).T @ (~np.isnan(self.Y)).T.astype(float) > 0  # [K, S]: seed has a used cell
        n_seeds = used.sum(axis=1)
        est = self.means @ W
        # a contrast of identical cells (aliased configs) is 0 up to the dot product's rounding, which depends on
        # the BLAS kernel the CPU gets: within that bound it is 0 on every machine
        est = np.where(np.abs(est) <= 64 * np.finfo(float).eps * (np.abs(self.means) @ np.abs(W)), 0.0, est)
        psi = self.influence(W)
        S = len(self.seeds)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (psi ** 2).sum(axis=0) / (S * (S - 1)) if S > 1 else np.full(W.shape[1], np.nan)
        se = np.sqrt(var)
        se = np.where(se <= 1e-12 * np.maximum(np.abs(self.means) @ np.abs(W), 1e-300), 0.0, se)
        return est, se, n_seeds

    def bootstrap_means(self, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
        """[B, C] cell means with the seed indices resampled with replacement, jointly for every cell (blocks)."""
        S = len(self.seeds)
        idx = rng.integers(0, S, size=(n_resamples, S))
        counts = np.zeros((n_resamples, S))
        np.add.at(counts, (np.repeat(np.arange(n_resamples), S), idx.ravel()), 1.0)
        present = ~np.isnan(self.Y)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (counts @ np.where(present, self.Y, 0.0)) / (counts @ present)


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


def _label(parts: Sequence[tuple[str, str, str]]) -> str:
    return " × ".join(f"{f}={a} vs {b}" for f, a, b in parts)


def effect_specs(cells: Cells, levels: dict[str, list[str]], max_order: int | None = None) -> list[dict[str, Any]]:
    """Every main-effect contrast (level vs first level) and every interaction contrast of order 2 … max_order
    (default: all factors), as dicts with kind, order, term, contrast, factor/level/vs (first two factors), w, k."""
    specs = []
    factors = [f for f in cells.factors if len(levels[f]) > 1]
    top = len(factors) if max_order is None else min(max_order, len(factors))
    for order in range(1, top + 1):
        for subset in itertools.combinations(factors, order):
            bases = [levels[f][0] for f in subset]
            for chosen in itertools.product(*(levels[f][1:] for f in subset)):
                terms = {}
                for eps in itertools.product((1, 0), repeat=order):
                    key = tuple(c if e else b for c, b, e in zip(chosen, bases, eps))
                    terms[key] = float((-1) ** (order - sum(eps)))
                w, k = contrast_weights(cells, terms, list(subset))
                parts = list(zip(subset, chosen, bases))
                first = parts[0]
                second = parts[1] if order > 1 else ("", "", "")
                specs.append(dict(kind="main" if order == 1 else "interaction", order=order, term=" × ".join(subset),
                                  contrast=_label(parts), factor=first[0], level=first[1], vs=first[2],
                                  factor2=second[0], level2=second[1], vs2=second[2], w=w, k=k))
    return specs


def mdd(se: np.ndarray, n_seeds: np.ndarray, alpha: float, power: float = POWER) -> np.ndarray:
    """Minimum detectable difference of a paired (one-sample) t-test: d(n, α, power)·SD with SD = se·√n, d from
    `statsmodels.stats.power.TTestPower` (two-sided)."""
    from statsmodels.stats.power import TTestPower

    out = np.full(len(se), np.nan)
    cache: dict[int, float] = {}
    for i, (s, n) in enumerate(zip(se, n_seeds)):
        n = int(n)
        if n >= 3 and np.isfinite(s) and s > 0 and alpha > 0:
            if n not in cache:
                cache[n] = float(TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power))
            out[i] = cache[n] * s * np.sqrt(n)
    return out


def _test_frame(est: np.ndarray, se: np.ndarray, n_seeds: np.ndarray, level: float) -> dict[str, np.ndarray]:
    """t, p, CI of each contrast from (estimate, se) with n_seeds − 1 df; no test where se = 0 (constant data)."""
    dof = np.maximum(n_seeds - 1, 0).astype(float)
    ok = (se > 0) & np.isfinite(se) & (dof > 0) & np.isfinite(est)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(ok, est / np.where(ok, se, 1.0), np.nan)
        q = sps.t.ppf(0.5 + level / 2, np.where(dof > 0, dof, 1.0))
        p = np.where(ok, 2 * sps.t.sf(np.abs(t), np.where(dof > 0, dof, 1.0)), np.nan)
    zero = (se == 0) & np.isfinite(est)  # no variation: the interval is the point, and there is nothing to test
    low = np.where(ok, est - q * se, np.where(zero, est, np.nan))
    high = np.where(ok, est + q * se, np.where(zero, est, np.nan))
    return dict(t=t, p=p, ci_low=low, ci_high=high, df=dof)


def _rows(cells: Cells, specs: list[dict[str, Any]], metric: str, level: float, columns: list[str],
          families: Sequence[str] | None = None, alpha: float = ALPHA) -> pd.DataFrame:
    if not specs:
        return pd.DataFrame(columns=columns)
    W = np.stack([s["w"] for s in specs], axis=1)  # [C, E]
    est, se, n_seeds = cells.contrasts(W)
    test = _test_frame(est, se, n_seeds, level)
    sigma2, dof = cells.pooled_variance()
    out = pd.DataFrame([{k: v for k, v in s.items() if k not in ("w", "k")} for s in specs])
    out.insert(0, "metric", metric)
    out["n_cells"] = [s["k"] for s in specs]
    out["n_seeds"] = n_seeds
    empty = out["n_cells"].to_numpy() == 0
    nan = lambda x: np.where(empty, np.nan, x)
    out["estimate"] = nan(est)
    out["ci_low"], out["ci_high"] = nan(test["ci_low"]), nan(test["ci_high"])
    out["ci_level"], out["ci_method"] = level, np.where(np.isfinite(test["p"]), "seed-paired t",
                                                        np.where(se == 0, "constant", "none"))
    out["se"], out["df"], out["t"], out["p"] = nan(se), test["df"], nan(test["t"]), nan(test["p"])
    out["p_holm"] = np.nan
    out["mdd"] = np.nan
    fam = out[families[0]] if families else pd.Series("all", index=out.index)
    for name in pd.unique(fam):
        sel = (fam == name).to_numpy()
        out.loc[sel, "p_holm"] = holm(out.loc[sel, "p"].to_numpy(float))
        m = int(np.isfinite(out.loc[sel, "p"].to_numpy(float)).sum())
        out.loc[sel, "mdd"] = mdd(se[sel], n_seeds[sel], alpha / max(m, 1))
    if "hedges_g" in columns:
        with np.errstate(invalid="ignore", divide="ignore"):
            g = est / np.sqrt(sigma2) * small_sample_factor(dof) if dof > 2 and sigma2 > 0 else \
                np.full_like(est, np.nan)
        out["hedges_g"] = nan(g)
    return out[columns]


def factor_effects(df: pd.DataFrame, factors: list[str], levels: dict[str, list[str]], *, metric: str,
                   seed: int = 0, n_resamples: int = 10_000, level: float = 0.95, alpha: float = ALPHA
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(effects, marginal means) of one metric from long `df` (factor columns, seed, value). See the module docstring.

    Effects: every main effect and every interaction, with seed-paired t CIs and p-values (S − 1 df), Holm per
    family (main; interaction) and `mdd` at the family-wise α. hedges_g = estimate / pooled within-cell SD × J.
    Marginal means: seed-block bootstrap, expanded percentile intervals.
    """
    cells = Cells.from_frame(df, factors)
    if not cells.keys:
        return pd.DataFrame(columns=EFFECT_COLUMNS), pd.DataFrame(columns=MARGINAL_COLUMNS)
    effects = _rows(cells, effect_specs(cells, levels), metric, level, EFFECT_COLUMNS, ["kind"], alpha)
    boot = cells.bootstrap_means(derive_rng(seed, "effects", metric), n_resamples)
    margins = _marginal_rows(cells, levels, boot, metric, level)
    return effects, margins


def simple_effects(df: pd.DataFrame, factors: list[str], levels: dict[str, list[str]], pairs: Sequence[tuple[str, str]],
                   *, metric: str, level: float = 0.95, alpha: float = ALPHA) -> pd.DataFrame:
    """The effect of `factor` (each level vs its first) at each level of `by`, for each (factor, by) in `pairs`,
    averaged over the remaining factors; same model as `factor_effects`, one Holm family per metric."""
    cells = Cells.from_frame(df, factors)
    specs = []
    for f, by in pairs:
        for lv in levels[f][1:]:
            for bl in levels[by]:
                w, k = contrast_weights(cells, {(lv, bl): 1.0, (levels[f][0], bl): -1.0}, [f, by])
                specs.append(dict(factor=f, level=lv, vs=levels[f][0], by=by, by_level=bl, w=w, k=k))
    if not cells.keys or not specs:
        return pd.DataFrame(columns=SIMPLE_COLUMNS)
    return _rows(cells, specs, metric, level, SIMPLE_COLUMNS, None, alpha)


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
    S = len(cells.seeds)
    r, dof = (np.sqrt(S / (S - 1)), S - 1.0) if S > 1 else (1.0, 0.0)
    low, high = percentile_ci(boot @ W, level, (np.full(W.shape[1], r), np.full(W.shape[1], dof)))
    out = pd.DataFrame([{k: v for k, v in s.items() if k not in ("w", "k")} for s in specs])
    out.insert(0, "metric", metric)
    out["n_cells"] = [s["k"] for s in specs]
    out["mean"] = cells.means @ W
    method = "seed-block percentile-expanded"
    out["ci_low"], out["ci_high"], out["ci_level"], out["ci_method"] = low, high, level, method
    return out[MARGINAL_COLUMNS]


def anova(df: pd.DataFrame, factors: list[str], *, metric: str) -> pd.DataFrame:
    """Type II ANOVA of value ~ seed (block) + every main effect and interaction of the factors (statsmodels), with
    partial η². Without a seed column, no block term.

    Returns an empty table when the model cannot be fitted (one level only, no residual df, or a rank-deficient
    design from excluded cells).
    """
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    used = [f for f in factors if df[f].nunique() > 1]
    block = "seed" in df.columns and df["seed"].nunique() > 1
    data = df[used + (["seed"] if block else []) + ["value"]].dropna()
    if not used or len(data) <= 1 or np.ptp(data["value"].to_numpy(float)) == 0:
        return pd.DataFrame(columns=ANOVA_COLUMNS)
    names = {f"f{i}": f for i, f in enumerate(used)}
    data = data.rename(columns={f: k for k, f in names.items()}).astype({k: str for k in names})
    formula = "value ~ " + ("C(seed) + " if block else "") + " * ".join(f"C({k})" for k in names)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if block:
                data["seed"] = data["seed"].astype(str)
            model = smf.ols(formula, data=data).fit()
            if model.df_resid <= 0 or model.model.exog.shape[1] > np.linalg.matrix_rank(model.model.exog):
                return pd.DataFrame(columns=ANOVA_COLUMNS)
            table = anova_lm(model, typ=2)
    except (ValueError, np.linalg.LinAlgError):
        return pd.DataFrame(columns=ANOVA_COLUMNS)
    resid = float(table.loc["Residual", "sum_sq"])
    rows = []
    for term, row in table.iterrows():
        label = str(term).replace("C(seed)", "seed (block)")
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
def significant(effects: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Rows with p_holm < alpha whose CI excludes 0."""
    excl = (effects["ci_low"] > 0) | (effects["ci_high"] < 0)
    return effects[(effects["p_holm"] < alpha) & excl]


# ---------------------------------------------------------------------------------------------------- verdicts
def interacting_pairs(effects: pd.DataFrame, alpha: float = ALPHA) -> list[tuple[str, str]]:
    """(F, G) for every two-way interaction F × G with a significant contrast, in both directions."""
    inter = significant(effects[(effects["kind"] == "interaction") & (effects["order"] == 2)], alpha)
    pairs = []
    for _, r in inter.iterrows():
        for p in ((r["factor"], r["factor2"]), (r["factor2"], r["factor"])):
            if p not in pairs:
                pairs.append(p)
    return pairs
