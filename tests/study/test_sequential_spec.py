"""`study.sequential_spec`: the `[sequential]` section — its forms, its errors (each naming the key and the allowed
values, before anything runs), the looks it implies, and the study rebuilt from a manifest's record of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablations.study.design import StudyError, expand, load_study, parse_study, study_from_spec
from ablations.study.sequential_spec import SequentialSpec

ROOT = Path(__file__).resolve().parents[2]


def make(seq, seeds=20, report=None, tune=None):
    raw = {"name": "s", "seeds": seeds, "fixed": {"total_steps": 400},
           "factors": {"baseline": ["none", "value"], "normalize": ["none", "advantages"]}, "sequential": seq,
           "report": report if report is not None else {"reference": {"baseline": "none", "normalize": "none"}}}
    if tune:
        raw["tune"] = tune
    return parse_study(raw, where="s.toml")


def test_the_defaults_and_the_looks():
    spec = make({"min": 5}).sequential
    assert spec == SequentialSpec(min=5, step=5, max=20, families=("main",), metric="final_return")
    assert spec.counts() == [5, 10, 15, 20]
    assert SequentialSpec(min=4, step=7, max=20).counts() == [4, 11, 18, 20]  # the last wave is capped at `seeds`
    assert SequentialSpec(min=20, step=1, max=20).counts() == [20]  # the fixed design: one wave
    assert make({"min": 3, "step": 2, "families": ["configs", "main"], "metric": "eval_return"}).sequential.spec() == {
        "min": 3, "step": 2, "max": 20, "families": ["configs", "main"], "metric": "eval_return"}


@pytest.mark.parametrize("seq, message", [
    ([1], r"key 'sequential' must be a table"),
    ({"min": 5, "max": 20}, r"\[sequential\] unknown key\(s\) \['max'\]; allowed: \['min', 'step', 'families'"),
    ({"step": 5}, r"\[sequential\] needs 'min'"),
    ({"min": 2}, r"min = 2 is invalid; allowed: an integer in \[3, 20\]"),
    ({"min": 21}, r"min = 21 is invalid; allowed: an integer in \[3, 20\]"),
    ({"min": True}, r"min = True is invalid"),
    ({"min": 5, "step": 0}, r"step = 0 is invalid; allowed: an integer >= 1"),
    ({"min": 5, "families": []}, r"families = \[\] is invalid; allowed: a non-empty list of distinct names from "
                                 r"\['main', 'interactions', 'configs'\]"),
    ({"min": 5, "families": ["main", "main"]}, r"families = \['main', 'main'\] is invalid"),
    ({"min": 5, "families": ["pairs"]}, r"families = \['pairs'\] is invalid"),
    ({"min": 5, "metric": "auc"}, r"metric = 'auc' is invalid; allowed: final_return \| eval_return"),
])
def test_bad_values_name_the_key_and_the_allowed_values(seq, message):
    with pytest.raises(StudyError, match=message):
        make(seq)


def test_configs_needs_a_reference_and_tune_is_refused():
    with pytest.raises(StudyError, match=r"families has \"configs\" .* but \[report\] has no reference"):
        make({"min": 5, "families": ["configs"]}, report={})
    with pytest.raises(StudyError, match=r"\[sequential\] and \[tune\] together are not supported"):
        make({"min": 5}, tune={"policy_lr": [1e-3, 1e-2], "seeds": 2})


def test_the_study_rebuilt_from_its_manifest_record_has_the_same_runs():
    study = load_study(ROOT / "studies" / "adaptive_cartpole.toml")
    again = study_from_spec(study.spec())
    assert again.sequential == study.sequential and again.spec() == study.spec()
    assert [c.run_id for c in expand(again)] == [c.run_id for c in expand(study)]
