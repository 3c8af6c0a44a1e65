"""Context-wise effects: a factor level's effect against its reference within every combination of the other factors'
levels (cell-level simple effects), each one seed-paired, tested, TOST-ed and classed; and the summary per level,
"helps in a of k contexts, hurts in b, equivalent within ±m in c, undecided in d".

Input (`context_effects`): long `df`, one row per run: a column per factor (levels as strings or anything `str()`
turns into one), `seed`, and the metric in column `value`. `levels[f]` lists factor f's levels with the reference
first (as everywhere in `effects`).

A context of factor F is one combination o of the levels of the factors in `within` (default: every other factor).
For F = l vs the reference l₀ in context o, the per-seed difference is d_s = mean over the remaining factors' level
combinations r of Y(l, o, r) − Y(l₀, o, r), for the seeds that have every one of those cells (with `within` = every
other factor, r is empty and d_s is the plain cell difference over the seeds both cells share). The estimate, its
t-interval and p come from the paired t-test on d (`stats.paired_test`, the comparisons' own machinery); the TOST
from `equivalence.tost_paired`; the MDD at 80% power from `stats.paired_mdd` at the family-wise α (α/m, m the
number of tested contexts of the family).

Families: one Holm family per (metric, factor) — every non-reference level of the factor in every context — for
the difference tests (`p_holm`) and, separately, the same family for the TOSTs (`p_tost_holm`). A context whose two
cells are aliases (identical per-seed scores: the same comparison as another context) is tested once: its p enters
the family once (`families.holm_once`), and `same_as` names the first context of the family it repeats ("" if
none), as "factor=level in context". Contexts whose differences are all 0 (up to rounding: the two cells are aliases
of each other)
are classed equivalent with `ci_method` = "identical" and enter no family.
"""

from __future__ import annotations

import itertools
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ablations.report.rules import ALPHA, POWER
from ablations.report.equivalence import CLASSES, classify, tost_paired
from ablations.report.families import holm_once
from ablations.report.comparisons import paired_test
from ablations.report.power import paired_mdd

CONTEXT_COLUMNS = ["metric", "factor", "level", "vs", "within", "context", "same_as", "n_pairs", "estimate", "ci_low",
                   "ci_high", "ci_level", "ci_method", "p", "p_holm", "sd_diff", "mdd", "margin", "ci90_low",
                   "ci90_high", "p_tost", "p_tost_holm", "within_margin", "verdict"]
SUMMARY_COLUMNS = ["metric", "factor", "level", "vs", "within", "k", "helps", "hurts", "equivalent", "undecided",
                   "margin", "sentence"]


def _wide(df: pd.DataFrame, factors: Sequence[str], value: str) -> pd.DataFrame:
    """seed × cell table of `value` (cells as tuples of level strings in `factors` order)."""
    d = df.dropna(subset=[value]).copy()
    for f in factors:
        d[f] = d[f].astype(str)
    wide = d.pivot_table(index="seed", columns=list(factors), values=value, aggfunc="mean", sort=True)
    wide.columns = [tuple(map(str, c if isinstance(c, tuple) else (c,))) for c in wide.columns]
    return wide


def _label(names: Sequence[str], values: Sequence[str]) -> str:
    return ", ".join(f"{n}={v}" for n, v in zip(names, values)) or "all"


def _context_rows(wide: pd.DataFrame, factors: list[str], levels: Mapping[str, list[str]], factor: str,
                  within: list[str]) -> list[dict]:
    """One dict per (level, context) of `factor`: the labels, the per-seed differences and the alias key."""
    rest = [f for f in factors if f != factor and f not in within]
    ref = str(levels[factor][0])
    rows = []
    for lv in map(str, levels[factor][1:]):
        for ctx in itertools.product(*(map(str, levels[f]) for f in within)):
            pairs = []
            for r in itertools.product(*(map(str, levels[f]) for f in rest)):
                assign = {factor: lv, **dict(zip(within, ctx)), **dict(zip(rest, r))}
                key = tuple(assign[f] for f in factors)
                base = tuple(ref if f == factor else assign[f] for f in factors)
                if key in wide.columns and base in wide.columns:
                    pairs.append((key, base))
            if not pairs:
                continue
            diff = sum(wide[k] - wide[b] for k, b in pairs) / len(pairs)  # NaN for a seed missing any cell
            d = diff.dropna().to_numpy(float)
            alias = tuple(f"{v:.12g}" for kb in pairs for c in kb for v in wide[c].to_numpy(float))
            scale = float(np.nanmax(np.abs(wide[[c for kb in pairs for c in kb]].to_numpy(float))))
            rows.append(dict(factor=factor, level=lv, vs=ref, within=", ".join(within),
                             context=_label(within, ctx), d=d, alias=alias, ctx_levels=dict(zip(within, ctx)),
                             scale=scale))
    return rows


