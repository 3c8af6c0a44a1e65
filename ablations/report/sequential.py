"""The report of a sequential study (`[sequential]`, `study.sequential`): its waves, and for every contrast its
anytime-valid interval at every look and its decision, beside the fixed-n t-interval at the same seeds (labelled as
such: valid only for a number of seeds fixed in advance, which this design did not).

The looks are recomputed here by `study.sequential.replay` from the study the manifest records and the runs of
runs.csv, the same pure function the driver decided the waves with, so the report shows exactly what was decided.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ablations.report.load import Results, level_label
from ablations.report.model import Report
from ablations.config import RunConfig
from ablations.study.design import Study, grid, point_fields, study_from_spec
from ablations.study.sequential import LOOK_COLUMNS, replay

#: One row per contrast: its decision (or where it stands) at its last look.
DECISION_COLUMNS = ["family", "env", "contrast", "look", "n", "estimate", "cs_low", "cs_high", "verdict", "alpha",
                    "margin", "fixed_low", "fixed_high", "fixed_verdict"]
WAVE_COLUMNS = ["wave", "seeds", "configs", "runs", "budget_steps", "complete"]
COST_COLUMNS = ["runs", "budget_steps", "fixed_runs", "fixed_budget_steps"]


def sequential_info(rep: Report) -> dict[str, Any] | None:
    """The manifest's `sequential` record, None for a study that was not sequential."""
    info = rep.results.manifest.get("sequential")
    return info if isinstance(info, dict) else None


def cost(study: Study, waves: list[dict[str, Any]]) -> pd.DataFrame:
    """One row: the runs and env-step budget the waves took, and those of every config at every seed (the fixed
    design with the same maximum)."""
    points = grid(study)
    per_seed = sum(int(point_fields(study, p).get("total_steps", RunConfig().total_steps)) for p in points)
    return pd.DataFrame([{"runs": sum(w["runs"] for w in waves), "budget_steps": sum(w["budget_steps"] for w in waves),
                          "fixed_runs": len(points) * len(study.seeds),
                          "fixed_budget_steps": per_seed * len(study.seeds)}], columns=COST_COLUMNS)


def ids_by_levels(study: Study, results: Results) -> np.ndarray:
    """[P, S] run ids of the results' runs, matched to the study's grid points and seeds by their factor levels (as
    the report labels them) and seed; "" where no run has them. Matching by levels, not by the ids the study file
    expands to today, keeps a published study's report stable when a field's default changes later."""
    runs = results.runs
    factors = list(study.factors)
    keys = zip(*(runs[f].astype(str) for f in factors), pd.to_numeric(runs["seed"]).astype(int))
    where = dict(zip(keys, runs["run_id"].astype(str)))
    return np.array([[where.get((*(level_label(p[f]) for f in factors), s), "") for s in study.seeds]
                     for p in grid(study)], dtype=object)


def compute(rep: Report, env: str | None = None, results: Results | None = None) -> None:
    """Add the tables `sequential_waves`, `sequential_looks` (`study.sequential.LOOK_COLUMNS`) and `sequential`
    (`DECISION_COLUMNS`; cs_low/cs_high: the running anytime-valid interval) to `rep`. A no-op for a study that was
    not sequential. `env`: `rep` is one env of a multi-env study, `results` the whole study's: only that env's
    contrasts are shown (the waves are the whole study's)."""
    info = sequential_info(rep)
    if info is None:
        return
    whole = results or rep.results  # one env's results carry a manifest rewritten for that env (`across.env_subset`)
    study = study_from_spec(whole.manifest["study"])
    state = replay(study, whole.runs, ids=ids_by_levels(study, whole))
    looks = state.looks if env is None else state.looks[state.looks["env"] == env]
    decisions = looks.drop_duplicates("contrast_index", keep="last")
    rep.tables["sequential_waves"] = pd.DataFrame(state.waves, columns=WAVE_COLUMNS)
    rep.tables["sequential_cost"] = cost(study, state.waves)
    rep.tables["sequential_looks"] = looks[LOOK_COLUMNS].reset_index(drop=True)
    rep.tables["sequential"] = (decisions.rename(columns={"run_low": "cs_low_", "run_high": "cs_high_"})
                                .drop(columns=["cs_low", "cs_high"])
                                .rename(columns={"cs_low_": "cs_low", "cs_high_": "cs_high"})[DECISION_COLUMNS]
                                .reset_index(drop=True))
