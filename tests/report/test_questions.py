"""questions: verdicts per level of an interacting factor, 'no evidence' with the MDD, contradictions only on the
opposite sign or equivalence, at most MAX_FINDINGS key findings."""

import numpy as np
import pandas as pd

from ablations.report import effects as fx
from ablations.report.questions import MAX_FINDINGS, answers, key_findings

from .test_effects import crossover_data

LEVELS = {"returns": ["full", "rtg"], "normalize": ["none", "returns"], "entropy_coef": ["0", "0.01"]}


def _tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    e, _ = fx.factor_effects(df, list(LEVELS), LEVELS, metric="final_return", n_resamples=200)
    simple = fx.simple_effects(df, list(LEVELS), LEVELS, fx.interacting_pairs(e), metric="final_return")
    v = fx.verdicts(e, simple, metric="final_return", margin=1.0)
    return {"effects": e, "simple_effects": simple, "verdicts": v}


def test_crossover_is_answered_per_level_and_called_a_contradiction_where_it_hurts():
    t = _tables(crossover_data())
    text = "\n".join(answers(t))
    assert "The effect of reward-to-go (vs full returns) on final return depends on normalize: +" in text
    assert "with no normalization / −" in text and "with return normalization" in text
    assert "*Contradicts the common wisdom with return normalization: there it hurts.*" in text
    findings = key_findings(t, "final_return")
    assert 1 <= len(findings) <= MAX_FINDINGS + 1
    assert findings[0].startswith("- The effect of")


def test_no_evidence_states_the_mdd_and_contradicts_nothing():
    t = _tables(crossover_data())
    text = "\n".join(answers(t))
    line = next(x for x in text.splitlines() if x.startswith("- ") and "entropy bonus" in x)
    assert "would have been detected" in line or "no practical effect" in line
    if "would have been detected" in line:
        assert "Neither supports nor contradicts the common wisdom." in line


def test_no_effects_no_section():
    assert answers({"effects": pd.DataFrame(), "verdicts": pd.DataFrame()}) == []
    assert np.isfinite(0.0)


def test_a_ci_excluding_zero_that_fails_holm_is_called_suggestive():
    import pandas as pd

    from ablations.report.questions import verdict_sentence

    row = pd.Series(dict(metric="final_return", factor="baseline", level="value", vs="none", verdict="no evidence",
                         depends_on="", estimate=8.23, ci_low=1.66, ci_high=14.8, p_holm=0.164, mdd=19.0, margin=5.0,
                         ci90_low=2.9, ci90_high=13.5))
    text = verdict_sentence(row, pd.DataFrame())
    assert text.startswith("Suggestive only") and "not significant after Holm" in text and "0.164" in text
    row2 = row.copy()
    row2["ci_low"] = -1.0
    assert verdict_sentence(row2, pd.DataFrame()).startswith("No evidence")
