"""The report's conclusions in words, read from its tables (text only, no new numbers): the key findings and the
answers to the questions the classic REINFORCE tutorials ask.

A verdict comes from `effects.verdicts`: a factor level that takes part in a significant two-way interaction is
answered per level of the interacting factor ("depends on X: … / …", from the simple effects); otherwise the main
effect raises or lowers the primary metric (p_holm < α = `rules.ALPHA`, and then its CI excludes 0), is equivalent to no effect
(its 90% CI inside ±margin), or there is no evidence, said together with the minimum detectable difference. The
common wisdom is called contradicted only when the data show the opposite sign or equivalence.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from ablations.report.text import METRIC_NAMES, fmt, format_p, level_name
from ablations.report.rules import ALPHA, POWER

MAX_FINDINGS = 8
#: The tutorials' claim per factor: the level(s) said to help (vs the first level).
WISDOM: dict[str, tuple[str, str]] = {
    "baseline": ("Does a baseline help, and which one?",
                 "a baseline reduces variance and speeds learning; a learned value baseline is best."),
    "returns": ("Reward-to-go or full returns?", "reward-to-go is strictly better (causality removes noise)."),
    "normalize": ("Does normalization help?", "normalizing returns or advantages stabilizes learning."),
    "entropy_coef": ("Does an entropy bonus help?", "a small entropy bonus aids exploration."),
}


def _signed(x: float) -> str:
    return ("+" if x > 0 else "−" if x < 0 else "") + fmt(abs(x)) if np.isfinite(x) else "n/a"


def _ci(lo: float, hi: float) -> str:
    return f"[{_signed(lo)}, {_signed(hi)}]"


def _simple_text(simple: pd.DataFrame, v: pd.Series) -> str:
    s = simple[(simple["metric"] == v["metric"]) & (simple["factor"] == v["factor"]) & (simple["level"] == v["level"])
               & (simple["by"] == v["depends_on"])]
    parts = []
    for _, r in s.iterrows():
        # the CI is the 95% t-interval of this one contrast; significance is Holm's over the simple-effect family, so
        # a CI that excludes 0 can still fail Holm: say so with the adjusted p instead of a bare "n.s."
        mark = "" if np.isfinite(r["p_holm"]) and r["p_holm"] < ALPHA else \
            f" (not significant after Holm: p_holm {format_p(r['p_holm'])})"
        parts.append(f"{_signed(r['estimate'])} {_ci(r['ci_low'], r['ci_high'])} with "
                     f"{level_name(r['by'], r['by_level'])}{mark}")
    return " / ".join(parts)


def verdict_sentence(v: pd.Series, simple: pd.DataFrame) -> str:
    """One sentence for a row of the verdicts table."""
    metric = METRIC_NAMES.get(v["metric"], v["metric"])
    what = f"{level_name(v['factor'], v['level'])} (vs {level_name(v['factor'], v['vs'])})"
    main = f"{_signed(v['estimate'])} {_ci(v['ci_low'], v['ci_high'])}"
    if v["verdict"] == "depends":
        return (f"The effect of {what} on {metric} depends on {v['depends_on']}: {_simple_text(simple, v)} "
                f"(averaged over {v['depends_on']}: {main}).")
    if v["verdict"] in ("raises", "lowers"):
        return f"{what[0].upper() + what[1:]} {v['verdict']} {metric} by {main} (p_holm {format_p(v['p_holm'])})."
    if v["verdict"] == "equivalent":
        return (f"{what[0].upper() + what[1:]} has no practical effect on {metric}: {main}, 90% CI inside "
                f"±{fmt(v['margin'])} (equivalence margin).")
    if v["ci_low"] > 0 or v["ci_high"] < 0:  # its own 95% CI excludes 0, Holm over the family does not: say both
        return (f"Suggestive only: {what} {'raises' if v['estimate'] > 0 else 'lowers'} {metric} by {main}, a CI "
                f"that excludes 0 on its own, but not significant after Holm over the family "
                f"(p_holm {format_p(v['p_holm'])}); an effect larger than {fmt(v['mdd'])} would have been detected "
                f"(power {POWER:g} at the family-wise α).")
    return (f"No evidence that {what} changes {metric}: {main} (p_holm {format_p(v['p_holm'])}); an effect larger "
            f"than {fmt(v['mdd'])} would have been detected (power {POWER:g} at the family-wise α).")


def _strength(v: pd.Series, simple: pd.DataFrame) -> float:
    if v["verdict"] == "depends":
        s = simple[(simple["metric"] == v["metric"]) & (simple["factor"] == v["factor"])
                   & (simple["level"] == v["level"]) & (simple["by"] == v["depends_on"])]
        return float(s["estimate"].abs().max()) if len(s) else 0.0
    return abs(float(v["estimate"])) if np.isfinite(v["estimate"]) else 0.0


def key_findings(tables: dict[str, pd.DataFrame], primary: str) -> list[str]:
    """At most `MAX_FINDINGS` statements on the primary metric: conclusions that depend on another factor and
    significant main effects first (largest effect first), then higher-order interactions, then equivalences and
    absences of evidence."""
    v = tables.get("verdicts")
    simple = tables.get("simple_effects", pd.DataFrame())
    if v is None or v.empty:
        return ["No factor effects were estimated (fewer than two levels of every factor)."]
    rank = {"depends": 0, "raises": 0, "lowers": 0, "equivalent": 2, "no evidence": 3}
    v = v.assign(_r=v["verdict"].map(rank), _s=[-_strength(r, simple) for _, r in v.iterrows()])
    v = v.sort_values(["_r", "_s"], kind="stable")
    lines = [f"- {verdict_sentence(r, simple)}" for _, r in v[v["_r"] == 0].iterrows()]
    e = tables["effects"]
    high = e[(e["metric"] == primary) & (e["order"] >= 3)]
    if len(high):
        sig = high[(high["p_holm"] < ALPHA)]
        text = (f"{len(sig)} of {len(high)} interaction contrasts of three or more factors are significant"
                + (f"; the largest: {sig.loc[sig['t'].abs().idxmax(), 'contrast']} "
                   f"{_signed(sig.loc[sig['t'].abs().idxmax(), 'estimate'])} "
                   f"{_ci(sig.loc[sig['t'].abs().idxmax(), 'ci_low'], sig.loc[sig['t'].abs().idxmax(), 'ci_high'])}"
                   if len(sig) else "") + " (table `effects`).")
        higher = [f"- {text}"]
    else:
        higher = []
    # a higher-order summary is news only when something is significant; otherwise it goes after the verdicts
    lines += higher if len(high) and (high["p_holm"] < ALPHA).any() else []
    lines += [f"- {verdict_sentence(r, simple)}" for _, r in v[v["_r"] > 0].iterrows()]
    lines += [] if len(high) and (high["p_holm"] < ALPHA).any() else higher
    if len(lines) > MAX_FINDINGS:
        lines = lines[:MAX_FINDINGS] + [f"- {len(lines) - MAX_FINDINGS} more statements in the tables below."]
    return lines


def _wisdom_check(v: pd.Series, simple: pd.DataFrame) -> str:
    """Whether the data contradict the tutorials' claim that this level helps: only an opposite sign (significant)
    or equivalence counts."""
    if v["verdict"] == "raises":
        return "Agrees with the common wisdom."
    if v["verdict"] == "lowers":
        return "*Contradicts the common wisdom: it hurts.*"
    if v["verdict"] == "equivalent":
        return "*Contradicts the common wisdom: no effect beyond the equivalence margin.*"
    if v["verdict"] == "depends":
        s = simple[(simple["metric"] == v["metric"]) & (simple["factor"] == v["factor"])
                   & (simple["level"] == v["level"]) & (simple["by"] == v["depends_on"]) & (simple["p_holm"] < ALPHA)]
        hurts = [level_name(v["depends_on"], b) for b in s.loc[s["estimate"] < 0, "by_level"]]
        if hurts:
            return f"*Contradicts the common wisdom with {', '.join(hurts)}: there it hurts.*"
        return "Agrees with the common wisdom where the effect is significant."
    return "Neither supports nor contradicts the common wisdom."


def _quality_answers(q: pd.DataFrame | None) -> list[str]:
    if q is None or q.empty:
        return []
    q = q[pd.to_numeric(q["entropy_coef"], errors="coerce").fillna(0) == 0]
    snr = q[q["metric"] == "snr"].set_index("estimator")
    if snr.empty:
        return []
    snr = snr.sort_values("mean", ascending=False)
    cos = q[q["metric"] == "cos_to_reference"].set_index("estimator")
    rb = q[q["metric"] == "rel_bias"].set_index("estimator")
    out = ["**How do the estimators rank by gradient quality?** Common wisdom: baselines and reward-to-go reduce "
           "variance; the batch-mean baseline is slightly biased. Each run's values are averaged over its own "
           "checkpoints, then over runs (95% CIs with runs resampled jointly: paired). SNR = ‖E ĝ‖²/tr Cov ĝ is "
           "scale-free, so normalized and raw estimators compare fairly; relative bias = ‖E(ĝ − ĝ_ref)‖/‖E ĝ_ref‖ "
           "(each run's squared bias and ‖E ĝ_ref‖² averaged over its checkpoints, then each over runs, their ratio, then "
           "√max(·, 0): the ratio of means, since a run's own ‖E ĝ_ref‖² estimate can be negative; only for "
           "unnormalized estimators, which share the reference's scale; a step-form estimator "
           "(`/step`) is compared with the reference rescaled by N/L̄, its first-order scale, so its relative bias is "
           "what the 1/L divisor adds beyond that scale):", "",
           "| rank | estimator (returns/baseline/normalize/β) | runs | SNR [95% CI] | cos to reference | "
           "relative bias [95% CI] |", "|---|---|---|---|---|---|"]
    for i, (est, r) in enumerate(snr.iterrows(), 1):
        c = cos.loc[est] if est in cos.index else None
        b = rb.loc[est] if est in rb.index else None
        bias = "n/a (other scale)" if b is None else "n/a (‖E ĝ_ref‖ not resolved)" if not np.isfinite(b["mean"]) else (
            "0 (the reference, or the same directions)" if b["ci_low"] == b["ci_high"] == 0 else
            f"{b['mean']:.2g} [{b['ci_low']:.2g}, ∞: ‖E ĝ_ref‖ not resolved in every resample]"
            if np.isinf(b["ci_high"]) else
            f"indistinguishable from 0 (< {b['ci_high']:.2g})" if b["ci_low"] <= 0 else
            f"{b['mean']:.2g} [{b['ci_low']:.2g}, {b['ci_high']:.2g}]")
        out.append(f"| {i} | {est} | {int(r['n'])} | {fmt(r['mean'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}] | "
                   f"{fmt(c['mean']) if c is not None else 'n/a'} | {bias} |")
    best, worst = snr.index[0], snr.index[-1]
    out += ["", f"The best-conditioned estimator is `{best}`, the worst `{worst}` "
            f"(SNR {fmt(snr.loc[best, 'mean'])} vs {fmt(snr.loc[worst, 'mean'])})."]
    return out


def answers(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Markdown lines answering the tutorials' questions; empty if the study has none of the axes."""
    v = tables.get("verdicts")
    simple = tables.get("simple_effects", pd.DataFrame())
    if v is None or v.empty:
        return []
    lines: list[str] = []
    for factor, (q, w) in WISDOM.items():
        rows = v[v["factor"] == factor]
        if rows.empty:
            continue
        lines.append(f"**{q}** Common wisdom: {w}")
        for _, r in rows.iterrows():
            lines.append(f"- {verdict_sentence(r, simple)} {_wisdom_check(r, simple)}")
        lines.append("")
    lines += _quality_answers(tables.get("gradient_quality"))
    if lines:
        lines = ["Each verdict is read on the primary metric. A level that interacts significantly with another "
                 "factor is answered per level of that factor (simple effects, averaged over the rest); otherwise "
                 "by its main effect (Holm-corrected, seed-paired). *No evidence* comes with the smallest effect the "
                 "study could have detected; the common wisdom is called contradicted only when the data show the "
                 "opposite sign or equivalence within the margin.", ""] + lines
    return lines
