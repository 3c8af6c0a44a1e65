"""Per-env claims under each env's own correction, "holds on all envs" only with per-env significance (or
equivalence), and the heterogeneity of every aggregate effect.

Input `by_env`: one row per (term, env) — `pooled.BY_ENV_COLUMNS` (term, kind, env_id, estimate, ci_low, ci_high,
se, p, n_seeds), optionally with `contrast` (needed when a factor has several non-reference levels: the rows of one
term are then told apart by it; without it `contrast` = `term`), `p_holm` (the env report's own Holm-adjusted p, over
its full family) and
`p_tost_holm`. Without `p_holm`, Holm is applied within each (env_id, kind) family of the rows given — the same
families as an env's own report (main effects; interactions) when `by_env` holds all of that env's terms; pass the env
report's `p_holm` when it holds a subset (as `pooled.across_envs` keeps interactions up to order 2 only).

Per env, each term is classed by `equivalence.classify` (helps / hurts on p_holm < α with the CI off 0; equivalent on
the TOST, df = n_seeds − 1, Holm within the same family; else undecided). Per term:

- "helps on all E envs" / "hurts on all E envs" only when every env is significant in that direction;
  "equivalent within ±m on all E envs" only when every env is equivalent; otherwise the claim lists where it helps,
  hurts, is equivalent and is undecided ("holds on k of E" is never said of a term that is not significant there);
- Cochran's Q and I² of the per-env estimates (`cochran_q`), and a sentence: heterogeneous when Q's p < α,
  else "no heterogeneity detected", said together with the number of envs (a large p with few envs is not evidence
  of homogeneity).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from scipy import stats as sps

from ablations.report.rules import ALPHA
from ablations.report.text import format_p
from ablations.report.equivalence import CLASSES, classify, tost
from ablations.report.comparisons import holm

LABEL_COLUMNS = ["term", "contrast", "kind", "env_id", "estimate", "ci_low", "ci_high", "se", "p", "n_seeds", "p_holm",
                 "margin", "ci90_low", "ci90_high", "p_tost", "p_tost_holm", "verdict"]
CLAIM_COLUMNS = ["term", "contrast", "kind", "n_envs", "helps", "hurts", "equivalent", "undecided", "holds_on_all",
                 "claim", "cochran_q", "q_df", "q_p", "i_squared", "heterogeneity"]


def cochran_q(estimate: np.ndarray, se: np.ndarray) -> tuple[float, int, float, float]:
    """(Q, df, p, I²) of per-env estimates with standard errors (fixed-effect weights 1/SE²; Q = Σ_e w_e (θ_e − θ̄)²,
    θ̄ = Σ w_e θ_e / Σ w_e, χ² with E − 1 df; I² = max(0, (Q − df)/Q)); NaN if any SE is 0 or missing, or fewer than
    two envs. The per-env estimates come from different runs, so they are independent given the design."""
    est, se = np.asarray(estimate, float), np.asarray(se, float)
    ok = np.isfinite(est) & np.isfinite(se)
    est, se = est[ok], se[ok]
    df = len(est) - 1
    if df < 1 or np.any(se <= 0):
        return np.nan, max(df, 0), np.nan, np.nan
    w = 1 / se ** 2
    pooled = (w * est).sum() / w.sum()
    q = float((w * (est - pooled) ** 2).sum())
    return q, df, float(sps.chi2.sf(q, df)), float(max(0.0, (q - df) / q)) if q > 0 else 0.0


def _margins(envs: pd.Series, margin: float | Mapping[str, float]) -> np.ndarray:
    if isinstance(margin, Mapping):
        return np.array([float(margin.get(e, np.nan)) for e in envs], float)
    return np.full(len(envs), float(margin))


def env_labels(by_env: pd.DataFrame, *, margin: float | Mapping[str, float], alpha: float = ALPHA,
               higher_is_better: bool = True) -> pd.DataFrame:
    """Each (term, env) row of `by_env` classed under its env's own Holm family (`LABEL_COLUMNS`). `margin`: one
    value (e.g. on normalized scores) or one per env_id (NaN where missing: no equivalence there)."""
    out = by_env.copy().reset_index(drop=True)
    if "contrast" not in out.columns:
        out["contrast"] = out["term"]
    out["margin"] = _margins(out["env_id"], margin)
    eq = tost(out["estimate"], out["se"], out["n_seeds"].astype(float) - 1, out["margin"], alpha)
    out["ci90_low"], out["ci90_high"], out["p_tost"] = eq["ci90_low"], eq["ci90_high"], eq["p_tost"]
    fams = out.groupby(["env_id", "kind"], sort=False).indices
    for col, src in (("p_holm", "p"), ("p_tost_holm", "p_tost")):
        if col in by_env.columns:
            continue
        out[col] = np.nan
        for idx in fams.values():
            out.loc[idx, col] = holm(out.loc[idx, src].to_numpy(float))
    out["verdict"] = classify(out["estimate"], out["ci_low"], out["ci_high"], out["p_holm"], out["p_tost_holm"],
                              alpha, higher_is_better)
    return out[LABEL_COLUMNS]


def env_claims(labels: pd.DataFrame, envs: Sequence[str] | None = None, *, alpha: float = ALPHA,
               margin_text: str = "the margin") -> pd.DataFrame:
    """One row per term of `labels` (`env_labels`): counts per class, `holds_on_all` ("helps" / "hurts" /
    "equivalent" when every env of `envs` (default: all in `labels`) agrees, else ""), the claim sentence, and the
    heterogeneity of the per-env estimates (Cochran's Q, its df and p, I², and a sentence). `CLAIM_COLUMNS`."""
    envs = list(pd.unique(labels["env_id"])) if envs is None else list(envs)
    rows = []
    for (term, contrast, kind), g in labels.groupby(["term", "contrast", "kind"], sort=False):
        g = g.set_index("env_id").reindex(envs)
        cls = g["verdict"].fillna("undecided")  # an env without the term decides nothing
        counts = {c: int((cls == c).sum()) for c in CLASSES}
        n = len(envs)
        holds = next((c for c in ("helps", "hurts", "equivalent") if counts[c] == n), "")
        if counts["undecided"] == n:
            claim = f"undecided on all {n} envs"
        elif holds == "equivalent":
            claim = f"equivalent within {margin_text} on all {n} envs"
        elif holds:
            claim = f"{holds} on all {n} envs (each significant under its env's Holm)"
        else:
            parts = [f"{c} on {', '.join(cls.index[cls == c])}" for c in CLASSES if counts[c]]
            claim = "not the same on every env: " + "; ".join(parts)
        q, qdf, qp, i2 = cochran_q(g["estimate"].to_numpy(float), g["se"].to_numpy(float))
        rows.append(dict(term=term, contrast=contrast, kind=kind, n_envs=n, **counts, holds_on_all=holds, claim=claim,
                         cochran_q=q, q_df=qdf, q_p=qp, i_squared=i2,
                         heterogeneity=heterogeneity_sentence(q, qdf, qp, i2, alpha)))
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def heterogeneity_sentence(q: float, df: int, p: float, i2: float, alpha: float = ALPHA) -> str:
    """"its size differs across envs (Q = 12.1, df = 3, p = 0.007, I² = 0.75)" when p < α; else "no heterogeneity
    detected (…; with 4 envs this is not evidence that the effect is the same on every env)"; "" without a Q."""
    if not np.isfinite(q):
        return ""
    nums = f"Cochran's Q = {q:.3g}, df = {df}, p {format_p(p)}, I² = {i2:.2f}"
    if p < alpha:
        return f"its size differs across envs ({nums})"
    return (f"no heterogeneity detected ({nums}); with {df + 1} envs this is not evidence that the effect is the "
            "same on every env")
