"""markdown_tuning: the tuning section's pieces by hand (an untuned study writes nothing)."""

from __future__ import annotations

from types import SimpleNamespace

from ablations.report import markdown_tuning as mt


def test_seed_spans() -> None:
    assert mt._span([12, 10, 11]) == "10–12"
    assert mt._span([10, 12]) == "10, 12"
    assert mt._span([1, 2]) == "1, 2"  # two seeds are listed, not spanned


def test_an_untuned_study_has_no_tuning_text(tmp_path) -> None:
    rep = SimpleNamespace(results=SimpleNamespace(manifest={}, path=tmp_path), tables={})
    assert mt.tuning_section(rep) == [] and mt.tuning_methods(rep) == []
