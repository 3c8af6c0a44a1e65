"""studies/gae.toml: a study crossing returns with gae_lambda (and bootstrap_truncated) names no duplicate run and no
two runs that train identically by design; the invalid combinations are excluded, and refused when they are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablations.study.design import load_study, expand
from ablations.study.sections import StudyError

STUDY = Path(__file__).resolve().parents[2] / "studies" / "gae.toml"


def test_the_gae_study_expands_to_distinct_runs_that_each_mean_something():
    study = load_study(STUDY)
    configs = expand(study)
    assert len(configs) == 18 * 3 and len({c.run_id for c in configs}) == len(configs)
    points = {(c.env_id, c.returns, c.baseline, c.gae_lambda, c.bootstrap_truncated) for c in configs}
    assert len(points) == 18
    for env in ("CartPole-v1", "LunarLander-v3"):
        mine = {p[1:] for p in points if p[0] == env}
        assert mine == {("rtg", "value", 1.0, False), ("rtg", "value", 1.0, True), ("rtg", "none", 1.0, False),
                        *(("gae", "value", lam, boot) for lam in (0.0, 0.9, 0.97) for boot in (False, True))}
    assert {c.env_backend for c in configs} == {"envpool"} and {c.probe_every > 0 for c in configs} == {True, False}


def test_crossing_returns_with_gae_lambda_without_the_exclusions_is_refused(tmp_path):
    text = STUDY.read_text()
    cut = text.index('[[exclude]]  # λ belongs to GAE')
    rest = text[cut:].split("\n\n", 1)[1]
    bad = tmp_path / "bad.toml"
    bad.write_text(text[:cut] + rest)
    with pytest.raises(StudyError, match=r"gae_lambda=0\.0 is invalid; allowed: 1\.0 \(the default\) with "
                                         r"returns='rtg'"):
        load_study(bad)


def test_a_level_invalid_in_every_point_is_still_refused_as_a_bad_level(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(STUDY.read_text().replace("gae_lambda = [1.0, 0.0, 0.9, 0.97]", "gae_lambda = [1.0, 0.0, 0.9, 1.5]")
                   .replace("gae_lambda = [0.0, 0.9, 0.97]", "gae_lambda = [0.0, 0.9, 1.5]"))
    with pytest.raises(StudyError, match=r"\[factors\] gae_lambda: gae_lambda=1\.5 is invalid; allowed: a number "
                                         r"in \[0, 1\]"):
        load_study(bad)