def context_effects(df: pd.DataFrame, factors: Sequence[str], levels: Mapping[str, Sequence], *, metric: str,
                    margin: float, within: Mapping[str, Sequence[str]] | None = None, value: str = "value",
                    level: float = 0.95, alpha: float = ALPHA, power: float = POWER,
                    higher_is_better: bool = True, only: Sequence[str] | None = None) -> pd.DataFrame:
    """Every non-reference level of every factor against its reference, in every context (see the module docstring).

    `within[f]` picks the factors whose level combinations are f's contexts (default: all other factors; the
    others are averaged per seed); `only` restricts the rows to those factors. Returns `CONTEXT_COLUMNS` plus one
    column per factor naming the context's level ("" for factors that are not part of that row's context), rows
    ordered by factor, level, context.
    `verdict` is `equivalence.classify`'s class; `within_margin` says whether the (1 − 2α) CI lies inside ±margin.
    """
    factors = [f for f in factors if len(levels[f]) > 1]
    clash = [f for f in factors if f in CONTEXT_COLUMNS]
    if clash:
        raise ValueError(f"factor name(s) {clash} clash with the output columns {CONTEXT_COLUMNS}")
    wide = _wide(df, factors, value)
    frames = []
    for f in factors if only is None else [g for g in factors if g in only]:
        others = [g for g in factors if g != f]
        w = [g for g in others if g in (within[f] if within and f in within else others)]
        rows = _context_rows(wide, factors, levels, f, w)
        if rows:
            frames.append(_test_family(rows, metric, margin, level, alpha, power, higher_is_better))
    cols = CONTEXT_COLUMNS + list(factors)
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)
    for f in factors:
        out[f] = [c.get(f, "") for c in out["ctx_levels"]]
    return out[cols]


def _test_family(rows: list[dict], metric: str, margin: float, level: float, alpha: float, power: float,
                 higher_is_better: bool) -> pd.DataFrame:
    """Test, TOST, Holm (alias contexts once) and class the contexts of one factor (one family)."""
    for r in rows:
        d = r["d"]
        # cells that are the same runs differ by 0, up to the rounding of the per-seed averages over other factors
        identical = len(d) >= 1 and bool(np.all(np.abs(d) <= 64 * np.finfo(float).eps * r["scale"]))
        d = np.zeros_like(d) if identical else d
        res = paired_test(d, level)
        eq = tost_paired(d, margin, alpha)
        if identical:
            eq["p_tost"] = np.nan  # not a test: the two cells are the same runs
        r.update(metric=metric, n_pairs=len(d), estimate=res["diff"], ci_low=res["ci_low"], ci_high=res["ci_high"],
                 ci_level=level, ci_method="identical" if identical else res["test"], p=res["p"],
                 sd_diff=res["sd_diff"], margin=margin, ci90_low=eq["ci90_low"], ci90_high=eq["ci90_high"],
                 p_tost=eq["p_tost"], identical=identical)
    out = pd.DataFrame(rows)
    keys = out["alias"].tolist()
    first: dict[tuple, str] = {}
    same = []
    for k, lv, c in zip(keys, out["level"], out["context"]):
        label = f"{out['factor'].iloc[0]}={lv} in {c}"
        same.append(first.get(k, ""))
        first.setdefault(k, label)
    out["same_as"] = same
    out["p_holm"] = holm_once(out["p"].to_numpy(float), keys)
    out["p_tost_holm"] = holm_once(out["p_tost"].to_numpy(float), keys)
    m = max(len({k for k, p in zip(keys, out["p"]) if np.isfinite(p)}), 1)
    out["mdd"] = [paired_mdd(sd, n, alpha / m, power) for sd, n in zip(out["sd_diff"], out["n_pairs"])]
    with np.errstate(invalid="ignore"):
        out["within_margin"] = (out["ci90_low"] > -margin) & (out["ci90_high"] < margin)
    out["verdict"] = classify(out["estimate"], out["ci_low"], out["ci_high"], out["p_holm"], out["p_tost_holm"],
                              alpha, higher_is_better)
    out.loc[out["identical"], "verdict"] = "equivalent"
    return out.drop(columns=["d", "alias", "identical", "scale"])  # ctx_levels stays for context_effects


def summarize_contexts(contexts: pd.DataFrame, fmt_margin: Callable[[float], str] = lambda m: f"{m:.3g}"
                       ) -> pd.DataFrame:
    """Per (metric, factor, level, vs, within): k contexts and how many are helps / hurts / equivalent / undecided,
    with the sentence "helps in a of k contexts, hurts in b, equivalent within ±m in c, undecided in d".
    Columns `SUMMARY_COLUMNS`."""
    rows = []
    keys = ["metric", "factor", "level", "vs", "within"]
    for key, g in contexts.groupby(keys, sort=False):
        counts = {c: int((g["verdict"] == c).sum()) for c in CLASSES}
        m = float(g["margin"].iloc[0])
        rows.append({**dict(zip(keys, key)), "k": len(g), **counts, "margin": m,
                     "sentence": summary_sentence(len(g), counts, fmt_margin(m) if np.isfinite(m) else "n/a")})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summary_sentence(k: int, counts: Mapping[str, int], margin: str) -> str:
    """"helps in a of k contexts, hurts in b, equivalent within ±m in c, undecided in d"."""
    return (f"helps in {counts.get('helps', 0)} of {k} contexts, hurts in {counts.get('hurts', 0)}, "
            f"equivalent within ±{margin} in {counts.get('equivalent', 0)}, undecided in {counts.get('undecided', 0)}")
