"""`ablations.cli.tuned`: what `run` and `reproduce` print of a tuned study — the two stages' dry-run plan, the
chosen candidate per config, the published vs fresh choice — on a small hand-made plan and choice tables."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from ablations.cli.tuned import _seeds, print_chosen, print_choices, print_plan
from ablations.config import RunConfig
from ablations.study.design import parse_study
from ablations.study.cohorts import Cohort
from ablations.study.stages import plan_study
from ablations.study.tuning import CHOICE_FILE


@pytest.fixture
def study():
    """2 configs (baseline none/value) × 3 seeds; [tune] policy_lr 0.001/0.01 on 2 tuning seeds (10000, 10001)."""
    return parse_study({"name": "tuned", "seeds": 3, "fixed": {"total_steps": 400, "hidden": [8]},
                        "factors": {"baseline": ["none", "value"]},
                        "tune": {"policy_lr": [1e-3, 1e-2], "seeds": 2}}, where="tuned.toml")


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=250, color_system=None), buf


def _rows(text: str) -> list[list[str]]:
    """The cells of a rich table's body rows."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


@pytest.mark.parametrize("seeds, text", [
    ((0, 1, 2), "0..2"), ((3, 4, 5, 6), "3..6"),  # three or more consecutive: a range
    ((0, 1), "0, 1"), ((7,), "7"), ((0, 2, 4), "0, 2, 4"), ((2, 1, 0), "2, 1, 0"), ((10000, 10001), "10000, 10001"),
])
def test_seeds_shown_as_a_range_or_a_list(seeds, text):
    assert _seeds(seeds) == text


def test_print_plan_before_stage_1(study, tmp_path):
    out = tmp_path / "tuned"
    plan = plan_study(study, out, workers=1)
    console, buf = _console()
    print_plan(console, plan)
    text = buf.getvalue()
    # stage 1: 2 configs × 2 candidates × 2 seeds = 8 runs of 400 steps, one cohort; stage 2 unknown until stage 1
    assert _rows(text) == [
        ["1 tuning", "2 configs × 2 candidates × 2 seeds = 8", "8", "1", "3,200", "10000, 10001"],
        ["2 evaluation", "2 configs × 3 seeds = 6", "6", "after stage 1", "≤ 2,400", "0..2"],
    ]
    assert "tuned: tuned in two stages" in text
    assert ("stage 1 (tuning): 8 runs, 8 to train, 3,200 env steps; stage 2 (evaluation): 6 runs, known after "
            "stage 1, ≤ 2,400 env steps") in text
    assert "tuned: policy_lr ∈ [0.001, 0.01]; chosen per config by the highest mean auc over the tuning seeds" in text
    assert (f"stage 1 → {out / 'tune'}, the choice → {out / CHOICE_FILE}, stage 2 → {out} (dry run: nothing "
            "written)") in " ".join(text.split())
    assert not out.exists()


def test_print_plan_with_both_stages_known(study, tmp_path):
    """A hand-made plan: stage 1 has 3 of its 8 runs left in one cohort, stage 2 its 6 runs in cohorts of 4 and 2."""
    plan = plan_study(study, tmp_path / "tuned", workers=1)
    s1, s2 = plan.stages
    left = Cohort("c1", tuple(s1.configs[:3]))
    runs2 = [RunConfig(seed=s, baseline=b, total_steps=400, hidden=(8,)) for b in ("none", "value") for s in range(3)]
    stages = [dataclasses.replace(s1, todo=[left]),
              dataclasses.replace(s2, configs=runs2,
                                  todo=[Cohort("c2", tuple(runs2[:4])), Cohort("c3", tuple(runs2[4:]))])]
    console, buf = _console()
    print_plan(console, dataclasses.replace(plan, stages=stages))
    text = buf.getvalue()
    assert _rows(text) == [
        ["1 tuning", "2 configs × 2 candidates × 2 seeds = 8", "3", "1", "1,200", "10000, 10001"],
        ["2 evaluation", "2 configs × 3 seeds = 6", "6", "2", "2,400", "0..2"],
    ]
    assert ("stage 1 (tuning): 8 runs, 3 to train, 1,200 env steps; stage 2 (evaluation): 6 runs, 6 to train, "
            "2,400 env steps") in text


def test_print_chosen_lists_the_chosen_candidate_per_config(study):
    choice = pd.DataFrame({"baseline": ["none", "none", "value", "value"],
                           "policy_lr": ["0.001", "0.01", "0.001", "0.01"],
                           "mean": ["123.456789", "99.0", "12.0", "200.5"],
                           "chosen": ["True", "False", "False", "True"]})
    console, buf = _console()
    print_chosen(console, study, choice)
    text = buf.getvalue()
    assert "chosen per config" in text
    assert _rows(text) == [["none", "0.001", "123.5"], ["value", "0.01", "200.5"]]  # the mean with 4 digits
    assert [c.strip() for c in next(line for line in text.splitlines() if line.startswith("┃")).split("┃")[1:-1]] \
        == ["baseline", "policy_lr", "mean auc"]


def test_print_chosen_of_a_config_whose_candidates_all_failed(study):
    """No candidate of config "value" finished: the first is chosen (the rule's tie-break) with mean nan."""
    choice = pd.DataFrame({"baseline": ["none", "value"], "policy_lr": ["0.01", "0.001"], "mean": ["7.0", "nan"],
                           "chosen": ["True", "True"]})
    console, buf = _console()
    print_chosen(console, study, choice)
    assert _rows(buf.getvalue()) == [["none", "0.01", "7"], ["value", "0.001", "nan"]]


def _choice_file(folder: Path, picks: dict[int, int]) -> Path:
    """A tune_choice.csv: rows config × candidate (config 1's rows first), `picks[config]` the chosen candidate."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{i},{j},{picks[i] == j}" for i in (1, 0) for j in (0, 1)]
    (folder / CHOICE_FILE).write_text("config_index,candidate,chosen\n" + "\n".join(rows) + "\n")
    return folder


def test_print_choices_compares_the_published_and_the_fresh_choice(study, tmp_path):
    published = _choice_file(tmp_path / "pub", {0: 1, 1: 0})
    fresh = _choice_file(tmp_path / "fresh", {0: 1, 1: 1})
    console, buf = _console()
    print_choices(console, study, published, fresh)
    text = buf.getvalue()
    assert f"the choice per config ({CHOICE_FILE})" in text
    assert _rows(text) == [["none", "policy_lr = 0.01", "policy_lr = 0.01", "yes"],
                           ["value", "policy_lr = 0.001", "policy_lr = 0.01", "NO"]]
    assert "the choice: 1 of 2 configs chose the same candidate as published" in text


def test_print_choices_when_the_fresh_run_has_no_choice(study, tmp_path):
    published = _choice_file(tmp_path / "pub", {0: 0, 1: 0})
    console, buf = _console()
    print_choices(console, study, published, tmp_path / "fresh")
    assert buf.getvalue() == f"the choice: the fresh run wrote no {CHOICE_FILE} (its stage 1 did not finish)\n"
