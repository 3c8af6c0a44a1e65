"""`ablations.study.sections`: the one seed parser, the section validators, finding a study, `--set` items."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablations.study.sections import (SeedsError, StudyError, find_study, parse_exclude, parse_overrides,
                                      parse_sample, parse_seed_text, parse_seeds, parse_study_seeds)


@pytest.mark.parametrize("value, offset, seeds", [
    (3, 0, (0, 1, 2)), (2, 10_000, (10_000, 10_001)), ([5, 0, 7], 0, (5, 0, 7)), ([4], 99, (4,))])
def test_parse_seeds(value, offset, seeds) -> None:
    assert parse_seeds(value, offset=offset) == seeds


@pytest.mark.parametrize("value, reason", [
    (0, "invalid"), (-2, "invalid"), (True, "invalid"), ([], "invalid"), ([1, -1], "invalid"), ([1.0], "invalid"),
    ("0-3", "invalid"), ([2, 2], "repeat"), ([1, 2, 1], "repeat")])
def test_parse_seeds_refuses(value, reason) -> None:
    with pytest.raises(SeedsError) as err:
        parse_seeds(value)
    assert err.value.reason == reason


def test_parse_seed_text() -> None:
    assert parse_seed_text("0-3") == (0, 1, 2, 3) and parse_seed_text("1, 5") == (1, 5)
    assert parse_seed_text("4") == (4,) and parse_seed_text("0-1,7") == (0, 1, 7)
    for text, reason in (("3-1", "syntax"), ("a", "syntax"), ("", "syntax"), ("-1", "syntax"), ("1,0-2", "repeat")):
        with pytest.raises(SeedsError) as err:
            parse_seed_text(text)
        assert err.value.reason == reason, text


def test_parse_study_seeds_messages() -> None:
    assert parse_study_seeds(2, "s.toml") == (0, 1)
    with pytest.raises(StudyError, match=r"^s.toml: key 'seeds' repeats a seed: \[1, 1\]$"):
        parse_study_seeds([1, 1], "s.toml")
    with pytest.raises(StudyError, match=r"^s.toml: key 'seeds' = 0 is invalid; allowed: a count n >= 1"):
        parse_study_seeds(0, "s.toml")


def test_parse_exclude_and_sample() -> None:
    factors = {"baseline": ("none", "mean"), "hidden": ([8], [16])}
    assert parse_exclude([{"baseline": "none", "hidden": [[8]]}], factors, "w") == (
        {"baseline": ("none",), "hidden": ((8,),)},)
    with pytest.raises(StudyError, match="is not a factor"):
        parse_exclude([{"normalize": "none"}], factors, "w")
    assert parse_sample(None, "w") is None and parse_sample({"k": 3}, "w") == {"k": 3, "seed": 0}
    with pytest.raises(StudyError, match=r"\[sample\] k = 0 is invalid"):
        parse_sample({"k": 0}, "w")


def test_parse_overrides() -> None:
    assert parse_overrides(["total_steps=2000", "hidden=[8]", "env_id=CartPole-v1"]) == {
        "total_steps": 2000, "hidden": [8], "env_id": "CartPole-v1"}
    with pytest.raises(StudyError, match="FIELD=VALUE"):
        parse_overrides(["total_steps"])


def test_find_study_by_name_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "one.toml").write_text('name = "t"\n')
    assert find_study("t", tmp_path) == tmp_path / "one.toml"
    (tmp_path / "two.toml").write_text('name = "t"\n')
    with pytest.raises(StudyError, match="several files"):
        find_study("t", tmp_path)
    with pytest.raises(StudyError, match="no study named"):
        find_study("nope", tmp_path)
