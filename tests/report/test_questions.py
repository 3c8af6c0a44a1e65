import pandas as pd

from ablations.report.questions import answers


def _effect(factor, level, vs, est, lo, hi, p, kind="main", metric="final_return", **extra):
    return {"metric": metric, "kind": kind, "factor": factor, "level": level, "vs": vs, "estimate": est,
            "ci_low": lo, "ci_high": hi, "p_holm": p, "hedges_g": 0.5, "factor2": extra.get("f2", ""),
            "level2": extra.get("l2", ""), "vs2": extra.get("v2", "")}


def test_verdicts_follow_the_ci_and_holm():
    effects = pd.DataFrame([
        _effect("returns", "rtg", "full", 20.0, 10.0, 30.0, 0.001),
        _effect("baseline", "value", "none", 5.0, 1.0, 9.0, 0.2),
        _effect("entropy_coef", 0.01, 0.0, -1.0, -4.0, 2.0, 1.0),
        _effect("normalize", "advantages", "none", -8.0, -12.0, -4.0, 0.01),
        _effect("baseline", "value", "none", -3.0, -5.0, -1.0, 0.01, kind="interaction",
                f2="normalize", l2="advantages", v2="none"),
    ])
    text = "\n".join(answers({"effects": effects}))
    assert "Reward-to-go vs full-episode returns: **yes** — final return 20 [10, 30]" in text
    assert "A learned value baseline vs no baseline: **suggestive only" in text
    assert "An entropy bonus β = 0.01 vs no entropy bonus: **no evidence either way**" in text
    assert "Advantage normalization vs no normalization: **no, it hurts**" in text
    assert text.count("disagrees with the common wisdom") == 3
    assert "**interaction**: the effect of a learned value baseline" in text


def test_no_effects_no_section():
    assert answers({"effects": pd.DataFrame()}) == []
