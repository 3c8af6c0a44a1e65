"""questions: verdicts read in every context of their partners, undecided with the MDD, contradictions only on the
opposite sign or equivalence, at most MAX_FINDINGS key findings, the relative-bias cells."""

import numpy as np
import pandas as pd

from ablations.report import effects as fx
from ablations.report import verdicts as vd
from ablations.report.questions import MAX_FINDINGS, _bias_text, answers, key_findings

from .test_effects import crossover_data

LEVELS = {"returns": ["full", "rtg"], "normalize": ["none", "returns"], "entropy_coef": ["0", "0.01"]}


def _tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    e, _ = fx.factor_effects(df, list(LEVELS), LEVELS, metric="final_return", n_resamples=200)
    v, ctx = vd.verdicts(e, df, list(LEVELS), LEVELS, metric="final_return", margin=1.0)
    return {"effects": e, "verdicts": v, "verdict_contexts": ctx}


def test_crossover_is_answered_per_context_and_called_a_contradiction_where_it_hurts():
    t = _tables(crossover_data().assign(metric="final_return"))
    text = "\n".join(answers(t))
    assert "The effect of reward-to-go (vs full returns) on final return depends on normalize" in text
    assert "it helps in 1 (with no normalization" in text and "it hurts in 1 (with return normalization" in text
    assert "*Contradicts the common wisdom in 1 of 2 contexts: there it hurts* (it helps in 1)." in text
    findings = key_findings(t, "final_return")
    assert 1 <= len(findings) <= MAX_FINDINGS + 1
    assert findings[0].startswith("- The effect of")


def test_undecided_or_equivalent_entropy_contradicts_nothing_unless_equivalent():
    t = _tables(crossover_data().assign(metric="final_return"))
    line = next(x for x in "\n".join(answers(t)).splitlines() if x.startswith("- ") and "entropy bonus" in x)
    assert "undecided" in line or "no effect" in line
    if "undecided" in line:
        assert "MDD" in line and "Neither supports nor contradicts the common wisdom." in line


def test_no_effects_no_section():
    assert answers({"effects": pd.DataFrame(), "verdicts": pd.DataFrame()}) == []


def test_undecided_states_the_90_ci_against_the_margin():
    row = pd.Series(dict(metric="final_return", factor="baseline", level="value", vs="none", verdict="undecided",
                         partners="", terms="", contrasts="", averaged_over="", estimate=10.7, ci_low=1.42,
                         ci_high=20.0, p_holm=0.234, mdd=21.2, margin=17.3, ci90_low=3.0, ci90_high=18.4,
                         p_tost=0.2, p_tost_holm=0.2, k=1, helps=0, hurts=0, equivalent=0, undecided=1))
    text = vd.verdict_sentence(row, pd.DataFrame())
    assert "undecided on final return" in text and "90% CI [3.00, 18.4] is not inside ±17.3" in text
    assert "MDD 21.2" in text and "no effect" not in text


def test_relative_bias_cells():
    nan = np.nan
    assert _bias_text("rtg/value/advantages/0", pd.Series(dict(n=0, mean=nan, ci_low=nan, ci_high=nan)), None) \
        == "n/a (normalized: not on the reference's scale)"
    zero = pd.Series(dict(n=432, mean=0.0, ci_low=0.0, ci_high=0.0))
    assert _bias_text("full/loo/none/0", zero, pd.Series(dict(mean=0.0, ci_low=0.0, ci_high=0.0))).startswith("0 (")
    below = _bias_text("full/optimal/none/0/step", zero, pd.Series(dict(mean=-0.02, ci_low=-0.03, ci_high=-0.01)))
    assert below.startswith("indistinguishable from 0") and "below 0" in below
