"""`ablations.report.model.Report`: the record `build.compute` fills and `markdown.render` reads — its fields and
defaults, containers that are never shared between reports, and what `compute` puts in it for a small synthetic
study."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from ablations.report import build
from ablations.report.load import load_results
from ablations.report.model import Report


@pytest.fixture
def results(make_results):
    # 2 configs (returns full/rtg) × 3 seeds, 4 updates each
    return load_results(make_results(factors={"returns": ["full", "rtg"]}, seeds=3, updates=4, total_steps=4000))


def _report(results, **kw):
    args = dict(results=results, seed=0, n_resamples=100, level=0.9, all_pairs=False, budget=4000.0,
                grid=np.array([0.0, 2000.0, 4000.0]), threshold=150.0, threshold_source="given",
                metrics=["final_return"], n_seeds=3)
    return Report(**{**args, **kw})


def test_required_fields_then_defaults():
    fields = dataclasses.fields(Report)
    required = [f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    assert required == ["results", "seed", "n_resamples", "level", "all_pairs", "budget", "grid", "threshold",
                        "threshold_source", "metrics", "n_seeds"]
    assert [f.name for f in fields][len(required):] == ["primary", "budget_unit", "margin", "margin_rule", "tables",
                                                        "figures", "notes"]


def test_defaults_and_containers_of_their_own(results):
    a, b = _report(results), _report(results)
    assert a.primary == "final_return" and math.isnan(a.margin)
    assert a.tables == {} and a.figures == {} and a.notes == []
    a.tables["summary"] = results.runs
    a.figures["curves"] = "figures/curves.png"
    a.notes.append("a note")
    assert b.tables == {} and b.figures == {} and b.notes == []  # default_factory: nothing shared
    assert (a.seed, a.n_resamples, a.level, a.budget, list(a.grid)) == (0, 100, 0.9, 4000.0, [0.0, 2000.0, 4000.0])


def test_a_report_is_mutable_as_compute_fills_it(results):
    rep = _report(results)
    rep.margin = 12.5
    rep.primary = "auc"
    assert (rep.margin, rep.primary) == (12.5, "auc")


def test_compute_fills_the_record(results):
    rep = build.compute(results, seed=3, n_resamples=200, random_policy=False)
    assert isinstance(rep, Report)
    assert rep.results is results and (rep.seed, rep.n_resamples, rep.level, rep.all_pairs) == (3, 200, 0.95, False)
    assert rep.n_seeds == 3  # the median number of runs per config: 3 and 3
    assert rep.primary == "final_return" and rep.budget == 4000.0
    assert rep.grid[-1] == rep.budget
    assert {"scores", "summary"} <= set(rep.tables)
    assert sorted(rep.tables["scores"]["seed"].tolist()) == [0, 0, 1, 1, 2, 2]
