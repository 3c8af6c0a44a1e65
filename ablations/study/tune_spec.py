"""The `[tune]` section of a study file: per-config tuning candidates, tuning seeds and the selection metric.

    [tune]
    policy_lr = [1e-3, 3e-3, 1e-2]    # any RunConfig field(s) → candidates; several fields are crossed in file order
    seeds = 5                         # tuning seeds: a count n (seeds TUNE_SEED_OFFSET .. +n-1) or a list
    metric = "auc"                    # "auc" | "final_return": the selection criterion, maximized

Owns parsing and validation only (no import of `design`, which imports this module; seeds are read by
`sections.parse_seeds`); the two stages, the selection
rule and the stage-1 scores live in `study.tuning`. Every error is a `ConfigError` naming the file and the key;
`design.parse_study` turns it into a `StudyError` (exit 2).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..config import ConfigError, field_names
from .sections import SeedsError, parse_seeds

#: Selection criteria (per-run scores computed from curves.csv, as the report computes them).
TUNE_METRICS = ("auc", "final_return")
#: `seeds = n` means seeds TUNE_SEED_OFFSET, …, TUNE_SEED_OFFSET + n − 1: far from the evaluation seeds 0..k, and
#: independent of them, so changing the evaluation seeds does not retrain stage 1.
TUNE_SEED_OFFSET = 10_000
RESERVED = ("seeds", "metric")


@dataclass(frozen=True)
class TuneSpec:
    """A parsed `[tune]` section."""

    candidates: Mapping[str, tuple[Any, ...]]  # field → candidate values, in file order
    seeds: tuple[int, ...]
    metric: str = "auc"

    def grid(self) -> list[dict[str, Any]]:
        """The candidates: every combination of the tuned fields' values (file order, last field fastest)."""
        names = list(self.candidates)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.candidates.values())]

    def spec(self) -> dict[str, Any]:
        """JSON-ready, for the manifest."""
        return {"candidates": {k: [list(v) if isinstance(v, tuple) else v for v in vs]
                               for k, vs in self.candidates.items()},
                "seeds": list(self.seeds), "metric": self.metric,
                "rule": SELECTION_RULE}


#: The selection rule, as the report's Methods and the manifest state it.
SELECTION_RULE = ("per config, the candidate with the highest mean metric over the tuning seeds among the candidates "
                  "whose tuning runs all finished (status done); ties broken by the candidate listed first in [tune]; "
                  "if no candidate finished every run, the highest mean over its finished runs")


def parse_tune(value: Any, *, where: str, eval_seeds: Sequence[int], factors: Mapping[str, Any],
               fixed: Mapping[str, Any]) -> TuneSpec | None:
    """Validate a `[tune]` table → `TuneSpec` (None if absent); raise `ConfigError` naming the key."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: key 'tune' must be a table ([tune])")
    fields = [f for f in field_names() if f != "seed"]
    bad = [k for k in value if k not in RESERVED and k not in fields]
    if bad:
        raise ConfigError(f"{where}: [tune] unknown key(s) {bad}; allowed: {list(RESERVED)} and RunConfig fields "
                          f"{fields}")
    candidates: dict[str, tuple[Any, ...]] = {}
    for key, levels in value.items():
        if key in RESERVED:
            continue
        if key in factors:
            raise ConfigError(f"{where}: [tune] {key} is also a factor in [factors]; allowed: a field that is not "
                              "swept (a factor is compared, a tuned field is chosen per config)")
        if key in fixed:
            raise ConfigError(f"{where}: [tune] {key} is also in [fixed]; put it in one place")
        if not isinstance(levels, list) or not levels:
            raise ConfigError(f"{where}: [tune] {key} must be a non-empty list of candidates, got {levels!r}")
        norm = [tuple(v) if isinstance(v, list) else v for v in levels]
        dup = [v for i, v in enumerate(levels) if norm[i] in norm[:i]]
        if dup:
            raise ConfigError(f"{where}: [tune] {key} repeats candidate(s) {dup}")
        candidates[key] = tuple(levels)
    if not candidates:
        raise ConfigError(f"{where}: [tune] names no field to tune; allowed: e.g. policy_lr = [1e-3, 3e-3, 1e-2]")
    metric = value.get("metric", "auc")
    if metric not in TUNE_METRICS:
        raise ConfigError(f"{where}: [tune] metric = {metric!r} is invalid; allowed: {list(TUNE_METRICS)} "
                          "(maximized)")
    seeds = _seeds(value.get("seeds"), where)
    overlap = sorted(set(seeds) & set(eval_seeds))
    if overlap:
        raise ConfigError(f"{where}: [tune] seeds overlap the evaluation seeds (key 'seeds') at {overlap}; allowed: "
                          "tuning seeds disjoint from the evaluation seeds (reusing them overstates the winner), e.g. "
                          f"a count (seeds {TUNE_SEED_OFFSET}, {TUNE_SEED_OFFSET + 1}, …)")
    return TuneSpec(candidates=candidates, seeds=seeds, metric=metric)


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    """`[tune] seeds`: a count n (seeds TUNE_SEED_OFFSET..TUNE_SEED_OFFSET+n-1) or a list of distinct integers >= 0."""
    try:
        return parse_seeds(value, offset=TUNE_SEED_OFFSET)
    except SeedsError as exc:
        if exc.reason == "repeat":
            raise ConfigError(f"{where}: [tune] seeds repeats a seed: {value}") from None
        raise ConfigError(f"{where}: [tune] seeds = {value!r} is invalid; allowed: a count n >= 1 (seeds "
                          f"{TUNE_SEED_OFFSET}..{TUNE_SEED_OFFSET}+n-1) or a non-empty list of distinct integers >= 0 "
                          "disjoint from the evaluation seeds") from None
