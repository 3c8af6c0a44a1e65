"""The questions the classic REINFORCE tutorials ask, answered from the report's tables (text only, no new numbers).

Each answer is generated from the effects, interactions and probe tables: a verdict ("yes", "no", "no evidence")
decided by whether the 95% CI excludes zero, the estimate with its CI, the Holm-corrected p-value and Hedges' g, and a
note wherever the data disagree with the common wisdom the tutorials state.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

LEVEL_NAMES = {
    ("baseline", "mean"): "the batch-mean baseline", ("baseline", "loo"): "the leave-one-out baseline",
    ("baseline", "value"): "a learned value baseline", ("baseline", "none"): "no baseline",
    ("returns", "rtg"): "reward-to-go", ("returns", "full"): "full-episode returns",
    ("normalize", "returns"): "return normalization", ("normalize", "advantages"): "advantage normalization",
    ("normalize", "none"): "no normalization",
}


def _name(factor: str, level: Any) -> str:
    if factor == "entropy_coef":
        return f"an entropy bonus β = {level}" if float(level) > 0 else "no entropy bonus"
    return LEVEL_NAMES.get((factor, str(level)), f"{factor} = {level}")


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _p(p: float) -> str:
    return "p_holm < 0.001" if p < 0.001 else f"p_holm = {p:.3f}"


def _verdict(row: pd.Series) -> str:
    """yes / no, it hurts (CI excludes 0 and p_holm < 0.05), suggestive (CI only), or no evidence."""
    excl = row["ci_low"] > 0 or row["ci_high"] < 0
    if excl and row["p_holm"] < 0.05:
        return "yes" if row["ci_low"] > 0 else "no, it hurts"
    if excl:
        return "suggestive only (the CI excludes 0, but not significant after Holm)"
    return "no evidence either way"


def _effect_text(row: pd.Series, unit: str = "") -> str:
    return (f"{_num(row['estimate'])}{unit} [{_num(row['ci_low'])}, {_num(row['ci_high'])}] "
            f"({_p(row['p_holm'])}, g = {_num(row['hedges_g'])})")


def _mains(effects: pd.DataFrame, factor: str, metric: str = "final_return") -> pd.DataFrame:
    e = effects
    return e[(e["metric"] == metric) & (e["kind"] == "main") & (e["factor"] == factor)]


def _main_answers(effects: pd.DataFrame, factor: str, question: str, wisdom: str) -> list[str]:
    rows = _mains(effects, factor)
    if rows.empty:
        return []
    out = [f"**{question}** Common wisdom: {wisdom}"]
    for _, r in rows.iterrows():
        auc = _mains(effects, factor, "auc")
        auc = auc[auc["level"] == r["level"]]
        a = f"; area under the curve {_effect_text(auc.iloc[0])}" if len(auc) else ""
        verdict = _verdict(r)
        flag = "" if verdict == "yes" else " *This disagrees with the common wisdom.*"
        out.append(f"- {_name(factor, r['level']).capitalize()} vs {_name(factor, r['vs'])}: "
                   f"**{verdict}** — final return {_effect_text(r)}{a}.{flag}")
    return out


def _interaction_answers(effects: pd.DataFrame, f1: str, f2: str) -> list[str]:
    e = effects[(effects["metric"] == "final_return") & (effects["kind"] == "interaction")]
    e = e[((e["factor"] == f1) & (e["factor2"] == f2)) | ((e["factor"] == f2) & (e["factor2"] == f1))]
    if e.empty:
        return []
    out = ["**Does normalization interact with the baseline?** Common wisdom: standardizing already subtracts a "
           "mean, so a baseline should matter less once advantages or returns are normalized."]
    for _, r in e.iterrows():
        what = (f"the effect of {_name(r['factor'], r['level'])} (vs {_name(r['factor'], r['vs'])}) changes by "
                f"{_effect_text(r)} under {_name(r['factor2'], r['level2'])} (vs "
                f"{_name(r['factor2'], r['vs2'])})")
        v = _verdict(r)
        tag = ("interaction" if v in ("yes", "no, it hurts") else
               "suggestive interaction" if v.startswith("suggestive") else "no detectable interaction")
        out.append(f"- **{tag}**: {what}.")
    return out


def _gradient_answers(gradvar: pd.DataFrame) -> list[str]:
    if gradvar is None or gradvar.empty:
        return []
    g = gradvar[pd.to_numeric(gradvar["entropy_coef"], errors="coerce").fillna(0) == 0]
    if g.empty:
        return []
    med = (g.groupby(["estimator", "metric"])["mean"].median().unstack("metric"))
    if "snr" not in med.columns:
        return []
    med = med.sort_values("snr", ascending=False)
    out = ["**How do the estimators rank by gradient quality?** Common wisdom: baselines and reward-to-go reduce "
           "variance; the batch-mean baseline is slightly biased. Ranked by the median over training checkpoints "
           "of the signal-to-noise ratio ‖E ĝ‖²/tr Cov ĝ (scale-free, so estimators with and without normalization "
           "compare fairly); cosine to the unbiased reference and the paired bias ‖E(ĝ − ĝ_ref)‖² alongside:", "",
           "| rank | estimator (returns/baseline/normalize/β) | SNR | cos to reference | bias² |",
           "|---|---|---|---|---|"]
    for i, (est, row) in enumerate(med.iterrows(), 1):
        out.append(f"| {i} | {est} | {_num(row.get('snr', math.nan))} | {_num(row.get('cos_to_reference', math.nan))}"
                   f" | {_num(row.get('bias_sq_norm', math.nan))} |")
    best, worst = med.index[0], med.index[-1]
    out += ["", f"The best-conditioned estimator is `{best}`, the worst `{worst}` "
            f"(SNR {_num(med.loc[best, 'snr'])} vs {_num(med.loc[worst, 'snr'])})."]
    return out


def answers(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Markdown lines answering the tutorials' questions; empty if the study has none of the axes."""
    effects = tables.get("effects")
    if effects is None or effects.empty:
        return []
    lines: list[str] = []
    for factor, q, w in [
        ("baseline", "Does a baseline help, and which one?",
         "a baseline reduces variance and speeds learning; a learned value baseline is best."),
        ("returns", "Reward-to-go or full returns?", "reward-to-go is strictly better (causality removes noise)."),
        ("normalize", "Does normalization help?", "normalizing returns or advantages stabilizes learning."),
        ("entropy_coef", "Does an entropy bonus help?", "a small entropy bonus aids exploration."),
    ]:
        block = _main_answers(effects, factor, q, w)
        lines += block + ([""] if block else [])
    block = _interaction_answers(effects, "baseline", "normalize")
    lines += block + ([""] if block else [])
    lines += _gradient_answers(tables.get("gradvar"))
    if lines:
        lines = ["Each verdict is read from the main effect on final return (averaged over the other factors): *yes* "
                 "if its 95% CI excludes zero upwards and p_holm < 0.05, *no, it hurts* if downwards, *suggestive* if "
                 "the CI excludes zero but the Holm-corrected test does not, *no evidence either way* otherwise. "
                 "Every verdict other than *yes* contradicts the stated common wisdom for this study.", ""] + lines
    return lines
