"""`ablations.study.tune_spec`: the `[tune]` section — candidates, tuning seeds, metric and their errors."""

from __future__ import annotations

import pytest

from ablations.config import ConfigError
from ablations.study.tune_spec import SELECTION_RULE, TUNE_SEED_OFFSET, TuneSpec, parse_tune


def _parse(value, eval_seeds=(0, 1, 2), factors=None, fixed=None):
    return parse_tune(value, where="s.toml", eval_seeds=eval_seeds, factors=factors or {}, fixed=fixed or {})


def test_absent_is_none() -> None:
    assert _parse(None) is None


def test_candidates_seeds_metric() -> None:
    spec = _parse({"policy_lr": [1e-3, 3e-3], "hidden": [[8], [16, 16]], "seeds": 2, "metric": "final_return"})
    assert spec == TuneSpec({"policy_lr": (1e-3, 3e-3), "hidden": ([8], [16, 16])}, (10_000, 10_001),
                            "final_return")
    # the grid crosses the fields in file order, last fastest: 2 × 2 = 4 candidates
    assert spec.grid() == [{"policy_lr": 1e-3, "hidden": [8]}, {"policy_lr": 1e-3, "hidden": [16, 16]},
                           {"policy_lr": 3e-3, "hidden": [8]}, {"policy_lr": 3e-3, "hidden": [16, 16]}]
    assert spec.spec() == {"candidates": {"policy_lr": [1e-3, 3e-3], "hidden": [[8], [16, 16]]},
                           "seeds": [10_000, 10_001], "metric": "final_return", "rule": SELECTION_RULE}


def test_defaults_and_explicit_seeds() -> None:
    spec = _parse({"policy_lr": [0.01], "seeds": [7, 5]})
    assert spec.metric == "auc" and spec.seeds == (7, 5) and spec.grid() == [{"policy_lr": 0.01}]
    assert _parse({"policy_lr": [0.01], "seeds": 1}).seeds == (TUNE_SEED_OFFSET,)


@pytest.mark.parametrize("value, message", [
    ([1], r"key 'tune' must be a table"),
    ({"nope": [1], "seeds": 2}, r"\[tune\] unknown key\(s\) \['nope'\]"),
    ({"seeds": 2}, r"names no field to tune"),
    ({"policy_lr": [], "seeds": 2}, r"policy_lr must be a non-empty list"),
    ({"policy_lr": [0.1, 0.1], "seeds": 2}, r"repeats candidate\(s\) \[0.1\]"),
    ({"policy_lr": [0.1], "seeds": 2, "metric": "eval_return"}, r"metric = 'eval_return' is invalid"),
    ({"policy_lr": [0.1]}, r"\[tune\] seeds = None is invalid; allowed: a count n >= 1 \(seeds 10000..10000\+n-1\)"),
    ({"policy_lr": [0.1], "seeds": [3, 3]}, r"\[tune\] seeds repeats a seed: \[3, 3\]"),
    ({"policy_lr": [0.1], "seeds": [2, 9]}, r"seeds overlap the evaluation seeds \(key 'seeds'\) at \[2\]"),
])
def test_errors_name_the_key(value, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _parse(value)


def test_a_tuned_field_is_neither_a_factor_nor_fixed() -> None:
    with pytest.raises(ConfigError, match="also a factor"):
        _parse({"policy_lr": [0.1], "seeds": 2}, factors={"policy_lr": (0.1, 0.2)})
    with pytest.raises(ConfigError, match=r"also in \[fixed\]"):
        _parse({"policy_lr": [0.1], "seeds": 2}, fixed={"policy_lr": 0.1})
