"""margin: the `[report] margin` forms (metric units or "<x>sd"), their errors, and the study file's validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ablations.study import margin as eq
from ablations.study.design import StudyError, load_study


@pytest.mark.parametrize("value, expected", [
    (None, eq.Margin(0.25, "sd")), (10, eq.Margin(10.0, "metric")), (2.5, eq.Margin(2.5, "metric")),
    ("0.25sd", eq.Margin(0.25, "sd")), ("0.5 SD", eq.Margin(0.5, "sd")), (".3sds", eq.Margin(0.3, "sd")),
    ("17.3", eq.Margin(17.3, "metric")),
])
def test_parse_margin_forms(value: object, expected: eq.Margin) -> None:
    assert eq.parse_margin(value) == expected


@pytest.mark.parametrize("value", [True, 0, -1, "abc", "0.25 sigma", float("nan"), [1], "-0.2sd", "0sd"])
def test_parse_margin_errors_name_the_field_and_the_forms(value: object) -> None:
    with pytest.raises(ValueError, match=r"\[report\] margin.*allowed: a positive number.*\"0.25sd\""):
        eq.parse_margin(value)


def test_resolve() -> None:
    assert eq.DEFAULT_MARGIN.resolve(8.0) == 2.0 and eq.Margin(5.0, "metric").resolve(np.nan) == 5.0


@pytest.mark.parametrize("margin, ok", [('"0.25sd"', True), ("10", True), ('"ten"', False), ("-1", False)])
def test_a_study_file_margin_is_validated(tmp_path: Path, margin: str, ok: bool) -> None:
    study = tmp_path / "s.toml"
    study.write_text(f'name = "s"\nseeds = 2\n[fixed]\nenv_id = "CartPole-v1"\ntotal_steps = 1000\n'
                     f"[report]\nmargin = {margin}\n")
    if ok:
        assert load_study(study).report["margin"] is not None
    else:
        with pytest.raises(StudyError, match=r"\[report\] margin"):
            load_study(study)
