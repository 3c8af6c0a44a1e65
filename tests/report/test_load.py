"""load: validation errors name the file and column; factors, levels and the reference config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from ablations.report.load import ReportError, config_label, level_label, load_results


def test_loads_synthetic(make_results: Callable[..., Path]) -> None:
    res = load_results(make_results(failed=1))
    assert res.factors == ["returns", "baseline"]
    assert res.levels == {"returns": ["full", "rtg"], "baseline": ["none", "value"]}
    assert res.configs == ["full/none", "full/value", "rtg/none", "rtg/value"]
    assert res.reference_label == "full/none" and "vanilla" in res.reference_note
    assert len(res.done) == len(res.runs) - 1


def test_missing_file_names_the_file(make_results: Callable[..., Path]) -> None:
    path = make_results()
    (path / "curves.csv").unlink()
    with pytest.raises(ReportError, match="curves.csv"):
        load_results(path)


def test_missing_column_names_file_and_column(make_results: Callable[..., Path]) -> None:
    path = make_results()
    curves = pd.read_csv(path / "curves.csv").drop(columns=["return_mean", "entropy"])
    curves.to_csv(path / "curves.csv", index=False)
    with pytest.raises(ReportError, match=r"curves.csv.*'return_mean', 'entropy'"):
        load_results(path)
    assert issubclass(ReportError, ValueError)


def test_malformed_numeric_column(make_results: Callable[..., Path]) -> None:
    path = make_results()
    runs = pd.read_csv(path / "runs.csv")
    runs["env_steps"] = runs["env_steps"].astype(str)
    runs.loc[0, "env_steps"] = "lots"
    runs.to_csv(path / "runs.csv", index=False)
    with pytest.raises(ReportError, match=r"runs.csv.*env_steps"):
        load_results(path)


def test_no_manifest_infers_factors_and_falls_back_to_first_config(make_results: Callable[..., Path]) -> None:
    path = make_results(manifest=False, factors={"returns": ["rtg"], "baseline": ["mean", "value"]})
    res = load_results(path)
    assert res.factors == ["baseline"]  # returns has one level: not a factor without a manifest
    assert res.reference == {"baseline": "mean"}
    assert "not in the data" in res.reference_note


def test_manifest_reference_and_level_order(make_results: Callable[..., Path]) -> None:
    path = make_results(factors={"returns": ["rtg", "full"], "entropy_coef": [0.01, 0.0]})
    spec = json.loads((path / "manifest.json").read_text())
    spec["study"]["report"]["reference"] = {"returns": "rtg", "entropy_coef": 0.0}
    (path / "manifest.json").write_text(json.dumps(spec))
    res = load_results(path)
    assert res.levels == {"returns": ["rtg", "full"], "entropy_coef": ["0.01", "0"]}
    assert res.reference_label == "rtg/0"


def test_format_level() -> None:
    assert [level_label(v) for v in (0.0, 0.01, "0.010", 3, "rtg", None, float("nan"), [64, 64])] == \
        ["0", "0.01", "0.01", "3", "rtg", "", "", "64-64"]
    assert config_label({"a": "x", "b": 0.5}, ["a", "b"]) == "x/0.5"


def test_a_config_is_vanilla_only_if_its_unswept_axes_are(make_results: Callable[..., Path]) -> None:
    """A study sweeping only `normalize` trains returns=rtg, baseline=value everywhere (the RunConfig defaults): its
    normalize=none config is not vanilla REINFORCE."""
    path = make_results(factors={"normalize": ["none", "advantages"]}, main={})
    runs = pd.read_csv(path / "runs.csv").assign(returns="rtg", baseline="value", entropy_coef=0.0)
    runs.to_csv(path / "runs.csv", index=False)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.pop("checksums", None)  # the combined CSVs were edited on purpose
    (path / "manifest.json").write_text(json.dumps(manifest))
    res = load_results(path)
    assert res.reference_label == "none"
    assert "vanilla" in res.reference_note and "not in the data" in res.reference_note
    assert "returns=rtg" in res.reference_note and "baseline=value" in res.reference_note
    runs.assign(returns="full", baseline="none").to_csv(path / "runs.csv", index=False)
    assert load_results(path).reference_note.startswith("vanilla REINFORCE")
