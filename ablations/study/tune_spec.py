"""The `[tune]` section of a study file: per-config tuning candidates, tuning seeds and the selection metric.

    [tune]
    policy_lr = [1e-3, 3e-3, 1e-2]    # any RunConfig field(s) → candidates; several fields are crossed in file order
    seeds = 5                         # tuning seeds: a count n (seeds TUNE_SEED_OFFSET .. +n-1) or a list
    metric = "auc"                    # "auc" | "final_return": the selection criterion, maximized
    [tune.env."HalfCheetah-v5"]       # optional, per level of env_id: candidates that replace the ones above for
    policy_lr = [1e-4, 3e-4, 1e-3]    # that env (each env's grid must bracket its own optimum)

Owns parsing and validation only (no import of `design`, which imports this module; seeds are read by
`sections.parse_seeds`); the two stages, the selection
rule and the stage-1 scores live in `study.tuning`. Every error is a `ConfigError` naming the file and the key;
`design.parse_study` turns it into a `StudyError` (exit 2).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..config import ConfigError, field_names
from .sections import SeedsError, parse_seeds

#: Selection criteria (per-run scores computed from curves.csv, as the report computes them).
TUNE_METRICS = ("auc", "final_return")
#: `seeds = n` means seeds TUNE_SEED_OFFSET, …, TUNE_SEED_OFFSET + n − 1: far from the evaluation seeds 0..k, and
#: independent of them, so changing the evaluation seeds does not retrain stage 1.
TUNE_SEED_OFFSET = 10_000
RESERVED = ("seeds", "metric", "env")


@dataclass(frozen=True)
class TuneSpec:
    """A parsed `[tune]` section."""

    candidates: Mapping[str, tuple[Any, ...]]  # field → candidate values, in file order
    seeds: tuple[int, ...]
    metric: str = "auc"
    env: Mapping[str, Mapping[str, tuple[Any, ...]]] = field(default_factory=dict)  # env_id → its own candidates

    def fields(self, env_id: str | None = None) -> dict[str, tuple[Any, ...]]:
        """Each tuned field's candidates for one env (the [tune.env."…"] ones where given), in [tune] order."""
        own = self.env.get(env_id, {}) if env_id is not None else {}
        return {k: tuple(own.get(k, v)) for k, v in self.candidates.items()}

    def grid(self, env_id: str | None = None) -> list[dict[str, Any]]:
        """One env's candidates: every combination of the tuned fields' values (file order, last field fastest)."""
        cands = self.fields(env_id)
        return [dict(zip(cands, combo)) for combo in itertools.product(*cands.values())]

    def levels(self) -> dict[str, tuple[Any, ...]]:
        """Each tuned field's values over every env's grid (the [tune] ones first, then each env's new ones): stage
        1's factor levels."""
        out = {k: list(v) for k, v in self.candidates.items()}
        for own in self.env.values():
            for k, vs in own.items():
                out[k] += [v for v in vs if v not in out[k]]
        return {k: tuple(v) for k, v in out.items()}

    def spec(self) -> dict[str, Any]:
        """JSON-ready, for the manifest."""
        return {"candidates": _plain(self.candidates), "seeds": list(self.seeds), "metric": self.metric,
                **({"env": {e: _plain(c) for e, c in self.env.items()}} if self.env else {}),
                "rule": SELECTION_RULE}


def _plain(candidates: Mapping[str, tuple[Any, ...]]) -> dict[str, list[Any]]:
    return {k: [list(v) if isinstance(v, tuple) else v for v in vs] for k, vs in candidates.items()}


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
        candidates[key] = _levels(levels, f"{where}: [tune] {key}")
    if not candidates:
        raise ConfigError(f"{where}: [tune] names no field to tune; allowed: e.g. policy_lr = [1e-3, 3e-3, 1e-2]")
    env = _env_candidates(value.get("env"), where, candidates, factors, fixed)
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
    return TuneSpec(candidates=candidates, seeds=seeds, metric=metric, env=env)


def _levels(levels: Any, what: str) -> tuple[Any, ...]:
    """A candidate list: non-empty, no value twice."""
    if not isinstance(levels, list) or not levels:
        raise ConfigError(f"{what} must be a non-empty list of candidates, got {levels!r}")
    norm = [tuple(v) if isinstance(v, list) else v for v in levels]
    dup = [v for i, v in enumerate(levels) if norm[i] in norm[:i]]
    if dup:
        raise ConfigError(f"{what} repeats candidate(s) {dup}")
    return tuple(levels)


def _env_candidates(value: Any, where: str, candidates: Mapping[str, tuple[Any, ...]], factors: Mapping[str, Any],
                    fixed: Mapping[str, Any]) -> dict[str, dict[str, tuple[Any, ...]]]:
    """`[tune.env."<env_id>"]` tables: for a level of env_id, candidates replacing [tune]'s for some tuned fields."""
    if value is None:
        return {}
    envs = list(factors.get("env_id", [])) or ([fixed["env_id"]] if "env_id" in fixed else [])
    if not isinstance(value, dict) or not all(isinstance(t, dict) for t in value.values()):
        raise ConfigError(f"{where}: [tune] env must hold tables [tune.env.\"<env_id>\"], one per env; allowed "
                          f"env ids: {envs}")
    out: dict[str, dict[str, tuple[Any, ...]]] = {}
    for env_id, table in value.items():
        if env_id not in envs:
            raise ConfigError(f"{where}: [tune.env.\"{env_id}\"] names an env the study does not run; allowed: "
                              f"{envs}")
        bad = [k for k in table if k not in candidates]
        if bad or not table:
            raise ConfigError(f"{where}: [tune.env.\"{env_id}\"] key(s) {bad or '(none)'} are not tuned fields; "
                              f"allowed: the fields tuned in [tune]: {list(candidates)}")
        out[env_id] = {k: _levels(v, f"{where}: [tune.env.\"{env_id}\"] {k}") for k, v in table.items()}
    return out


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
