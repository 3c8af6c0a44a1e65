"""Verdicts that average over a factor only where they may: one verdict per main-effect contrast (factor level vs its
reference), from the effects table `effects.factor_effects` computes and the runs' scores.

The rule: the verdict of factor F may average over factor G only if no interaction of any order whose term holds both
F and G is significant (p_holm < α and its CI excludes 0; `effects.significant`). F's *partners* are every factor
that appears with F in a significant interaction term, of any order, at any of F's levels (a factor that interacts
does so for the factor, so every level's verdict names it). Then:

- no partner → the main effect is the verdict (averaged over every other factor): helps / hurts / equivalent /
  undecided by `equivalence.classify`, with the TOST computed from the main effect's own (estimate, se, df) and Holm
  over the main effects of the metric (the difference tests' family);
- partners → "depends": the effect within every combination of the partners' levels (averaged per seed over the
  non-partner factors, which the rule allows), each seed-paired, tested and classed (`contexts.context_effects` with
  `within` = the partners; Holm over the factor's contexts), and the sentence says where it helps, hurts, is
  equivalent and is undecided.

Columns of the verdict table: `VERDICT_COLUMNS`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from ablations.report.contexts import context_effects
from ablations.report.effects import significant
from ablations.report.rules import ALPHA
from ablations.report.text import METRIC_NAMES, fmt, format_p, level_name
from ablations.report.equivalence import CLASSES, classify, tost
from ablations.report.comparisons import holm

VERDICT_COLUMNS = ["metric", "factor", "level", "vs", "verdict", "partners", "terms", "contrasts", "averaged_over",
                   "estimate",
                   "ci_low", "ci_high", "p_holm", "mdd", "margin", "ci90_low", "ci90_high", "p_tost", "p_tost_holm",
                   "k", "helps", "hurts", "equivalent", "undecided"]
PARTNER_COLUMNS = ["metric", "factor", "partners", "terms", "contrasts"]


def term_parts(term: str, contrast: str) -> list[tuple[str, str, str]]:
    """(factor, level, vs) of each factor of an effects row: term "a × b", contrast "a=x vs y × b=p vs q"."""
    out = []
    for f, part in zip(term.split(" × "), contrast.split(" × ")):
        lv, vs = part[len(f) + 1:].rsplit(" vs ", 1)
        out.append((f, lv, vs))
    return out


def interaction_partners(effects: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Per (metric, factor) taking part in a significant interaction of any order: `partners` (every other factor of
    those terms, in the order the factors appear, joined by ", "), `terms` (the significant terms, e.g. "a × b × c",
    "; ") and `contrasts` (the significant contrasts with their levels, "; ")."""
    inter = significant(effects[effects["kind"] == "interaction"], alpha)
    found: dict[tuple[str, str], tuple[list[str], list[str], list[str]]] = {}
    for _, r in inter.iterrows():
        names = r["term"].split(" × ")
        for f in names:
            partners, terms, contrasts = found.setdefault((r["metric"], f), ([], [], []))
            partners += [g for g in names if g != f and g not in partners]
            terms += [r["term"]] if r["term"] not in terms else []
            contrasts.append(r["contrast"])
    rows = [dict(metric=m, factor=f, partners=", ".join(p), terms="; ".join(t), contrasts="; ".join(c))
            for (m, f), (p, t, c) in found.items()]
    return pd.DataFrame(rows, columns=PARTNER_COLUMNS)


