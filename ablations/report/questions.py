"""The report's conclusions in words, read from its tables (text only, no new numbers): the key findings and the
answers to the questions the classic REINFORCE tutorials ask.

A verdict comes from `verdicts.verdicts`: a factor level that takes part in a significant interaction of any order is
read in every combination of its partners' levels ("depends": where it helps, hurts, is equivalent within the margin,
is undecided); otherwise its main effect helps or hurts the primary metric (p_holm < α = `rules.ALPHA`, and then its
CI excludes 0), is equivalent to no effect (TOST: its 90% CI inside ±margin), or is undecided, said together with the
minimum detectable difference. The common wisdom is called contradicted only where the data show the opposite sign
or equivalence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ablations.report.text import fmt
from ablations.report.rules import ALPHA
from ablations.report.verdicts import verdict_sentence

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


def _mine(contexts: pd.DataFrame, v: pd.Series) -> pd.DataFrame:
    """The contexts of a "depends" verdict row."""
    if contexts is None or contexts.empty:
        return pd.DataFrame(columns=["verdict", "estimate", "context"])
    return contexts[(contexts["factor"] == v["factor"]) & (contexts["level"] == str(v["level"]))]


def _strength(v: pd.Series, contexts: pd.DataFrame) -> float:
    if v["verdict"] == "depends":
        s = _mine(contexts, v)
        return float(s["estimate"].abs().max()) if len(s) else 0.0
    return abs(float(v["estimate"])) if np.isfinite(v["estimate"]) else 0.0


def key_findings(tables: dict[str, pd.DataFrame], primary: str) -> list[str]:
    """At most `MAX_FINDINGS` statements on the primary metric: verdicts that depend on other factors and significant
    main effects first (largest effect first), then higher-order interactions, then equivalences and undecided ones."""
    v = tables.get("verdicts")
    ctx = tables.get("verdict_contexts", pd.DataFrame())
    if v is None or v.empty:
        return ["No factor effects were estimated (fewer than two levels of every factor)."]
    rank = {"depends": 0, "helps": 0, "hurts": 0, "equivalent": 2, "undecided": 3}
    v = v.assign(_r=v["verdict"].map(rank), _s=[-_strength(r, ctx) for _, r in v.iterrows()])
    v = v.sort_values(["_r", "_s"], kind="stable")
    lines = [f"- {verdict_sentence(r, ctx, brief=True)}" for _, r in v[v["_r"] == 0].iterrows()]
    e = tables["effects"]
    high = e[(e["metric"] == primary) & (e["order"] >= 3)]
    higher = []
    if len(high):
        sig = high[(high["p_holm"] < ALPHA)]
        top = sig.loc[sig["t"].abs().idxmax()] if len(sig) else None
        text = (f"{len(sig)} of {len(high)} interaction contrasts of three or more factors are significant"
                + (f"; the largest: {top['contrast']} {_signed(top['estimate'])} {_ci(top['ci_low'], top['ci_high'])}"
                   if top is not None else "") + " (table `effects`; the verdicts above read every factor in the "
                "contexts these interactions define).")
        higher = [f"- {text}"]
    significant_high = bool(len(high) and (high["p_holm"] < ALPHA).any())
    lines += higher if significant_high else []
    lines += [f"- {verdict_sentence(r, ctx)}" for _, r in v[v["_r"] > 0].iterrows()]
    lines += [] if significant_high else higher
    if len(lines) > MAX_FINDINGS:
        lines = lines[:MAX_FINDINGS] + [f"- {len(lines) - MAX_FINDINGS} more statements in the tables below."]
    return lines


def _wisdom_check(v: pd.Series, contexts: pd.DataFrame) -> str:
    """Whether the data contradict the tutorials' claim that this level helps: only a significant opposite sign or
    equivalence counts."""
    if v["verdict"] == "helps":
        return "Agrees with the common wisdom."
    if v["verdict"] == "hurts":
        return "*Contradicts the common wisdom: it hurts.*"
    if v["verdict"] == "equivalent":
        return "*Contradicts the common wisdom: no effect beyond the equivalence margin.*"
    if v["verdict"] == "depends":
        s = _mine(contexts, v)
        n_hurts, n_helps, k = int((s["verdict"] == "hurts").sum()), int((s["verdict"] == "helps").sum()), len(s)
        if n_hurts:
            return (f"*Contradicts the common wisdom in {n_hurts} of {k} contexts: there it hurts* (it helps in "
                    f"{n_helps}).")
        if n_helps:
            return f"Agrees with the common wisdom in {n_helps} of {k} contexts (it hurts in none)."
        return "Neither supports nor contradicts the common wisdom in any context."
    return "Neither supports nor contradicts the common wisdom."


def _bias_text(est: str, b: pd.Series | None, sq: pd.Series | None) -> str:
    """The relative-bias cell of one estimator (`rel_bias` row `b`, its `rel_bias_sq` row `sq`)."""
    normalized = len(est.split("/")) > 2 and est.split("/")[2] != "none"
    if b is None or normalized or not b["n"]:
        return "n/a (normalized: not on the reference's scale)" if normalized else "n/a (other scale)"
    if not np.isfinite(b["mean"]):
        return "n/a (‖E ĝ_ref‖ not resolved)"
    if b["ci_low"] == b["ci_high"] == 0:
        if sq is not None and np.isfinite(sq["ci_high"]) and sq["ci_high"] < 0:
            return (f"indistinguishable from 0 (squared-bias estimate {sq['mean']:.2g} [{sq['ci_low']:.2g}, "
                    f"{sq['ci_high']:.2g}], below 0: noise)")
        return "0 (the reference, or the same directions)"
    if np.isinf(b["ci_high"]):
        return f"{b['mean']:.2g} [{b['ci_low']:.2g}, ∞: ‖E ĝ_ref‖ not resolved in every resample]"
    if b["ci_low"] <= 0:
        return f"indistinguishable from 0 (< {b['ci_high']:.2g})"
    return f"{b['mean']:.2g} [{b['ci_low']:.2g}, {b['ci_high']:.2g}]"


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
    rb2 = q[q["metric"] == "rel_bias_sq"].set_index("estimator")
    out = ["**How do the estimators rank by gradient quality?** Common wisdom: baselines and reward-to-go reduce "
           "variance; the batch-mean baseline is slightly biased. Each run's values are averaged over its own "
           "checkpoints, then over runs (95% CIs with runs resampled jointly: paired). SNR = ‖E ĝ‖²/tr Cov ĝ is "
           "scale-free, so normalized and raw estimators compare fairly; relative bias = ‖E(ĝ − ĝ_ref)‖/‖E ĝ_ref‖ "
           "(each run's squared bias and ‖E ĝ_ref‖² averaged over its checkpoints, then each over runs, their ratio, "
           "then √max(·, 0): the ratio of means, since a run's own ‖E ĝ_ref‖² estimate can be negative; only for "
           "unnormalized estimators, which share the reference's scale; a step-form estimator "
           "(`/step`) is compared with the reference rescaled by N/L̄, its first-order scale, so its relative bias is "
           "what the 1/L divisor adds beyond that scale):", "",
           "| rank | estimator (returns/baseline/normalize/β) | runs | SNR [95% CI] | cos to reference | "
           "relative bias [95% CI] |", "|---|---|---|---|---|---|"]
    for i, (est, r) in enumerate(snr.iterrows(), 1):
        c = cos.loc[est] if est in cos.index else None
        bias = _bias_text(est, rb.loc[est] if est in rb.index else None, rb2.loc[est] if est in rb2.index else None)
        out.append(f"| {i} | {est} | {int(r['n'])} | {fmt(r['mean'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}] | "
                   f"{fmt(c['mean']) if c is not None else 'n/a'} | {bias} |")
    best, worst = snr.index[0], snr.index[-1]
    out += ["", f"The best-conditioned estimator is `{best}`, the worst `{worst}` "
            f"(SNR {fmt(snr.loc[best, 'mean'])} vs {fmt(snr.loc[worst, 'mean'])})."]
    return out


def answers(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Markdown lines answering the tutorials' questions; empty if the study has none of the axes."""
    v = tables.get("verdicts")
    ctx = tables.get("verdict_contexts", pd.DataFrame())
    if v is None or v.empty:
        return []
    lines: list[str] = []
    for factor, (q, w) in WISDOM.items():
        rows = v[v["factor"] == factor]
        if rows.empty:
            continue
        lines.append(f"**{q}** Common wisdom: {w}")
        for _, r in rows.iterrows():
            lines.append(f"- {verdict_sentence(r, ctx)} {_wisdom_check(r, ctx)}")
        lines.append("")
    lines += _quality_answers(tables.get("gradient_quality"))
    if lines:
        lines = ["Each verdict is read on the primary metric. A level that takes part in a significant interaction "
                 "of any order is read in every combination of its partners' levels (seed-paired, Holm over the "
                 "factor's contexts); otherwise by its main effect (Holm-corrected, seed-paired). *Equivalent* needs "
                 "the equivalence test (TOST) at the margin; *undecided* comes with the smallest effect the study "
                 "could have detected (MDD); the common wisdom is called contradicted only where the data show the "
                 "opposite sign or equivalence within the margin.", ""] + lines
    return lines