def verdicts(effects: pd.DataFrame, df: pd.DataFrame, factors: Sequence[str], levels: Mapping[str, Sequence], *,
             metric: str, margin: float, alpha: float = ALPHA, higher_is_better: bool = True,
             value: str = "value") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(verdicts, contexts) of `metric`: `effects` is `factor_effects`' table (any metrics; this one is picked), `df`
    the long scores of this metric (factor columns, seed, `value`) it was computed from, `margin` in metric units.

    `verdicts` has one row per main-effect contrast (`VERDICT_COLUMNS`; `k` … `undecided` count the contexts of a
    "depends" verdict, or the one class of an averaged verdict); `contexts` holds the partner contexts of every
    "depends" verdict (`contexts.CONTEXT_COLUMNS` + a column per factor).
    """
    e = effects[effects["metric"] == metric]
    main = e[e["kind"] == "main"].reset_index(drop=True)
    partners = interaction_partners(e, alpha).set_index("factor")
    eq = tost(main["estimate"], main["se"], main["df"], margin, alpha)
    p_tost_holm = holm(eq["p_tost"])
    cls = classify(main["estimate"], main["ci_low"], main["ci_high"], main["p_holm"], p_tost_holm, alpha,
                   higher_is_better)
    order = {f: i for i, f in enumerate(factors)}
    partners["partners"] = [", ".join(sorted(p.split(", "), key=lambda g: order.get(g, len(order))))
                            for p in partners["partners"]]
    within = {f: partners.loc[f, "partners"].split(", ") for f in partners.index}
    ctx = (context_effects(df, factors, levels, metric=metric, margin=margin, within=within, value=value,
                           alpha=alpha, higher_is_better=higher_is_better, only=list(within))
           if within else pd.DataFrame())
    used = [f for f in factors if len(levels[f]) > 1]
    rows = []
    for i, r in main.iterrows():
        f = r["factor"]
        has = f in within
        mine = (ctx[(ctx["factor"] == f) & (ctx["level"] == str(r["level"]))] if has and len(ctx)
                else pd.DataFrame(columns=["verdict"]))
        counts = ({c: int((mine["verdict"] == c).sum()) for c in CLASSES} if has
                  else {c: int(cls[i] == c) for c in CLASSES})
        rows.append(dict(metric=metric, factor=f, level=r["level"], vs=r["vs"],
                         verdict="depends" if has else cls[i],
                         partners=partners.loc[f, "partners"] if has else "",
                         terms=partners.loc[f, "terms"] if has else "",
                         contrasts=partners.loc[f, "contrasts"] if has else "",
                         averaged_over=", ".join(g for g in used if g != f and g not in within.get(f, [])),
                         estimate=r["estimate"], ci_low=r["ci_low"], ci_high=r["ci_high"], p_holm=r["p_holm"],
                         mdd=r["mdd"], margin=margin, ci90_low=eq["ci90_low"][i], ci90_high=eq["ci90_high"][i],
                         p_tost=eq["p_tost"][i], p_tost_holm=p_tost_holm[i], k=len(mine) if has else 1, **counts))
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS), ctx


# ---------------------------------------------------------------------------------------------------- sentences
def _minus(x: float) -> str:
    """`fmt` with a true minus sign."""
    return fmt(x).replace("-", "−")


def _signed(x: float) -> str:
    return ("+" if x > 0 else "") + _minus(x)


def _numbers(est: float, low: float, high: float) -> str:
    return f"{_signed(est)} [{_minus(low)}, {_minus(high)}]"


def _where(context: str) -> str:
    """"baseline=mean, normalize=none" → "with the batch-mean baseline and no normalization"."""
    parts = [p.split("=", 1) for p in context.split(", ") if "=" in p]
    return "with " + " and ".join(level_name(f, v) for f, v in parts) if parts else "overall"


def verdict_sentence(row: pd.Series, contexts: pd.DataFrame | None = None, brief: bool = False) -> str:
    """One sentence for a row of `verdicts` (and, for "depends", its contexts from the same call: every context where
    it helps or hurts, and, unless `brief`, every context where it is equivalent or undecided; `brief` counts
    those)."""
    metric = METRIC_NAMES.get(row["metric"], row["metric"])
    subject = f"{level_name(row['factor'], str(row['level']))} (vs {level_name(row['factor'], str(row['vs']))})"
    m = fmt(row["margin"])
    v = row["verdict"]
    if v == "depends":
        partners = row["partners"].split(", ")
        head = (f"The effect of {subject} on {metric} depends on {' and '.join(partners)} (significant interaction"
                f"{'s' if ';' in row['terms'] else ''}: {row['terms']}), so it is read in each of the "
                f"{row['k']} combinations of {' and '.join(partners)}")
        c = contexts[(contexts["factor"] == row["factor"]) & (contexts["level"] == str(row["level"]))] \
            if contexts is not None else pd.DataFrame(columns=["verdict"])
        parts = []
        for cls, say in (("helps", "it helps"), ("hurts", "it hurts"), ("equivalent", f"it is equivalent within ±{m}"),
                         ("undecided", "it is undecided")):
            sub = c[c["verdict"] == cls]
            if not len(sub):
                continue
            if brief and cls in ("equivalent", "undecided"):
                parts.append(f"{say} in {len(sub)}")
                continue
            items = "; ".join(f"{_where(x['context'])}, {_numbers(x['estimate'], x['ci_low'], x['ci_high'])}"
                              + (f" (MDD {fmt(x['mdd'])})" if cls == "undecided" else "")
                              for _, x in sub.iterrows())
            parts.append(f"{say} in {len(sub)} ({items})")
        tail = " (every context is in the tables)" if brief else ""
        return head + (": " + "; ".join(parts) if parts else "") + tail + "."
    f = row["factor"]
    using = f"Using {level_name(f, str(row['level']))} instead of {level_name(f, str(row['vs']))}"
    avg = f", averaged over {row['averaged_over']}" if row["averaged_over"] else ""
    nums = f"{_numbers(row['estimate'], row['ci_low'], row['ci_high'])} (p_holm {format_p(row['p_holm'])})"
    if v in ("helps", "hurts"):
        tail = f"; no interaction of it with {row['averaged_over']} is significant" if row["averaged_over"] else ""
        return f"{using} {v} {metric}{avg}: {nums}{tail}."
    ci90 = f"90% CI [{_minus(row['ci90_low'])}, {_minus(row['ci90_high'])}]"
    if v == "equivalent":
        return (f"{using} has no effect on {metric} beyond ±{m}{avg}: {nums}, {ci90} "
                f"inside the margin (TOST p_holm {format_p(row['p_tost_holm'])}).")
    return (f"{using}: undecided on {metric}{avg}, {nums}; its {ci90} is not inside ±{m}, so neither an effect nor "
            f"its absence is shown (MDD {fmt(row['mdd'])}).")
